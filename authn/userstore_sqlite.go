package authn

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// sqliteDialect: uuids and JSON are text already; the e-mail column is
// COLLATE NOCASE, so a plain = is case-insensitive (ASCII) and can use the
// column's unique index, where lower(email) could not; text compares in byte
// order by default.
var sqliteDialect = sqlDialect{
	uuidText:      "%s",
	jsonText:      "%s",
	jsonParam:     "%s",
	emailEquals:   "%s = %s",
	contains:      "instr(%s, %s) > 0",
	binaryCollate: "",
}

// sqlQueryer is what *sql.DB and *sql.Tx have in common.
type sqlQueryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqliteConn runs the store's statements through database/sql.
type sqliteConn struct{ db *sql.DB }

var _ dbConn = sqliteConn{}

func (c sqliteConn) exec(ctx context.Context, query string, args ...any) (int64, error) {
	return sqlQ{c.db}.exec(ctx, query, args...)
}

func (c sqliteConn) queryRow(ctx context.Context, query string, args ...any) dbRow {
	return sqlQ{c.db}.queryRow(ctx, query, args...)
}

func (c sqliteConn) query(ctx context.Context, query string, args ...any) (dbRows, error) {
	return sqlQ{c.db}.query(ctx, query, args...)
}

// inTx runs fn in a transaction. The storage package opens SQLite with
// _txlock=immediate, so the transaction holds the write lock from its first
// statement and a read-then-write inside it cannot fail with SQLITE_BUSY
// halfway. fn must use only the querier it is given (an in-memory database
// has one connection, which the transaction holds).
func (c sqliteConn) inTx(ctx context.Context, fn func(q dbQuerier) error) (err error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := fn(sqlQ{tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// sqlQ adapts a *sql.DB or *sql.Tx to dbQuerier.
type sqlQ struct{ q sqlQueryer }

func (q sqlQ) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQ) queryRow(ctx context.Context, query string, args ...any) dbRow {
	return sqlRow{q.q.QueryRowContext(ctx, query, args...)}
}

func (q sqlQ) query(ctx context.Context, query string, args ...any) (dbRows, error) {
	rows, err := q.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

// sqlRow turns sql.ErrNoRows into errNoRows.
type sqlRow struct{ row *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return errNoRows
	}
	return err
}

// sqlRows drops Close's error: Err reports whatever went wrong while reading.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
