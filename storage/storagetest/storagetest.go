// Package storagetest gives tests a fresh, migrated database of each dialect,
// so that one store contract suite can run against PostgreSQL and SQLite.
//
// PostgreSQL is reached through PORTERO_TEST_POSTGRES, an administrative URL
// allowed to CREATE DATABASE (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable). When nothing
// answers there, tests fail with a message saying so; they never skip.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portero/portero/storage"
)

// DefaultPostgresURL is used when PORTERO_TEST_POSTGRES is unset.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// answerTimeout bounds how long a test waits for PostgreSQL before failing.
const answerTimeout = 3 * time.Second

// PostgresAdminURL returns PORTERO_TEST_POSTGRES or the default.
func PostgresAdminURL() string {
	if u := os.Getenv("PORTERO_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// NewPostgres creates a new database named portero_test_<random> on the
// server of PostgresAdminURL, migrates it and returns it open. The database
// is dropped (WITH (FORCE)) when the test ends, so every call is isolated
// from every other test, in this package or in any other run at the same time.
func NewPostgres(t testing.TB) *storage.DB {
	t.Helper()
	dbURL := NewPostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := storage.Open(ctx, dbURL, storage.WithConnectTimeout(answerTimeout))
	if err != nil {
		t.Fatalf("storagetest: open %s: %v", storage.Redact(dbURL), err)
	}
	t.Cleanup(func() { _ = db.Close() }) // runs before the drop: cleanups are LIFO
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("storagetest: migrate %s: %v", storage.Redact(dbURL), err)
	}
	return db
}

// NewPostgresURL is NewPostgres without opening or migrating: it returns the
// URL of a fresh empty database, dropped when the test ends. For tests that
// need several pools on one database, or an unmigrated one.
func NewPostgresURL(t testing.TB) string {
	t.Helper()
	adminURL := PostgresAdminURL()
	name := "portero_test_" + randomHex(t, 8)
	admin := connectAdmin(t, adminURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	_ = admin.Close(ctx)
	if err != nil {
		t.Fatalf("storagetest: CREATE DATABASE %s on %s: %v", name, storage.Redact(adminURL), err)
	}
	t.Cleanup(func() { dropDatabase(t, adminURL, name) })
	dbURL, err := withDatabase(adminURL, name)
	if err != nil {
		t.Fatalf("storagetest: PORTERO_TEST_POSTGRES: %v", err)
	}
	return dbURL
}

// NewSQLite returns a migrated SQLite database in a file under t.TempDir(),
// closed when the test ends.
func NewSQLite(t testing.TB) *storage.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := storage.Open(ctx, SQLiteURL(t))
	if err != nil {
		t.Fatalf("storagetest: open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() }) // before TempDir's removal: cleanups are LIFO
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("storagetest: migrate sqlite: %v", err)
	}
	return db
}

// SQLiteURL returns a sqlite:// URL for a database file that does not exist
// yet, under t.TempDir().
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite://" + filepath.Join(t.TempDir(), "portero.db")
}

// Each runs fn as the parallel subtests "postgres" and "sqlite", each with a
// fresh migrated database of that dialect.
func Each(t *testing.T, fn func(t *testing.T, db *storage.DB)) {
	t.Helper()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, NewPostgres(t))
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, NewSQLite(t))
	})
}

// connectAdmin connects to the administrative database, failing the test
// with a clear message when PostgreSQL does not answer in answerTimeout.
func connectAdmin(t testing.TB, adminURL string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		t.Fatalf("storagetest: PORTERO_TEST_POSTGRES=%s does not parse", storage.Redact(adminURL))
	}
	cfg.ConnectTimeout = answerTimeout
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("storagetest: PostgreSQL did not answer at %s within %s (start it, or point PORTERO_TEST_POSTGRES at one): %v",
			storage.Redact(adminURL), answerTimeout, err)
	}
	return conn
}

func dropDatabase(t testing.TB, adminURL, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		t.Errorf("storagetest: drop %s: PORTERO_TEST_POSTGRES does not parse", name)
		return
	}
	cfg.ConnectTimeout = answerTimeout
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Errorf("storagetest: drop %s: %v", name, err)
		return
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("storagetest: drop %s: %v", name, err)
	}
}

// withDatabase returns adminURL pointing at database name instead.
func withDatabase(adminURL, name string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("%s does not parse", storage.Redact(adminURL))
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("storagetest: random name: %v", err)
	}
	return hex.EncodeToString(b)
}
