package storage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// migrationLockKey is the PostgreSQL advisory lock held for a whole Migrate
// run, so that instances starting together take turns; it is "Portero" in
// ASCII. Advisory locks are per database, so other databases on the same
// server are not affected.
const migrationLockKey int64 = 0x506f727465726f

// migration is one embedded schema step.
type migration struct {
	Version int
	Name    string
	SQL     string
}

// MigrationStatus is one schema step as seen in the database.
type MigrationStatus struct {
	Version int
	Name    string
	// Applied is true once the step has run; AppliedAt is then when, in UTC.
	Applied   bool
	AppliedAt time.Time
	// Unknown marks a step recorded in the database that this binary does
	// not have (a newer Portero migrated it); such a database is refused.
	Unknown bool
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.up\.sql$`)

// loadMigrations reads dir of fsys, in version order. A file whose name is
// not NNNN_name.up.sql, or a version used twice, is an error, so that a
// misnamed file cannot be skipped silently.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("storage: read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("storage: migration file %s/%s is not named NNNN_name.up.sql", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1]) // four digits: cannot fail
		if v == 0 {
			return nil, fmt.Errorf("storage: migration %s/%s: versions start at 0001", dir, e.Name())
		}
		body, err := fs.ReadFile(fsys, dir+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("storage: read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{Version: v, Name: m[2], SQL: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.Version - b.Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("storage: migration version %04d appears twice in %s", out[i].Version, dir)
		}
	}
	return out, nil
}

// migrations returns the embedded steps for d.
func migrations(d Dialect) ([]migration, error) {
	return loadMigrations(migrationFiles, "migrations/"+d.String())
}

// appliedRow is one row of schema_migrations.
type appliedRow struct {
	Version   int
	Name      string
	AppliedAt time.Time
}

// nextMigration decides what to run given what has run. It returns nil when
// the schema is current, and refuses a database that a newer binary migrated
// or whose history this binary does not recognise.
func nextMigration(known []migration, applied []appliedRow) (*migration, error) {
	latest := 0
	if len(known) > 0 {
		latest = known[len(known)-1].Version
	}
	isKnown := make(map[int]bool, len(known))
	for _, m := range known {
		isKnown[m.Version] = true
	}
	isApplied := make(map[int]bool, len(applied))
	highest := 0
	for _, a := range applied {
		isApplied[a.Version] = true
		highest = max(highest, a.Version)
	}
	if highest > latest {
		return nil, fmt.Errorf("%w: the database is at version %d, this binary knows versions up to %d; run a Portero at least as new as the one that migrated it", ErrSchemaTooNew, highest, latest)
	}
	for _, a := range applied {
		if !isKnown[a.Version] {
			return nil, fmt.Errorf("%w: version %d (%s) is recorded but is not one of this binary's migrations", ErrMigrationHistory, a.Version, a.Name)
		}
	}
	for i := range known {
		if isApplied[known[i].Version] {
			continue
		}
		if highest > known[i].Version {
			return nil, fmt.Errorf("%w: version %d is recorded but earlier version %d is not", ErrMigrationHistory, highest, known[i].Version)
		}
		return &known[i], nil
	}
	return nil, nil
}

// Migrate brings the schema up to the latest embedded version. Each step runs
// in its own transaction together with its schema_migrations row, so a failed
// step leaves nothing behind. Concurrent callers, in this process or in other
// Portero instances, take turns: on PostgreSQL behind an advisory lock held
// for the whole run, on SQLite behind each step's BEGIN IMMEDIATE, and every
// step re-reads what has been applied after it has the lock. Running it on a
// current schema changes nothing.
func (db *DB) Migrate(ctx context.Context) error {
	known, err := migrations(db.dialect)
	if err != nil {
		return err
	}
	return db.migrate(ctx, known)
}

func (db *DB) migrate(ctx context.Context, known []migration) error {
	if db.dialect == Postgres {
		return migratePostgres(ctx, db.pool, known)
	}
	for {
		done, err := db.stepSQLite(ctx, known)
		if err != nil || done {
			return err
		}
	}
}

const (
	createMigrationsPostgres = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`
	createMigrationsSQLite = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'))
)`
	selectMigrations = `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`
)

func migratePostgres(ctx context.Context, pool *pgxpool.Pool, known []migration) (err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("storage: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("storage: migrate: take the migration lock: %w", err)
	}
	defer func() {
		// Unlock even when ctx is done. If that fails, closing the
		// connection releases the lock on the server instead.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", migrationLockKey); uerr != nil {
			_ = conn.Conn().Close(uctx)
		}
	}()
	if _, err := conn.Exec(ctx, createMigrationsPostgres); err != nil {
		return fmt.Errorf("storage: migrate: create schema_migrations: %w", err)
	}
	for {
		done, err := stepPostgres(ctx, conn, known)
		if err != nil || done {
			return err
		}
	}
}

func stepPostgres(ctx context.Context, conn *pgxpool.Conn, known []migration) (done bool, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("storage: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // no-op after Commit
	rows, err := tx.Query(ctx, selectMigrations)
	if err != nil {
		return false, fmt.Errorf("storage: migrate: read schema_migrations: %w", err)
	}
	var applied []appliedRow
	for rows.Next() {
		var a appliedRow
		if err := rows.Scan(&a.Version, &a.Name, &a.AppliedAt); err != nil {
			rows.Close()
			return false, fmt.Errorf("storage: migrate: read schema_migrations: %w", err)
		}
		applied = append(applied, a)
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("storage: migrate: read schema_migrations: %w", err)
	}
	m, err := nextMigration(known, applied)
	if err != nil || m == nil {
		return true, err
	}
	// Without arguments pgx sends the file in the simple protocol, which
	// runs every statement in it.
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("storage: migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
		return false, fmt.Errorf("storage: migration %04d_%s: record it: %w", m.Version, m.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("storage: migration %04d_%s: commit: %w", m.Version, m.Name, err)
	}
	return false, nil
}

func (db *DB) stepSQLite(ctx context.Context, known []migration) (done bool, err error) {
	// BEGIN IMMEDIATE (the connection's _txlock): the write lock is taken
	// before schema_migrations is read, so two runners cannot both decide
	// to apply the same step.
	tx, err := db.sqlDB.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("storage: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if _, err := tx.ExecContext(ctx, createMigrationsSQLite); err != nil {
		return false, fmt.Errorf("storage: migrate: create schema_migrations: %w", err)
	}
	rows, err := tx.QueryContext(ctx, selectMigrations)
	if err != nil {
		return false, fmt.Errorf("storage: migrate: read schema_migrations: %w", err)
	}
	var applied []appliedRow
	for rows.Next() {
		var a appliedRow
		if err := rows.Scan(&a.Version, &a.Name, &a.AppliedAt); err != nil {
			_ = rows.Close()
			return false, fmt.Errorf("storage: migrate: read schema_migrations: %w", err)
		}
		applied = append(applied, a)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return false, fmt.Errorf("storage: migrate: read schema_migrations: %w", err)
	}
	m, err := nextMigration(known, applied)
	if err != nil || m == nil {
		return true, err
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("storage: migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name); err != nil {
		return false, fmt.Errorf("storage: migration %04d_%s: record it: %w", m.Version, m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("storage: migration %04d_%s: commit: %w", m.Version, m.Name, err)
	}
	return false, nil
}

// MigrationStatus lists every embedded step, applied or pending, in version
// order, followed by any step the database records that this binary does not
// know (Unknown). It takes no lock and changes nothing.
func (db *DB) MigrationStatus(ctx context.Context) ([]MigrationStatus, error) {
	known, err := migrations(db.dialect)
	if err != nil {
		return nil, err
	}
	applied, err := db.appliedMigrations(ctx)
	if err != nil {
		return nil, err
	}
	return mergeStatus(known, applied), nil
}

func mergeStatus(known []migration, applied []appliedRow) []MigrationStatus {
	byVersion := make(map[int]appliedRow, len(applied))
	for _, a := range applied {
		byVersion[a.Version] = a
	}
	out := make([]MigrationStatus, 0, len(known))
	for _, m := range known {
		s := MigrationStatus{Version: m.Version, Name: m.Name}
		if a, ok := byVersion[m.Version]; ok {
			s.Applied, s.AppliedAt = true, a.AppliedAt.UTC()
			delete(byVersion, m.Version)
		}
		out = append(out, s)
	}
	for _, a := range applied {
		if _, left := byVersion[a.Version]; left {
			out = append(out, MigrationStatus{Version: a.Version, Name: a.Name, Applied: true, AppliedAt: a.AppliedAt.UTC(), Unknown: true})
		}
	}
	return out
}

// appliedMigrations reads schema_migrations, or nothing if it does not exist yet.
func (db *DB) appliedMigrations(ctx context.Context) ([]appliedRow, error) {
	var applied []appliedRow
	if db.dialect == Postgres {
		var exists bool
		if err := db.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
			return nil, fmt.Errorf("storage: migration status: %w", err)
		}
		if !exists {
			return nil, nil
		}
		rows, err := db.pool.Query(ctx, selectMigrations)
		if err != nil {
			return nil, fmt.Errorf("storage: migration status: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var a appliedRow
			if err := rows.Scan(&a.Version, &a.Name, &a.AppliedAt); err != nil {
				return nil, fmt.Errorf("storage: migration status: %w", err)
			}
			applied = append(applied, a)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("storage: migration status: %w", err)
		}
		return applied, nil
	}

	var n int
	if err := db.sqlDB.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("storage: migration status: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	rows, err := db.sqlDB.QueryContext(ctx, selectMigrations)
	if err != nil {
		return nil, fmt.Errorf("storage: migration status: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var a appliedRow
		if err := rows.Scan(&a.Version, &a.Name, &a.AppliedAt); err != nil {
			return nil, fmt.Errorf("storage: migration status: %w", err)
		}
		applied = append(applied, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: migration status: %w", err)
	}
	return applied, nil
}
