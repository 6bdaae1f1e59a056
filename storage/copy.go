package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

const (
	defaultCopyBatch = 1000
	// maxCopyBatch keeps one multi-row INSERT of the widest table (users,
	// 15 columns) under SQLite's limit of 32766 bound parameters.
	maxCopyBatch = 2000
)

// CopyOptions changes how Copy works.
type CopyOptions struct {
	// Merge allows a destination that already has users or audit rows.
	// Rows it already has are then skipped, not updated: a user with the
	// same id, e-mail or legacy id; a session with the same id, or whose
	// user was skipped; an audit row with the same event_id. Re-running a
	// copy with Merge is therefore a no-op. Roles are upserted by id
	// either way (see Copy).
	Merge bool
	// DryRun reads and counts every source row and checks that the copy
	// would be allowed, but writes nothing: the destination is not even
	// migrated.
	DryRun bool
	// BatchSize is how many rows are read before they are written in one
	// statement (default 1000, at most 2000). It bounds memory, whatever
	// the size of the tables.
	BatchSize int
	// Progress, if set, is called after each batch with the running
	// counts of the table being copied (for a progress display).
	Progress func(TableReport)
}

// TableReport counts one table's rows.
type TableReport struct {
	Table string
	// Read is how many rows the source has.
	Read int64
	// Written is how many rows were inserted into the destination (for
	// roles: inserted, or updated because they differed). Zero in a dry run.
	Written int64
	// Skipped is how many rows the destination already had (Merge), or, for
	// sessions, whose user it did not take. Roles that were already equal
	// count here too. Zero in a dry run.
	Skipped int64
}

// CopyReport is what Copy did, one entry per table in the order copied:
// roles, users, user_mfa, mfa_recovery_codes, user_sessions, audit_logs.
// Reset and verification tokens (account_tokens) are not copied: they live
// minutes, and a user asks for a new link.
type CopyReport struct {
	DryRun bool
	Tables []TableReport
}

// Copy copies roles, users, session history and audit rows from src to dst,
// in any direction between the dialects (SQLite to PostgreSQL is the move from
// the embedded default to production). Rows travel as Go values, so each
// side's representation of times, booleans, UUIDs and JSON is respected; times
// are kept to the microsecond, PostgreSQL's precision.
//
// src must be fully migrated by this binary; Copy migrates dst first (except
// in a dry run) and refuses when the two are then at different versions. Copy
// only reads src, inside one read-only snapshot, so users, sessions and audit
// rows are consistent with each other even if src is in use.
//
// Everything is written in one transaction on dst: a copy that fails or is
// cancelled leaves dst's data as it was (its schema stays migrated). Without
// opts.Merge, dst must have no users and no audit rows (ErrDestinationNotEmpty).
//
// What is kept: every column of every row, including user ids, password
// hashes, legacy ids, lockout fields, timestamps, event ids and details.
// Roles are upserted by id, their name, permissions and created_at taken
// from src, because both databases start with the seeded roles 1 and 2;
// a role name that dst uses for a different id is an error rather than a
// guess. Audit row ids are kept when dst starts empty; under Merge dst assigns
// new ids instead, because the ids of two databases overlap and an audit row
// must never be dropped for a clash of surrogate keys (its event_id is what
// identifies it). On PostgreSQL the identity sequences of roles and audit_logs
// are moved past the copied ids.
//
// On error the report is empty: nothing was written.
func Copy(ctx context.Context, src, dst *DB, opts CopyOptions) (CopyReport, error) {
	batch := opts.BatchSize
	if batch <= 0 {
		batch = defaultCopyBatch
	}
	batch = min(batch, maxCopyBatch)

	dstMigrated, err := checkCopySchemas(ctx, src, dst, opts.DryRun)
	if err != nil {
		return CopyReport{}, err
	}

	in, err := src.beginCopyRead(ctx)
	if err != nil {
		return CopyReport{}, fmt.Errorf("storage: copy: read the source: %w", err)
	}
	defer in.rollback(ctx)
	tables := copyTables()
	for _, t := range tables {
		if err := in.checkColumns(ctx, t); err != nil {
			return CopyReport{}, err
		}
	}

	var out *copySide
	if !opts.DryRun {
		w, err := dst.beginCopyWrite(ctx)
		if err != nil {
			return CopyReport{}, fmt.Errorf("storage: copy: write the destination: %w", err)
		}
		defer w.rollback(ctx)
		out = &w
		if !opts.Merge {
			if err := checkCopyEmpty(ctx, w.copyQueryRow); err != nil {
				return CopyReport{}, err
			}
		}
	} else if !opts.Merge && dstMigrated {
		if err := checkCopyEmpty(ctx, dst.copyQueryRow); err != nil {
			return CopyReport{}, err
		}
	}

	report := CopyReport{DryRun: opts.DryRun}
	for _, t := range tables {
		tr, err := copyTable(ctx, in, out, t, opts, batch)
		if err != nil {
			return CopyReport{}, err
		}
		report.Tables = append(report.Tables, tr)
	}
	if out == nil {
		return report, nil
	}
	if out.dialect == Postgres {
		for _, table := range []string{"roles", "audit_logs"} {
			// is_called=false: the next id handed out is max+1 itself.
			q := `SELECT setval(pg_get_serial_sequence('` + table + `', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM ` + table + `), false)`
			if _, err := out.pg.Exec(ctx, q); err != nil {
				return CopyReport{}, fmt.Errorf("storage: copy: reset the id sequence of %s: %w", table, err)
			}
		}
	}
	if err := out.commit(ctx); err != nil {
		return CopyReport{}, fmt.Errorf("storage: copy: commit: %w", err)
	}
	return report, nil
}

// checkCopySchemas refuses a source this binary has not fully migrated, and
// migrates the destination (unless dryRun). It reports whether the
// destination has a schema at all (a dry run may find it still empty).
func checkCopySchemas(ctx context.Context, src, dst *DB, dryRun bool) (dstMigrated bool, err error) {
	srcStatus, err := src.MigrationStatus(ctx)
	if err != nil {
		return false, fmt.Errorf("storage: copy: source: %w", err)
	}
	for _, s := range srcStatus {
		switch {
		case s.Unknown:
			return false, fmt.Errorf("%w: the source has migration %04d_%s, which this binary does not know; copy with a Portero at least as new as the one that migrated it", ErrSchemaMismatch, s.Version, s.Name)
		case !s.Applied:
			return false, fmt.Errorf("%w: the source lacks migration %04d_%s; migrate it first", ErrSchemaMismatch, s.Version, s.Name)
		}
	}
	if !dryRun {
		if err := dst.Migrate(ctx); err != nil {
			return false, fmt.Errorf("storage: copy: migrate the destination: %w", err)
		}
	}
	dstStatus, err := dst.MigrationStatus(ctx)
	if err != nil {
		return false, fmt.Errorf("storage: copy: destination: %w", err)
	}
	for _, s := range dstStatus {
		if s.Unknown {
			return false, fmt.Errorf("%w: the destination has migration %04d_%s, which this binary does not know", ErrSchemaMismatch, s.Version, s.Name)
		}
		dstMigrated = dstMigrated || s.Applied
	}
	if !dryRun && !slices.Equal(copyVersions(srcStatus), copyVersions(dstStatus)) {
		return false, fmt.Errorf("%w: source versions %v, destination versions %v", ErrSchemaMismatch, copyVersions(srcStatus), copyVersions(dstStatus))
	}
	return dstMigrated, nil
}

func copyVersions(status []MigrationStatus) []int {
	var out []int
	for _, s := range status {
		if s.Applied {
			out = append(out, s.Version)
		}
	}
	return out
}

// checkCopyEmpty refuses a destination with users or audit rows. Counting (not
// just EXISTS) costs little next to a copy and makes the refusal specific.
func checkCopyEmpty(ctx context.Context, copyQueryRow func(context.Context, string, ...any) copyScanner) error {
	var users, audits int64
	err := copyQueryRow(ctx, `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM audit_logs)`).Scan(&users, &audits)
	if err != nil {
		return fmt.Errorf("storage: copy: count the destination's rows: %w", err)
	}
	if users > 0 || audits > 0 {
		return fmt.Errorf("%w (%d users, %d audit rows); copy into an empty database, or merge", ErrDestinationNotEmpty, users, audits)
	}
	return nil
}

// colKind is how a column's values travel between the dialects.
type colKind uint8

const (
	kindInt  colKind = iota // int64
	kindText                // string
	kindBool                // bool
	kindTime                // time.Time, UTC, to the microsecond
	kindUUID                // uuid.UUID (uuid in PostgreSQL, lower-case text in SQLite)
	kindJSON                // string holding JSON (jsonb in PostgreSQL, text in SQLite)
)

type copyColumn struct {
	name string
	kind colKind
}

// copySpec is one table as Copy moves it.
type copySpec struct {
	name string
	cols []copyColumn // cols[0] is the primary key
	// upsert: rows dst already has (same id) are updated from src.
	upsert bool
	// renumber: under Merge, dst assigns cols[0] (see Copy), and the UUID
	// column naturalKey identifies a row instead.
	renumber   bool
	naturalKey int
	// userCol is the index of a column referencing users(id), or -1. Under
	// Merge, rows whose user dst does not have (it was skipped) are skipped.
	userCol int
}

// copyTables lists the tables in an order that satisfies their foreign keys.
// A column added by a later migration must be added here too; Copy refuses a
// source table with a column it does not list rather than drop its values.
func copyTables() []copySpec {
	return []copySpec{
		{name: "roles", upsert: true, userCol: -1, cols: []copyColumn{
			{"id", kindInt}, {"name", kindText}, {"permissions", kindJSON}, {"created_at", kindTime}, {"mfa_required", kindBool},
		}},
		{name: "users", userCol: -1, cols: []copyColumn{
			{"id", kindUUID}, {"email", kindText}, {"hashed_password", kindText},
			{"first_name", kindText}, {"last_name", kindText}, {"role_id", kindInt},
			{"is_active", kindBool}, {"is_superuser", kindBool}, {"is_verified", kindBool},
			{"last_login", kindTime}, {"login_attempts", kindInt}, {"locked_until", kindTime},
			{"legacy_id", kindInt}, {"created_at", kindTime}, {"updated_at", kindTime},
			{"legacy_import", kindJSON},
		}},
		// A user's second factor moves with the user: leaving it behind
		// would turn two-step logins into password-only ones. The sealed
		// secret opens with the same secret_key on the other side.
		{name: "user_mfa", userCol: 0, cols: []copyColumn{
			{"user_id", kindUUID}, {"secret", kindText}, {"confirmed_at", kindTime}, {"last_step", kindInt}, {"created_at", kindTime},
		}},
		{name: "mfa_recovery_codes", userCol: 0, cols: []copyColumn{
			{"user_id", kindUUID}, {"code_hash", kindText}, {"used_at", kindTime},
		}},
		{name: "user_sessions", userCol: 1, cols: []copyColumn{
			{"id", kindText}, {"user_id", kindUUID}, {"ip_address", kindText}, {"user_agent", kindText},
			{"created_at", kindTime}, {"last_activity", kindTime}, {"expires_at", kindTime},
			{"ended_at", kindTime}, {"end_reason", kindText},
		}},
		{name: "audit_logs", renumber: true, naturalKey: 1, userCol: -1, cols: []copyColumn{
			{"id", kindInt}, {"event_id", kindUUID}, {"user_id", kindUUID}, {"action", kindText},
			{"resource", kindText}, {"resource_id", kindText}, {"ip_address", kindText},
			{"user_agent", kindText}, {"details", kindJSON}, {"created_at", kindTime},
		}},
	}
}

func (t copySpec) names(cols []copyColumn) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

// selectSQL reads every column in primary key order. UUID and JSON columns
// are cast to text, which both dialects accept and both return as a string.
func (t copySpec) selectSQL() string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		if c.kind == kindUUID || c.kind == kindJSON {
			b.WriteString("CAST(" + c.name + " AS text)")
		} else {
			b.WriteString(c.name)
		}
	}
	b.WriteString(" FROM " + t.name + " ORDER BY " + t.cols[0].name)
	return b.String()
}

// copyTable streams one table from in to out (nil in a dry run), batch rows
// at a time.
func copyTable(ctx context.Context, in copySide, out *copySide, t copySpec, opts CopyOptions, batchSize int) (TableReport, error) {
	tr := TableReport{Table: t.name}
	rows, closeRows, err := in.query(ctx, t.selectSQL())
	if err != nil {
		return tr, fmt.Errorf("storage: copy %s: read: %w", t.name, err)
	}
	defer closeRows()

	batch := make([][]any, 0, batchSize)
	flush := func() error {
		if out != nil {
			written, err := writeBatch(ctx, *out, t, batch, opts.Merge)
			if err != nil {
				where := ""
				var pg *pgconn.PgError
				if errors.As(err, &pg) && pg.Where != "" {
					where = " (" + pg.Where + ")" // COPY names the line of the batch it refused
				}
				return fmt.Errorf("storage: copy %s: rows %d to %d%s: %w", t.name, tr.Read-int64(len(batch))+1, tr.Read, where, err)
			}
			tr.Written += written
			tr.Skipped += int64(len(batch)) - written
		}
		batch = batch[:0]
		if opts.Progress != nil {
			opts.Progress(tr)
		}
		return nil
	}
	for rows.Next() {
		row, err := scanCopyRow(rows, t.cols)
		if err != nil {
			return tr, fmt.Errorf("storage: copy %s: read row %d: %w", t.name, tr.Read+1, err)
		}
		tr.Read++
		batch = append(batch, row)
		if len(batch) == batchSize {
			if err := flush(); err != nil {
				return tr, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return tr, fmt.Errorf("storage: copy %s: read: %w", t.name, err)
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return tr, err
		}
	}
	return tr, nil
}

// scanCopyRow reads one row into dialect-neutral Go values (nil for NULL).
func scanCopyRow(rows copyScanner, cols []copyColumn) ([]any, error) {
	dest := make([]any, len(cols))
	for i, c := range cols {
		switch c.kind {
		case kindInt:
			dest[i] = new(*int64)
		case kindBool:
			dest[i] = new(*bool)
		case kindTime:
			dest[i] = new(*time.Time)
		default:
			dest[i] = new(*string)
		}
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	row := make([]any, len(cols))
	for i, c := range cols {
		switch d := dest[i].(type) {
		case **int64:
			if *d != nil {
				row[i] = **d
			}
		case **bool:
			if *d != nil {
				row[i] = **d
			}
		case **time.Time:
			if *d != nil {
				row[i] = (**d).UTC().Truncate(time.Microsecond)
			}
		case **string:
			if *d == nil {
				break
			}
			if c.kind != kindUUID {
				row[i] = **d
				break
			}
			u, err := uuid.Parse(**d)
			if err != nil {
				return nil, fmt.Errorf("column %s: %q is not a UUID", c.name, **d)
			}
			row[i] = u
		}
	}
	return row, nil
}

// copyArg converts a neutral value into what d's driver binds: UUIDs as
// pgtype.UUID for pgx (which will not bind a uuid.UUID in COPY), as
// lower-case text for SQLite. Everything else binds as it is.
func copyArg(d Dialect, v any) any {
	u, ok := v.(uuid.UUID)
	if !ok {
		return v
	}
	if d == Postgres {
		return pgtype.UUID{Bytes: u, Valid: true}
	}
	return u.String()
}

// writeBatch writes rows of t to out and returns how many it wrote.
func writeBatch(ctx context.Context, out copySide, t copySpec, rows [][]any, merge bool) (int64, error) {
	cols := t.cols
	if merge && t.userCol >= 0 {
		// A source user can be skipped for clashing with another user of
		// dst (same e-mail); its rows must not land on that other user,
		// nor fail the foreign key.
		have, err := copyExisting(ctx, out, rows, t.userCol, "users", "id")
		if err != nil {
			return 0, err
		}
		rows = copyKeep(rows, t.userCol, have, true)
	}
	if merge && t.renumber {
		// Rows dst already has are left out here rather than only by ON
		// CONFLICT: an INSERT that is skipped still draws an id, and
		// SQLite's AUTOINCREMENT would never give those back.
		have, err := copyExisting(ctx, out, rows, t.naturalKey, t.name, t.cols[t.naturalKey].name)
		if err != nil {
			return 0, err
		}
		rows = copyKeep(rows, t.naturalKey, have, false)
		cols = cols[1:]
		trimmed := make([][]any, len(rows))
		for i, r := range rows {
			trimmed[i] = r[1:]
		}
		rows = trimmed
	}
	if len(rows) == 0 {
		return 0, nil
	}
	if !merge && !t.upsert && out.dialect == Postgres {
		// A fresh destination takes rows through COPY, several times faster
		// than INSERT for the audit history of a busy gateway.
		converted := make([][]any, len(rows))
		for i, r := range rows {
			c := make([]any, len(r))
			for j, v := range r {
				c[j] = copyArg(Postgres, v)
			}
			converted[i] = c
		}
		return out.pg.CopyFrom(ctx, pgx.Identifier{t.name}, t.names(cols), pgx.CopyFromRows(converted))
	}

	args := make([]any, 0, len(rows)*len(cols))
	for _, r := range rows {
		for _, v := range r {
			args = append(args, copyArg(out.dialect, v))
		}
	}
	q := copyInsertSQL(out.dialect, t, cols, len(rows), merge)
	n, err := out.exec(ctx, q, args...)
	if err != nil && t.upsert && IsUniqueViolation(err) {
		return 0, fmt.Errorf("a role name in the source belongs to a different role id in the destination; rename one of them first: %w", err)
	}
	return n, err
}

// copyInsertSQL is a multi-row INSERT of n rows. Upserting tables update the
// columns that differ, so a repeated copy reports (and writes) nothing; under
// merge other tables skip rows that clash with any unique key.
//
// SQLite gets anonymous "?" placeholders: it keeps "$N" names in a list that
// it searches linearly for every parameter, which makes a statement of
// thousands of "$N" quadratic to prepare and bind.
func copyInsertSQL(d Dialect, t copySpec, cols []copyColumn, n int, merge bool) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + t.name + " (" + strings.Join(t.names(cols), ", ") + ") VALUES ")
	p := 1
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := range cols {
			if j > 0 {
				b.WriteString(", ")
			}
			if d == SQLite {
				b.WriteByte('?')
			} else {
				b.WriteString("$" + strconv.Itoa(p))
				p++
			}
		}
		b.WriteByte(')')
	}
	switch {
	case t.upsert:
		var set, differ []string
		for _, c := range cols[1:] {
			set = append(set, c.name+" = excluded."+c.name)
			differ = append(differ, t.name+"."+c.name+" IS DISTINCT FROM excluded."+c.name)
		}
		b.WriteString(" ON CONFLICT (" + cols[0].name + ") DO UPDATE SET " + strings.Join(set, ", ") +
			" WHERE " + strings.Join(differ, " OR "))
	case merge:
		b.WriteString(" ON CONFLICT DO NOTHING")
	}
	return b.String()
}

// copyExisting returns which of the UUIDs in column col of rows dst's table
// already has in its column key.
func copyExisting(ctx context.Context, out copySide, rows [][]any, col int, table, key string) (map[uuid.UUID]bool, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	seen := make(map[uuid.UUID]bool)
	var args []any
	var ph []string
	for _, r := range rows {
		u := r[col].(uuid.UUID)
		if !seen[u] {
			seen[u] = true
			args = append(args, copyArg(out.dialect, u))
			if out.dialect == SQLite {
				ph = append(ph, "?") // see copyInsertSQL
			} else {
				ph = append(ph, "$"+strconv.Itoa(len(args)))
			}
		}
	}
	it, closeRows, err := out.query(ctx, `SELECT CAST(`+key+` AS text) FROM `+table+` WHERE `+key+` IN (`+strings.Join(ph, ", ")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("look up %s.%s: %w", table, key, err)
	}
	defer closeRows()
	have := make(map[uuid.UUID]bool, len(seen))
	for it.Next() {
		var s string
		if err := it.Scan(&s); err != nil {
			return nil, fmt.Errorf("look up %s.%s: %w", table, key, err)
		}
		u, err := uuid.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("look up %s.%s: %q is not a UUID", table, key, s)
		}
		have[u] = true
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("look up %s.%s: %w", table, key, err)
	}
	return have, nil
}

// copyKeep returns the rows whose UUID in column col is in set (want true)
// or not in it (want false).
func copyKeep(rows [][]any, col int, set map[uuid.UUID]bool, want bool) [][]any {
	kept := rows[:0:0]
	for _, r := range rows {
		if set[r[col].(uuid.UUID)] == want {
			kept = append(kept, r)
		}
	}
	return kept
}

// copyScanner is what pgx.Row(s) and *sql.Row(s) share.
type copyScanner interface {
	Scan(dest ...any) error
}

// copyRows is the part of pgx.Rows and *sql.Rows that Copy reads through.
type copyRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// copySide is one transaction of a copy, on either dialect.
type copySide struct {
	dialect Dialect
	pg      pgx.Tx
	sq      *sql.Tx
}

// beginCopyRead starts a read-only snapshot: REPEATABLE READ in PostgreSQL; in
// SQLite a deferred transaction (a read-only BeginTx skips the connection's
// BEGIN IMMEDIATE), whose first read fixes its view of the WAL. Neither
// blocks the source's writers.
func (db *DB) beginCopyRead(ctx context.Context) (copySide, error) {
	if db.dialect == Postgres {
		tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		return copySide{dialect: Postgres, pg: tx}, err
	}
	tx, err := db.sqlDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	return copySide{dialect: SQLite, sq: tx}, err
}

// beginCopyWrite starts the one transaction every write of a copy goes into.
func (db *DB) beginCopyWrite(ctx context.Context) (copySide, error) {
	if db.dialect == Postgres {
		tx, err := db.pool.Begin(ctx)
		return copySide{dialect: Postgres, pg: tx}, err
	}
	tx, err := db.sqlDB.BeginTx(ctx, nil)
	return copySide{dialect: SQLite, sq: tx}, err
}

func (s copySide) query(ctx context.Context, q string, args ...any) (copyRows, func(), error) {
	if s.pg != nil {
		rows, err := s.pg.Query(ctx, q, args...)
		if err != nil {
			return nil, nil, err
		}
		return rows, rows.Close, nil
	}
	rows, err := s.sq.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, nil, err
	}
	return rows, func() { _ = rows.Close() }, nil
}

func (s copySide) copyQueryRow(ctx context.Context, q string, args ...any) copyScanner {
	if s.pg != nil {
		return s.pg.QueryRow(ctx, q, args...)
	}
	return s.sq.QueryRowContext(ctx, q, args...)
}

func (db *DB) copyQueryRow(ctx context.Context, q string, args ...any) copyScanner {
	if db.pool != nil {
		return db.pool.QueryRow(ctx, q, args...)
	}
	return db.sqlDB.QueryRowContext(ctx, q, args...)
}

func (s copySide) exec(ctx context.Context, q string, args ...any) (int64, error) {
	if s.pg != nil {
		tag, err := s.pg.Exec(ctx, q, args...)
		return tag.RowsAffected(), err
	}
	res, err := s.sq.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s copySide) commit(ctx context.Context) error {
	if s.pg != nil {
		return s.pg.Commit(ctx)
	}
	return s.sq.Commit()
}

// rollback ends the transaction unless it was committed; it runs even when
// ctx is done, so a cancelled copy still releases its locks at once.
func (s copySide) rollback(ctx context.Context) {
	if s.pg != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.pg.Rollback(rctx)
		return
	}
	_ = s.sq.Rollback()
}

// checkColumns refuses a table with a column copyTables does not list: a
// newer migration added it and this copy would silently drop its values.
func (s copySide) checkColumns(ctx context.Context, t copySpec) error {
	q := `SELECT name FROM pragma_table_info($1)`
	if s.dialect == Postgres {
		q = `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`
	}
	rows, closeRows, err := s.query(ctx, q, t.name)
	if err != nil {
		return fmt.Errorf("storage: copy %s: list its columns: %w", t.name, err)
	}
	defer closeRows()
	known := t.names(t.cols)
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("storage: copy %s: list its columns: %w", t.name, err)
		}
		if !slices.Contains(known, name) {
			return fmt.Errorf("%w: the source's %s has a column %q that this binary cannot copy", ErrSchemaMismatch, t.name, name)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("storage: copy %s: list its columns: %w", t.name, err)
	}
	return nil
}
