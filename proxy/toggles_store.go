package proxy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portero/portero/storage"
)

// The override store is one body of SQL over two thin driver adapters, as
// authn's user store is: the statements are portable (both drivers bind $N,
// both databases have ON CONFLICT and RETURNING), and PostgreSQL adds a
// NOTIFY so that instances hear of a change as it commits.

// overridesChannel is the PostgreSQL NOTIFY channel of override changes.
const overridesChannel = "portero_route_overrides"

const (
	ovCols        = "route, mode, changed_by, changed_at, version"
	ovVersion     = "SELECT version FROM route_overrides_version WHERE id = 1"
	ovBump        = "UPDATE route_overrides_version SET version = version + 1 WHERE id = 1 RETURNING version"
	ovList        = "SELECT " + ovCols + " FROM route_overrides ORDER BY route"
	ovGet         = "SELECT " + ovCols + " FROM route_overrides WHERE route = $1"
	ovDeleteOne   = "DELETE FROM route_overrides WHERE route = $1 RETURNING " + ovCols
	ovDeleteAll   = "DELETE FROM route_overrides RETURNING " + ovCols
	ovUpsert      = "INSERT INTO route_overrides (" + ovCols + ") VALUES ($1, $2, $3, $4, $5) ON CONFLICT (route) DO UPDATE SET mode = excluded.mode, changed_by = excluded.changed_by, changed_at = excluded.changed_at, version = excluded.version"
	ovNotify      = "SELECT pg_notify('" + overridesChannel + "', $1)"
	ovListenRetry = 30 * time.Second
)

// NewOverrideStore returns the override store of db's dialect. db must be
// migrated and stays owned by the caller. On PostgreSQL the store is also an
// OverrideWatcher.
func NewOverrideStore(db *storage.DB) OverrideStore {
	if db.Dialect() == storage.Postgres {
		return &pgOverrides{sqlOverrides: sqlOverrides{run: pgRunner{db.Pool()}, notify: true}, pool: db.Pool()}
	}
	return &sqlOverrides{run: sqliteRunner{db.SQL()}}
}

type ovRow interface{ Scan(dest ...any) error }

type ovRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ovQuerier is what a statement runs on: the database or a transaction.
type ovQuerier interface {
	exec(ctx context.Context, q string, args ...any) error
	queryRow(ctx context.Context, q string, args ...any) ovRow
	// query calls each for every row, then closes the rows.
	query(ctx context.Context, each func(ovRows) error, q string, args ...any) error
}

type ovRunner interface {
	ovQuerier
	inTx(ctx context.Context, fn func(ovQuerier) error) error
}

type sqlOverrides struct {
	run    ovRunner
	notify bool // PostgreSQL: NOTIFY the new version at commit
}

var _ OverrideStore = (*sqlOverrides)(nil)

func scanOverride(r ovRow) (Override, error) {
	var o Override
	var mode string
	if err := r.Scan(&o.Route, &mode, &o.By, &o.At, &o.Version); err != nil {
		return Override{}, err
	}
	o.Mode, o.At = Mode(mode), o.At.UTC()
	return o, nil
}

func collect(out *[]Override) func(ovRows) error {
	return func(rows ovRows) error {
		o, err := scanOverride(rows)
		if err == nil {
			*out = append(*out, o)
		}
		return err
	}
}

func (s *sqlOverrides) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := s.run.queryRow(ctx, ovVersion).Scan(&v); err != nil {
		return 0, fmt.Errorf("proxy: route overrides version: %w", err)
	}
	return v, nil
}

// List reads the version first: a change committing between the two reads
// then shows as a version older than the rows, which only costs one more
// read at the next poll, never a missed change.
func (s *sqlOverrides) List(ctx context.Context) ([]Override, int64, error) {
	v, err := s.Version(ctx)
	if err != nil {
		return nil, 0, err
	}
	out := []Override{}
	if err := s.run.query(ctx, collect(&out), ovList); err != nil {
		return nil, 0, fmt.Errorf("proxy: list route overrides: %w", err)
	}
	return out, v, nil
}

func (s *sqlOverrides) Put(ctx context.Context, ovs []Override) ([]Override, int64, error) {
	var replaced []Override
	var version int64
	err := s.run.inTx(ctx, func(q ovQuerier) error {
		replaced, version = nil, 0
		if err := q.queryRow(ctx, ovBump).Scan(&version); err != nil {
			return err
		}
		for _, o := range ovs {
			if o.Route == "" || o.Mode == "" {
				return fmt.Errorf("override without route or mode")
			}
			prev, err := scanOverride(q.queryRow(ctx, ovGet, o.Route))
			switch {
			case err == nil:
				replaced = append(replaced, prev)
			case !isNoRows(err):
				return err
			}
			at := o.At
			if at.IsZero() {
				at = time.Now()
			}
			if err := q.exec(ctx, ovUpsert, o.Route, string(o.Mode), o.By, at.UTC().Truncate(time.Microsecond), version); err != nil {
				return err
			}
		}
		return s.notifyIn(ctx, q, version)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("proxy: put route overrides: %w", err)
	}
	return replaced, version, nil
}

func (s *sqlOverrides) Delete(ctx context.Context, routes []string) ([]Override, int64, error) {
	var removed []Override
	var version int64
	err := s.run.inTx(ctx, func(q ovQuerier) error {
		removed, version = nil, 0
		if routes == nil {
			if err := q.query(ctx, collect(&removed), ovDeleteAll); err != nil {
				return err
			}
		}
		for _, r := range routes {
			if err := q.query(ctx, collect(&removed), ovDeleteOne, r); err != nil {
				return err
			}
		}
		if len(removed) == 0 {
			return q.queryRow(ctx, ovVersion).Scan(&version)
		}
		if err := q.queryRow(ctx, ovBump).Scan(&version); err != nil {
			return err
		}
		return s.notifyIn(ctx, q, version)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("proxy: delete route overrides: %w", err)
	}
	return removed, version, nil
}

// notifyIn queues a NOTIFY in the transaction: PostgreSQL delivers it at
// commit, and not at all on rollback.
func (s *sqlOverrides) notifyIn(ctx context.Context, q ovQuerier, version int64) error {
	if !s.notify {
		return nil
	}
	return q.exec(ctx, ovNotify, strconv.FormatInt(version, 10))
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) || errors.Is(err, sql.ErrNoRows) }

// pgOverrides adds LISTEN to the PostgreSQL store.
type pgOverrides struct {
	sqlOverrides
	pool *pgxpool.Pool
}

var _ OverrideWatcher = (*pgOverrides)(nil)

// Watch listens on a connection of its own (not one of the pool's, which
// it would hold forever), reconnecting after failures; each (re)connection
// signals once too, for what was missed while not listening. A pooler in
// transaction mode cannot LISTEN: then only polling applies changes.
func (s *pgOverrides) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	signal := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	go func() {
		wait := time.Second
		for ctx.Err() == nil {
			if listened := s.listen(ctx, signal); listened {
				wait = time.Second
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, ovListenRetry)
		}
	}()
	return ch
}

// listen holds one LISTEN until it fails; it reports whether it got as far
// as listening.
func (s *pgOverrides) listen(ctx context.Context, signal func()) bool {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+overridesChannel); err != nil {
		return false
	}
	signal()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true
		}
		signal()
	}
}

// pgRunner runs statements on a pgx pool or transaction.
type pgRunner struct{ pool *pgxpool.Pool }

type pgTxQ struct{ tx pgx.Tx }

func (r pgRunner) exec(ctx context.Context, q string, args ...any) error {
	_, err := r.pool.Exec(ctx, q, args...)
	return err
}
func (r pgRunner) queryRow(ctx context.Context, q string, args ...any) ovRow {
	return r.pool.QueryRow(ctx, q, args...)
}
func (r pgRunner) query(ctx context.Context, each func(ovRows) error, q string, args ...any) error {
	rows, err := r.pool.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	return eachPgRow(rows, each)
}
func (r pgRunner) inTx(ctx context.Context, fn func(ovQuerier) error) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error { return fn(pgTxQ{tx}) })
}

func (q pgTxQ) exec(ctx context.Context, sql string, args ...any) error {
	_, err := q.tx.Exec(ctx, sql, args...)
	return err
}
func (q pgTxQ) queryRow(ctx context.Context, sql string, args ...any) ovRow {
	return q.tx.QueryRow(ctx, sql, args...)
}
func (q pgTxQ) query(ctx context.Context, each func(ovRows) error, sql string, args ...any) error {
	rows, err := q.tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	return eachPgRow(rows, each)
}

func eachPgRow(rows pgx.Rows, each func(ovRows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// sqliteRunner runs statements through database/sql. Transactions begin
// IMMEDIATE (storage's DSN), so writers take turns instead of failing.
type sqliteRunner struct{ db *sql.DB }

// sqlQueryer is what *sql.DB and *sql.Tx have in common.
type sqlQueryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type sqlQ struct{ q sqlQueryer }

func (r sqliteRunner) exec(ctx context.Context, q string, args ...any) error {
	return sqlQ{r.db}.exec(ctx, q, args...)
}
func (r sqliteRunner) queryRow(ctx context.Context, q string, args ...any) ovRow {
	return sqlQ{r.db}.queryRow(ctx, q, args...)
}
func (r sqliteRunner) query(ctx context.Context, each func(ovRows) error, q string, args ...any) error {
	return sqlQ{r.db}.query(ctx, each, q, args...)
}
func (r sqliteRunner) inTx(ctx context.Context, fn func(ovQuerier) error) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(sqlQ{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (q sqlQ) exec(ctx context.Context, query string, args ...any) error {
	_, err := q.q.ExecContext(ctx, query, args...)
	return err
}
func (q sqlQ) queryRow(ctx context.Context, query string, args ...any) ovRow {
	return q.q.QueryRowContext(ctx, query, args...)
}
func (q sqlQ) query(ctx context.Context, each func(ovRows) error, query string, args ...any) error {
	rows, err := q.q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
