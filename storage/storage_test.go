package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"

	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// exec runs query on either backend; it is written with $N placeholders,
// which SQLite also reads as numbered parameters.
func exec(ctx context.Context, db *storage.DB, query string, args ...any) error {
	if db.Dialect() == storage.Postgres {
		_, err := db.Pool().Exec(ctx, query, args...)
		return err
	}
	_, err := db.SQL().ExecContext(ctx, query, args...)
	return err
}

// scanOne runs a one-row query on either backend.
func scanOne(ctx context.Context, db *storage.DB, query string, args []any, dest ...any) error {
	if db.Dialect() == storage.Postgres {
		return db.Pool().QueryRow(ctx, query, args...).Scan(dest...)
	}
	return db.SQL().QueryRowContext(ctx, query, args...).Scan(dest...)
}

func TestOpenSQLiteSetsPragmasOnEveryConnection(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "nested", "dir", "portero.db")
	db, err := storage.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if db.Dialect() != storage.SQLite || db.SQL() == nil || db.Pool() != nil {
		t.Fatalf("dialect %v, SQL %v, Pool %v", db.Dialect(), db.SQL(), db.Pool())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("database file mode %o, want 600 (it holds password hashes)", perm)
	}

	// Hold two connections at once so the second is a different one.
	var conns []interface{ Close() error }
	for i := range 2 {
		c, err := db.SQL().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "busy_timeout": "5000", "foreign_keys": "1", "synchronous": "1",
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("conn %d: PRAGMA %s = %q, want %q", i, pragma, got, want)
			}
		}
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

func TestOpenSQLiteInMemory(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"sqlite://:memory:", "sqlite://file::memory:", "sqlite://file:memtest?mode=memory&cache=shared"} {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			db, err := storage.Open(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = db.Close() }()
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			// Only one connection ever exists, so what Migrate created is
			// still there for a second, concurrent reader.
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					var n int
					if err := db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM roles").Scan(&n); err != nil || n != 2 {
						t.Errorf("roles: %d, %v", n, err)
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestOpenErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	const pw = "Hunter2SECRET"
	tests := []struct {
		url  string
		want error
	}{
		{"mysql://root:" + pw + "@127.0.0.1/x", storage.ErrUnsupportedScheme},
		{"host=127.0.0.1 password=" + pw, storage.ErrInvalidURL},
		{"postgres://u:" + pw + "@127.0.0.1:bad/x", storage.ErrInvalidURL},
		{"postgres://u:" + pw + "@127.0.0.1/x?sslmode=sometimes", storage.ErrInvalidURL},
		// Nothing listens on port 1: connection refused at once.
		{"postgres://u:" + pw + "@127.0.0.1:1/x?sslmode=disable", storage.ErrConnect},
		{"postgresql+asyncpg://u@127.0.0.1:1/x?sslmode=disable&password=" + pw, storage.ErrConnect},
	}
	for _, tt := range tests {
		_, err := storage.Open(testContext(t), tt.url, storage.WithConnectTimeout(time.Second))
		if !errors.Is(err, tt.want) {
			t.Errorf("Open(%s) = %v, want %v", storage.Redact(tt.url), err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("Open(%s) error shows the password: %v", storage.Redact(tt.url), err)
		}
	}
}

func TestOpenPostgresConnectTimeout(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never speaks: only connect_timeout ends the wait.
	ln := silentListener(t)
	start := time.Now()
	_, err := storage.Open(context.Background(), "postgres://u@"+ln+"/x?sslmode=disable", storage.WithConnectTimeout(300*time.Millisecond))
	if !errors.Is(err, storage.ErrConnect) {
		t.Fatalf("Open = %v, want ErrConnect", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Open took %v; connect_timeout was not applied", d)
	}
}

func TestOpenPostgres(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db, err := storage.Open(ctx, storagetest.NewPostgresURL(t), storage.WithMaxConns(3))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if db.Dialect() != storage.Postgres || db.Pool() == nil || db.SQL() != nil {
		t.Fatalf("dialect %v, Pool %v, SQL %v", db.Dialect(), db.Pool(), db.SQL())
	}
	if got := db.Pool().Config().MaxConns; got != 3 {
		t.Errorf("MaxConns = %d, want 3", got)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := testContext(t)
		before, err := db.MigrationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		after, err := db.MigrationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(before) != len(after) {
			t.Fatalf("status changed: %+v -> %+v", before, after)
		}
		for i := range before {
			if !before[i].Applied || !before[i].AppliedAt.Equal(after[i].AppliedAt) {
				t.Errorf("step %d: %+v -> %+v", i, before[i], after[i])
			}
		}
		var n int
		if err := scanOne(ctx, db, "SELECT count(*) FROM schema_migrations", nil, &n); err != nil || n != len(before) {
			t.Fatalf("schema_migrations rows = %d (%v), want %d", n, err, len(before))
		}
	})
}

func TestMigrationStatus(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, db *storage.DB) {
		ctx := testContext(t)
		pending, err := db.MigrationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 || pending[0].Version != 1 || pending[0].Name != "init" {
			t.Fatalf("status on an empty database = %+v, want 0001 init first", pending)
		}
		for _, s := range pending {
			if s.Applied || !s.AppliedAt.IsZero() || s.Unknown {
				t.Errorf("empty database reports %+v", s)
			}
		}
		start := time.Now().Add(-time.Minute)
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		applied, err := db.MigrationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != len(pending) {
			t.Fatalf("status after Migrate has %d steps, before %d", len(applied), len(pending))
		}
		for _, s := range applied {
			if !s.Applied || s.Unknown || s.AppliedAt.Before(start) || s.AppliedAt.After(time.Now().Add(time.Minute)) || s.AppliedAt.Location() != time.UTC {
				t.Errorf("after Migrate: %+v", s)
			}
		}
	}
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		db, err := storage.Open(testContext(t), storagetest.NewPostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		check(t, db)
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db, err := storage.Open(testContext(t), storagetest.SQLiteURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		check(t, db)
	})
}

// Five instances starting at once against one fresh database: every Migrate
// succeeds and each step is applied exactly once.
func TestConcurrentMigrate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"postgres", storagetest.NewPostgresURL},
		{"sqlite", storagetest.SQLiteURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			u := tc.url(t)
			dbs := make([]*storage.DB, 5)
			for i := range dbs {
				db, err := storage.Open(ctx, u) // a pool of its own each
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = db.Close() }()
				dbs[i] = db
			}
			errs := make([]error, len(dbs))
			var wg sync.WaitGroup
			for i, db := range dbs {
				wg.Go(func() { errs[i] = db.Migrate(ctx) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("instance %d: %v", i, err)
				}
			}
			status, err := dbs[0].MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var rows, distinct int
			if err := scanOne(ctx, dbs[0], "SELECT count(*), count(DISTINCT version) FROM schema_migrations", nil, &rows, &distinct); err != nil {
				t.Fatal(err)
			}
			if rows != len(status) || distinct != rows {
				t.Fatalf("schema_migrations has %d rows (%d distinct) for %d steps", rows, distinct, len(status))
			}
			var roles int
			if err := scanOne(ctx, dbs[0], "SELECT count(*) FROM roles", nil, &roles); err != nil || roles != 2 {
				t.Fatalf("roles seeded %d times over (%v)", roles, err)
			}
		})
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := testContext(t)
		if err := exec(ctx, db, "INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')"); err != nil {
			t.Fatal(err)
		}
		err := db.Migrate(ctx)
		if !errors.Is(err, storage.ErrSchemaTooNew) {
			t.Fatalf("Migrate = %v, want ErrSchemaTooNew", err)
		}
		if !strings.Contains(err.Error(), "9999") {
			t.Errorf("error does not say which version: %v", err)
		}
		status, err := db.MigrationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last := status[len(status)-1]
		if last.Version != 9999 || !last.Unknown || !last.Applied || last.Name != "from_the_future" {
			t.Fatalf("status does not show the unknown step: %+v", last)
		}
	})
}

// A step that fails leaves neither its changes nor its schema_migrations row,
// and the steps before it stay applied.
func TestFailedStepRollsBack(t *testing.T) {
	t.Parallel()
	steps := func(d storage.Dialect) fstest.MapFS {
		return fstest.MapFS{
			"m/0001_a.up.sql": {Data: []byte("CREATE TABLE a (x integer);")},
			"m/0002_b.up.sql": {Data: []byte("CREATE TABLE b (x integer); INSERT INTO b VALUES (1); SELECT no_such_function();")},
		}
	}
	check := func(t *testing.T, db *storage.DB) {
		ctx := testContext(t)
		if err := db.MigrateFrom(ctx, steps(db.Dialect()), "m"); err == nil || !strings.Contains(err.Error(), "0002_b") {
			t.Fatalf("Migrate = %v, want the failure of 0002_b", err)
		}
		var versions int
		if err := scanOne(ctx, db, "SELECT count(*) FROM schema_migrations", nil, &versions); err != nil || versions != 1 {
			t.Fatalf("schema_migrations rows %d (%v), want 1", versions, err)
		}
		if err := exec(ctx, db, "INSERT INTO a VALUES (1)"); err != nil {
			t.Errorf("step 1 was lost: %v", err)
		}
		if err := exec(ctx, db, "SELECT * FROM b"); err == nil {
			t.Errorf("table b of the failed step exists")
		}
	}
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		db, err := storage.Open(testContext(t), storagetest.NewPostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		check(t, db)
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		db, err := storage.Open(testContext(t), storagetest.SQLiteURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close() }()
		check(t, db)
	})
}

func TestSchemaConstraints(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := testContext(t)
		insertUser := func(email string, legacyID any, roleID int) error {
			return exec(ctx, db, `INSERT INTO users (id, email, hashed_password, role_id, legacy_id) VALUES ($1, $2, 'h', $3, $4)`,
				uuid.NewString(), email, roleID, legacyID)
		}
		if err := insertUser("Alice@Example.com", int64(41), 2); err != nil {
			t.Fatal(err)
		}
		for _, email := range []string{"alice@example.com", "ALICE@EXAMPLE.COM", "Alice@Example.com"} {
			if err := insertUser(email, nil, 2); !storage.IsUniqueViolation(err) {
				t.Errorf("second user %q: err = %v, want a unique violation", email, err)
			}
		}
		if err := insertUser("bob@example.com", int64(41), 2); !storage.IsUniqueViolation(err) {
			t.Errorf("legacy_id taken twice: err = %v, want a unique violation", err)
		}
		// Users without a legacy id are many.
		for _, email := range []string{"c@example.com", "d@example.com"} {
			if err := insertUser(email, nil, 2); err != nil {
				t.Errorf("user %s without legacy id: %v", email, err)
			}
		}
		if err := insertUser("e@example.com", nil, 99); !storage.IsForeignKeyViolation(err) {
			t.Errorf("unknown role: err = %v, want a foreign key violation", err)
		}
		if storage.IsUniqueViolation(errors.New("x")) || storage.IsForeignKeyViolation(nil) {
			t.Error("plain errors reported as constraint violations")
		}

		var admin, user string
		if err := scanOne(ctx, db, "SELECT (SELECT name FROM roles WHERE id = 1), (SELECT name FROM roles WHERE id = 2)", nil, &admin, &user); err != nil {
			t.Fatal(err)
		}
		if admin != "admin" || user != "user" {
			t.Errorf("seeded roles 1, 2 = %q, %q; want admin, user", admin, user)
		}
		if err := exec(ctx, db, "INSERT INTO roles (name) VALUES ('analyst')"); err != nil {
			t.Errorf("a new role after the seeded ids: %v", err)
		}

		ev := uuid.NewString()
		insertEvent := func() error {
			return exec(ctx, db, `INSERT INTO audit_logs (event_id, user_id, action, details) VALUES ($1, $2, 'auth.login.failed', '{"reason":"bad_password"}')`,
				ev, uuid.NewString()) // a user that does not exist: no foreign key
		}
		if err := insertEvent(); err != nil {
			t.Fatal(err)
		}
		if err := insertEvent(); !storage.IsUniqueViolation(err) {
			t.Errorf("event delivered twice: err = %v, want a unique violation", err)
		}
	})
}

// Times written from Go come back equal, and column defaults sort with them.
func TestTimesRoundTrip(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := testContext(t)
		id := uuid.NewString()
		loc := time.FixedZone("X", -5*3600)
		expires := time.Date(2030, 1, 2, 3, 4, 5, 123456000, loc)
		if err := exec(ctx, db, `INSERT INTO users (id, email, hashed_password, is_verified) VALUES ($1, 'u@example.com', 'h', $2)`, id, true); err != nil {
			t.Fatal(err)
		}
		if err := exec(ctx, db, `INSERT INTO user_sessions (id, user_id, expires_at) VALUES ('s1', $1, $2)`, id, expires); err != nil {
			t.Fatal(err)
		}
		var got, created time.Time
		var verified, active bool
		if err := scanOne(ctx, db, `SELECT s.expires_at, s.created_at, u.is_verified, u.is_active FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = 's1'`, nil,
			&got, &created, &verified, &active); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(expires) {
			t.Errorf("expires_at = %v, want %v", got, expires)
		}
		if d := time.Since(created); d < -time.Minute || d > time.Minute {
			t.Errorf("default created_at = %v, not now", created)
		}
		if !verified || !active {
			t.Errorf("booleans: verified %v active %v", verified, active)
		}
		var later int
		if err := scanOne(ctx, db, `SELECT count(*) FROM user_sessions WHERE expires_at > created_at AND created_at < $1`, []any{expires}, &later); err != nil || later != 1 {
			t.Errorf("time comparison across default and bound values: %d, %v", later, err)
		}
		// Deleting the user removes its session history with it.
		if err := exec(ctx, db, `DELETE FROM users WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := scanOne(ctx, db, `SELECT count(*) FROM user_sessions`, nil, &left); err != nil || left != 0 {
			t.Errorf("sessions left after deleting the user: %d, %v", left, err)
		}
	})
}

// Transactions that read and then write, from many goroutines at once, all
// commit: BEGIN IMMEDIATE makes them queue on the busy timeout instead of
// failing with SQLITE_BUSY when a deferred read lock cannot be upgraded.
func TestSQLiteConcurrentWriters(t *testing.T) {
	t.Parallel()
	db := storagetest.NewSQLite(t)
	ctx := testContext(t)
	const workers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				tx, err := db.SQL().BeginTx(ctx, nil)
				if err != nil {
					errs <- err
					return
				}
				var n int
				if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM audit_logs").Scan(&n); err != nil {
					_ = tx.Rollback()
					errs <- err
					return
				}
				if _, err := tx.ExecContext(ctx, "INSERT INTO audit_logs (event_id, action, resource_id) VALUES (?, 'test', ?)",
					uuid.NewString(), strings.Repeat("x", w*each+i%3)); err != nil {
					_ = tx.Rollback()
					errs <- err
					return
				}
				if err := tx.Commit(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var n int
	if err := db.SQL().QueryRowContext(ctx, "SELECT count(*) FROM audit_logs").Scan(&n); err != nil || n != workers*each {
		t.Fatalf("rows = %d (%v), want %d", n, err, workers*each)
	}
}
