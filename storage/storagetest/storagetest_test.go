package storagetest_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and stops
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *fatalRecorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func TestNewPostgresFailsClearlyWhenNothingAnswers(t *testing.T) {
	// A listener that accepts and never speaks, like a hung server.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }()
		}
	}()
	t.Setenv("PORTERO_TEST_POSTGRES", "postgres://postgres:pw-not-shown@"+ln.Addr().String()+"/postgres?sslmode=disable")

	rec := &fatalRecorder{TB: t}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		storagetest.NewPostgres(rec)
	}()
	<-done
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("gave up after %v, want about 3s", d)
	}
	t.Log(rec.msg)
	if !strings.Contains(rec.msg, "did not answer") || !strings.Contains(rec.msg, "PORTERO_TEST_POSTGRES") {
		t.Errorf("message %q does not say what is wrong", rec.msg)
	}
	if strings.Contains(rec.msg, "pw-not-shown") {
		t.Errorf("message shows the password: %q", rec.msg)
	}
}

func TestNewPostgresDropsItsDatabase(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("use", func(t *testing.T) {
		db := storagetest.NewPostgres(t)
		if err := db.Pool().QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "portero_test_") {
			t.Fatalf("database %q", name)
		}
		var n int
		if err := db.Pool().QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n == 0 {
			t.Fatalf("not migrated: %d, %v", n, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, storagetest.PostgresAdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}

func TestEachRunsBothDialects(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[storage.Dialect]bool{}
	t.Run("each", func(t *testing.T) {
		storagetest.Each(t, func(t *testing.T, db *storage.DB) {
			if err := db.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			seen[db.Dialect()] = true
			mu.Unlock()
		})
	})
	if !seen[storage.Postgres] || !seen[storage.SQLite] {
		t.Fatalf("dialects run: %v", seen)
	}
}
