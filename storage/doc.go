// Package storage opens Portero's relational database and keeps its schema.
//
// Why a package of its own: DESIGN.md places each store's queries with the
// package whose data it is (authn owns users, roles and session history, audit
// owns audit_logs). Opening the database, knowing its dialect and running the
// embedded schema migrations belong to neither of them, and putting them in
// either would make that package own two unrelated things. So this package
// owns exactly those three jobs and no queries about users or audit rows.
//
// # Backends
//
// Open takes a URL:
//
//   - postgres://… or postgresql://… (a SQLAlchemy-style postgresql+asyncpg://
//     is accepted too; the +driver part is ignored) opens a pgx v5 pool.
//     connect_timeout defaults to 5s when the URL has none, because pgx would
//     otherwise wait for the operating system's TCP timeout (minutes).
//   - sqlite://PATH (or sqlite3://PATH) opens PATH with the pure-Go modernc.org/sqlite driver (no
//     cgo). sqlite://./data/portero.db is relative to the working directory,
//     sqlite:///var/lib/portero.db is absolute, sqlite://:memory: and
//     sqlite://file::memory:?cache=shared are in-memory databases for tests.
//     A PATH starting with "file:" is handed to SQLite as a URI, so SQLite's
//     own URI parameters (mode, cache, …) work there; the driver's "_"
//     parameters are refused, because Open sets them itself.
//
// The driver is reached through sqlite.NewConnector and sql.OpenDB rather
// than sql.Open("sqlite", …): that needs no blank side-effect import and no
// process-global registration of our own.
//
// Every SQLite connection runs with journal_mode=WAL (readers never block the
// writer), busy_timeout=5000, foreign_keys=ON and synchronous=NORMAL (durable
// at each WAL checkpoint, safe against corruption; the usual pairing with WAL).
// Transactions start with BEGIN IMMEDIATE (_txlock=immediate): a transaction
// that reads and then writes would otherwise have to upgrade its lock and get
// SQLITE_BUSY at once, without waiting for the busy timeout, when another
// writer got there first. An in-memory database lives in one connection, so
// the pool is capped at one connection for it; stores must therefore never
// use the *sql.DB while holding a transaction on it.
//
// # Conventions for the stores built on top
//
// Times: PostgreSQL columns are timestamptz. SQLite stores times as UTC text
// "2006-01-02 15:04:05.999999999+00:00" (the driver's _time_format=sqlite
// with _timezone=UTC), which sorts chronologically as text and which the
// driver turns back into time.Time for columns declared TIMESTAMP. Bind
// time.Time values, never preformatted strings; column defaults write the
// same layout.
//
// UUIDs: uuid in PostgreSQL, lower-case canonical text in SQLite (a CHECK
// enforces it, so both backends compare them the same way).
//
// E-mail uniqueness is case-insensitive on both: a unique index on
// lower(email) in PostgreSQL (look users up with lower(email) = lower($1) so
// the index is used) and COLLATE NOCASE in SQLite. Both fold ASCII only
// (PostgreSQL's lower() depends on the database's ctype), so a store that wants
// identical behaviour for non-ASCII addresses normalises them in Go first.
//
// Placeholders: the SQLite driver binds $1, $2, … by number, so a statement
// whose SQL is portable can be written once with PostgreSQL placeholders.
//
// Constraint violations are told apart with IsUniqueViolation and
// IsForeignKeyViolation, which understand both drivers' errors.
//
// Tests of other packages get fresh migrated databases of both dialects
// from package storagetest (NewPostgres, NewSQLite, Each).
//
// # Schema
//
// Migrations are embedded SQL files, one numbered file per step and dialect:
// migrations/postgres/NNNN_name.up.sql and migrations/sqlite/NNNN_name.up.sql,
// with the same numbers and names in both. There are no down migrations: a
// rollback of Portero is a rollback of the binary, and a binary refuses a
// database whose schema is newer than it knows (ErrSchemaTooNew).
//
// 0001_init creates roles (seeded with 1 = admin, 2 = user: the migration
// guide's registration example sends role_id 2 for an ordinary user, and a
// user row without a role_id gets 2, the least privilege), users,
// user_sessions and audit_logs. audit_logs follows the migration guide's
// columns and indexes (user_id, action, created_at, plus ip_address for the
// per-address statistics) with two deliberate differences: an event_id column
// (unique, NOT NULL) so that re-delivering a spooled event is a no-op, and no
// foreign key or length limits, so that an event for a since-deleted user or
// with a long user agent can never be refused and block the spool behind it.
// details is jsonb (PostgreSQL) or JSON text checked with json_valid (SQLite).
package storage
