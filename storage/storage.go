package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"modernc.org/sqlite"
)

// Dialect names the SQL database behind a DB; stores pick their queries by it.
type Dialect int

const (
	// Postgres is PostgreSQL through pgx v5 (DB.Pool).
	Postgres Dialect = iota + 1
	// SQLite is SQLite through modernc.org/sqlite and database/sql (DB.SQL).
	SQLite
)

// String returns "postgres" or "sqlite".
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "postgres"
	case SQLite:
		return "sqlite"
	default:
		return fmt.Sprintf("Dialect(%d)", int(d))
	}
}

const (
	defaultConnectTimeout = 5 * time.Second
	defaultSQLiteConns    = 4
)

type options struct {
	maxConns       int
	connectTimeout time.Duration
}

// Option changes an optional setting of Open.
type Option func(*options)

// WithMaxConns caps the number of open connections. For PostgreSQL it
// overrides the URL's pool_max_conns (default: pgx's, the larger of 4 and the
// CPU count); for a SQLite file it bounds concurrent readers (default 4;
// writers take turns whatever the number). An in-memory SQLite database
// always has exactly one connection. n <= 0 keeps the default.
func WithMaxConns(n int) Option {
	return func(o *options) { o.maxConns = n }
}

// WithConnectTimeout sets how long a PostgreSQL connection attempt may take
// when the URL has no connect_timeout (default 5s). Ignored for SQLite.
func WithConnectTimeout(d time.Duration) Option {
	return func(o *options) { o.connectTimeout = d }
}

// DB is an open relational database: a pgx pool for PostgreSQL or a
// database/sql handle for SQLite. It is safe for concurrent use.
type DB struct {
	dialect Dialect
	pool    *pgxpool.Pool
	sqlDB   *sql.DB
}

// Open opens the database rawURL names and checks that it answers, so a wrong
// host, password or path fails here rather than at the first request. It does
// not migrate; call Migrate for that. Errors never contain the URL's password.
func Open(ctx context.Context, rawURL string, opts ...Option) (*DB, error) {
	o := options{connectTimeout: defaultConnectTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	t, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch t.dialect {
	case Postgres:
		return openPostgres(ctx, t, rawURL, o)
	default:
		return openSQLite(ctx, t, rawURL, o)
	}
}

func pgConfig(t target, rawURL string, o options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(t.pgURL)
	if err != nil {
		// pgx's message redacts the URL on a best-effort basis and its
		// error value keeps the unredacted URL, so only a scrubbed copy of
		// the message is passed on, not the error itself.
		return nil, fmt.Errorf("%w: %s: %s", ErrInvalidURL, Redact(rawURL), t.scrub(err.Error()))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = o.connectTimeout
	}
	if o.maxConns > 0 {
		cfg.MaxConns = int32(min(o.maxConns, 1<<30))
		cfg.MinConns = min(cfg.MinConns, cfg.MaxConns)
		cfg.MinIdleConns = min(cfg.MinIdleConns, cfg.MaxConns)
	}
	return cfg, nil
}

func openPostgres(ctx context.Context, t target, rawURL string, o options) (*DB, error) {
	cfg, err := pgConfig(t, rawURL, o)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, t.connectError(rawURL, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, t.connectError(rawURL, err)
	}
	return &DB{dialect: Postgres, pool: pool}, nil
}

func openSQLite(ctx context.Context, t target, rawURL string, o options) (*DB, error) {
	if t.sqliteFile != "" {
		if err := prepareSQLiteFile(t.sqliteFile); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrConnect, rawURL, err)
		}
	}
	connector, err := sqlite.NewConnector(t.sqliteDSN)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidURL, rawURL, err)
	}
	db := sql.OpenDB(connector)
	switch {
	case t.memory:
		// Each connection to :memory: is a database of its own, so the one
		// connection must be the only one and must never be retired.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	case o.maxConns > 0:
		db.SetMaxOpenConns(o.maxConns)
		db.SetMaxIdleConns(o.maxConns)
	default:
		db.SetMaxOpenConns(defaultSQLiteConns)
		db.SetMaxIdleConns(defaultSQLiteConns)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrConnect, rawURL, err)
	}
	return &DB{dialect: SQLite, sqlDB: db}, nil
}

// prepareSQLiteFile creates the database's directory and, if the database
// does not exist yet, an empty file readable by its owner only: the file will
// hold password hashes, and SQLite gives its -wal and -shm files the mode of
// the database file.
func prepareSQLiteFile(path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("create database directory: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, os.ErrExist):
		return nil
	case err != nil:
		return fmt.Errorf("create database file: %w", err)
	}
	return f.Close()
}

// connectError wraps a driver's connection error. pgx's connection errors name
// host, user and database but not the password; the message is scrubbed all
// the same, and the cause stays reachable for errors.Is (context deadlines).
func (t target) connectError(rawURL string, err error) error {
	return &redactedError{
		msg:  fmt.Sprintf("%v: %s: %s", ErrConnect, Redact(rawURL), t.scrub(err.Error())),
		errs: []error{ErrConnect, err},
	}
}

// redactedError shows a scrubbed message while errors.Is and errors.As still
// see the sentinel and the cause.
type redactedError struct {
	msg  string
	errs []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.errs }

// Dialect reports which database this is.
func (db *DB) Dialect() Dialect { return db.dialect }

// Pool returns the pgx pool for PostgreSQL, nil for SQLite.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// SQL returns the database/sql handle for SQLite, nil for PostgreSQL.
func (db *DB) SQL() *sql.DB { return db.sqlDB }

// Ping checks that the database answers (for readiness probes).
func (db *DB) Ping(ctx context.Context) error {
	if db.pool != nil {
		return db.pool.Ping(ctx)
	}
	return db.sqlDB.PingContext(ctx)
}

// Close closes every connection. For SQLite it also checkpoints the WAL.
func (db *DB) Close() error {
	if db.pool != nil {
		db.pool.Close()
		return nil
	}
	return db.sqlDB.Close()
}
