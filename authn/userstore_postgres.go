package authn

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgresDialect: uuid and jsonb columns are read as text so both backends
// scan into the same Go types; e-mail lookups go through lower(email) so the
// unique index on lower(email) serves them; text ordering uses the "C"
// collation, i.e. byte order, which is what SQLite does, whatever locale the
// database was created with.
var postgresDialect = sqlDialect{
	uuidText:      "%s::text",
	jsonText:      "%s::text",
	jsonParam:     "(%s::text)::jsonb",
	emailEquals:   "lower(%s) = lower(%s)",
	contains:      "strpos(%s, %s) > 0",
	binaryCollate: ` COLLATE "C"`,
	lazyCommit:    " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS lazy",
}

// pgQueryer is what *pgxpool.Pool and pgx.Tx have in common.
type pgQueryer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgConn runs the store's statements on a pgx pool (native protocol, not
// database/sql, so PostgreSQL keeps pgx's binary encoding and statement cache).
type pgConn struct{ pool *pgxpool.Pool }

var _ dbConn = pgConn{}

func (c pgConn) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	return pgQ{c.pool}.exec(ctx, sql, args...)
}

func (c pgConn) queryRow(ctx context.Context, sql string, args ...any) dbRow {
	return pgQ{c.pool}.queryRow(ctx, sql, args...)
}

func (c pgConn) query(ctx context.Context, sql string, args ...any) (dbRows, error) {
	return pgQ{c.pool}.query(ctx, sql, args...)
}

func (c pgConn) inTx(ctx context.Context, fn func(q dbQuerier) error) error {
	return pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error { return fn(pgQ{tx}) })
}

// pgQ adapts a pool or a transaction to dbQuerier.
type pgQ struct{ q pgQueryer }

func (q pgQ) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (q pgQ) queryRow(ctx context.Context, sql string, args ...any) dbRow {
	return pgRow{q.q.QueryRow(ctx, sql, args...)}
}

func (q pgQ) query(ctx context.Context, sql string, args ...any) (dbRows, error) {
	return q.q.Query(ctx, sql, args...)
}

// pgRow turns pgx.ErrNoRows into errNoRows.
type pgRow struct{ row pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	return err
}
