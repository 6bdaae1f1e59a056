package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgStore is the PostgreSQL Store.
type pgStore struct {
	pool *pgxpool.Pool
}

var _ Store = (*pgStore)(nil)

// pgInsertSQL inserts a batch that may hold events already stored, in one
// statement and one round trip: the columns travel as nine arrays and unnest
// turns them back into rows. WITH ORDINALITY … ORDER BY keeps slice order,
// so identity ids follow it. Measured against pgx CopyFrom into a temporary
// table followed by INSERT … SELECT … ON CONFLICT (see
// BenchmarkPostgresInsert): one statement beats the five round trips
// (begin, create temp, copy, insert, commit) that path needs.
const pgInsertSQL = `INSERT INTO audit_logs
    (event_id, user_id, action, resource, resource_id, ip_address, user_agent, details, created_at)
SELECT e, u, a, r, ri, ip, ua, d, c
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::timestamptz[])
    WITH ORDINALITY AS t(e, u, a, r, ri, ip, ua, d, c, n)
ORDER BY n
ON CONFLICT (event_id) DO NOTHING`

func (s *pgStore) Insert(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	events, err := checkInsert(events)
	if err != nil {
		return err
	}
	// COPY first: PostgreSQL ingests it for less CPU than any INSERT
	// (BenchmarkPostgresInsert: ~75,000 against ~64,000 events/s), and on
	// the machine that runs both, PostgreSQL's work per audited request is
	// what an audited route pays most. COPY is one statement, so a batch
	// lands whole or not at all, in slice order. It cannot skip a row
	// already stored; a batch re-delivered after an answer lost in transit
	// meets the event_id constraint and goes again through the statement
	// that can.
	err = s.copyIn(ctx, events)
	if isDuplicateEvent(err) {
		err = s.insertSkippingStored(ctx, events)
	}
	if err != nil {
		return pgInsertError(err)
	}
	return nil
}

// pgCopySQL loads a batch in PostgreSQL's binary COPY format, which
// encodeCopy writes.
const pgCopySQL = `COPY audit_logs (event_id, user_id, action, resource, resource_id, ip_address, user_agent, details, created_at) FROM STDIN (FORMAT binary)`

// copyIn sends the batch as one binary COPY, encoded here rather than by
// pgx.CopyFrom: that one prepared "SELECT <columns> FROM audit_logs" before
// every batch to learn the column types (a round trip PostgreSQL plans
// each time), chose an encode plan per value and grew a fresh buffer per
// batch; on an audited route, one row per request, that was a tenth of
// the instance's allocations.
func (s *pgStore) copyIn(ctx context.Context, events []Event) error {
	bp := copyBuffers.Get().(*[]byte)
	buf := encodeCopy((*bp)[:0], events)
	err := s.pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), pgCopySQL)
		return err
	})
	// After a failure pgconn may return while its sending goroutine is
	// still reading buf (the connection is lost then, so nothing more is
	// sent): only a batch that went through gives its buffer back.
	if err == nil && cap(buf) <= maxPooledCopyBuffer {
		*bp = buf[:0]
		copyBuffers.Put(bp)
	}
	return err
}

var copyBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledCopyBuffer keeps a rare batch of huge details from pinning its
// buffer: a batch of access rows takes about 100 KiB.
const maxPooledCopyBuffer = 4 << 20

// pgTimestamp is t as PostgreSQL's binary timestamptz: microseconds since
// 2000-01-01 UTC, computed as pgx computes it, so that a time outside
// PostgreSQL's range reaches the server and is refused there as before.
func pgTimestamp(t time.Time) uint64 {
	const unixToY2K = 946_684_800 * 1_000_000
	return uint64(t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - unixToY2K)
}

// encodeCopy appends events to dst in the binary COPY format
// (https://www.postgresql.org/docs/current/sql-copy.html, "Binary
// Format"), in pgCopySQL's column order: a signature and header, one
// tuple per event (a field count, then each field as a length and its
// bytes, length -1 for NULL), and a trailer. Events are prepared: valid
// UTF-8 without NUL, times at microsecond precision, ids parsed.
func encodeCopy(dst []byte, events []Event) []byte {
	dst = append(dst, "PGCOPY\n\xff\r\n\x00"...)
	dst = binary.BigEndian.AppendUint32(dst, 0)                                                   // flags: no OIDs
	dst = binary.BigEndian.AppendUint32(dst, 0)                                                   // no header extension
	null := func(dst []byte) []byte { return binary.BigEndian.AppendUint32(dst, math.MaxUint32) } // -1
	text := func(dst []byte, s string) []byte {
		if s == "" {
			return null(dst)
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
		return append(dst, s...)
	}
	for i := range events {
		ev := &events[i]
		dst = binary.BigEndian.AppendUint16(dst, 9)
		dst = binary.BigEndian.AppendUint32(dst, 16)
		dst = append(dst, ev.uid[:]...)
		if ev.UserID == "" {
			dst = null(dst)
		} else {
			dst = binary.BigEndian.AppendUint32(dst, 16)
			dst = append(dst, ev.userID[:]...)
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(ev.Action)))
		dst = append(dst, ev.Action...)
		dst = text(dst, ev.Resource)
		dst = text(dst, ev.ResourceID)
		dst = text(dst, ev.IP)
		dst = text(dst, ev.UserAgent)
		if ev.details == nil {
			dst = null(dst)
		} else {
			// jsonb's binary form: a version byte, then the JSON text.
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(ev.details)+1))
			dst = append(dst, 1)
			dst = append(dst, ev.details...)
		}
		dst = binary.BigEndian.AppendUint32(dst, 8)
		dst = binary.BigEndian.AppendUint64(dst, pgTimestamp(ev.CreatedAt))
	}
	return binary.BigEndian.AppendUint16(dst, math.MaxUint16) // -1: no more tuples
}

// isDuplicateEvent reports a unique violation: some event of the batch is
// stored already. Whatever the constraint is called in this database, the
// statement that skips stored events sorts it out (and one that fails
// again is the data's fault, and reported so).
func isDuplicateEvent(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

// insertSkippingStored writes the events not stored yet, in slice order.
func (s *pgStore) insertSkippingStored(ctx context.Context, events []Event) error {
	n := len(events)
	// The ids go as binary uuid[] from the parsed form prepare kept: as
	// text they made pgx fall back to text arrays and PostgreSQL parse every
	// uuid again.
	var (
		ids       = make([]pgtype.UUID, n)
		users     = make([]pgtype.UUID, n)
		actions   = make([]string, n)
		resources = make([]*string, n)
		resIDs    = make([]*string, n)
		ips       = make([]*string, n)
		uas       = make([]*string, n)
		details   = make([][]byte, n)
		times     = make([]time.Time, n)
	)
	for i := range events {
		ev := &events[i]
		ids[i] = pgtype.UUID{Bytes: ev.uid, Valid: true}
		users[i] = pgtype.UUID{Bytes: ev.userID, Valid: ev.UserID != ""}
		actions[i] = ev.Action
		resources[i] = strPtr(ev.Resource)
		resIDs[i] = strPtr(ev.ResourceID)
		ips[i] = strPtr(ev.IP)
		uas[i] = strPtr(ev.UserAgent)
		details[i] = ev.details
		times[i] = ev.CreatedAt
	}
	_, err := s.pool.Exec(ctx, pgInsertSQL, ids, users, actions, resources, resIDs, ips, uas, details, times)
	return err
}

// pgInsertError marks errors about the data itself as ErrRejected: data
// exceptions (class 22), integrity violations (23) and program limits (54,
// e.g. an index entry too large). Anything else — no connection, a timeout,
// a server shutting down — may pass.
func pgInsertError(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && len(pg.Code) == 5 {
		switch pg.Code[:2] {
		case "22", "23", "54":
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
	}
	return fmt.Errorf("audit: insert: %w", err)
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *pgStore) Query(ctx context.Context, f Filter) ([]Event, string, error) {
	q, err := f.validate()
	if err != nil {
		return nil, "", err
	}
	var b sqlBuilder
	// action COLLATE "C": the byte order the (action, created_at) index
	// of migration 0002 holds, whatever the database's collation.
	b.filter(q, "%s::uuid", `action COLLATE "C"`)
	sql := `SELECT id, event_id::text, user_id::text, action, resource, resource_id,
        ip_address, user_agent, details, created_at
FROM audit_logs` + b.clause() + `
ORDER BY created_at DESC, id DESC
LIMIT ` + strconv.Itoa(q.limit+1)
	// Planned for each call's own values: a cached generic plan would scan
	// the whole created_at index for a rare action (355 ms instead of 0.2).
	rows, err := s.pool.Query(ctx, sql, append([]any{pgx.QueryExecModeExec}, b.args...)...)
	if err != nil {
		return nil, "", fmt.Errorf("audit: query: %w", err)
	}
	defer rows.Close()
	var (
		out []Event
		ids []int64
	)
	for rows.Next() {
		var (
			ev                       Event
			id                       int64
			user, res, resID, ip, ua *string
			details                  []byte
		)
		if err := rows.Scan(&id, &ev.ID, &user, &ev.Action, &res, &resID, &ip, &ua, &details, &ev.CreatedAt); err != nil {
			return nil, "", fmt.Errorf("audit: query: %w", err)
		}
		ev.UserID, ev.Resource, ev.ResourceID, ev.IP, ev.UserAgent = deref(user), deref(res), deref(resID), deref(ip), deref(ua)
		ev.CreatedAt = ev.CreatedAt.UTC()
		if ev.Details, err = decodeDetails(details); err != nil {
			return nil, "", err
		}
		out = append(out, ev)
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("audit: query: %w", err)
	}
	out, next := page(out, ids, q.limit)
	return out, next, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (s *pgStore) Prune(ctx context.Context, before time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = defaultPruneBatch
	}
	const sql = `DELETE FROM audit_logs WHERE id IN (
    SELECT id FROM audit_logs WHERE created_at < $1 ORDER BY created_at LIMIT $2)`
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, sql, before.UTC(), batch)
		if err != nil {
			return total, fmt.Errorf("audit: prune: %w", err)
		}
		n := int(tag.RowsAffected())
		total += n
		if n < batch {
			return total, nil
		}
	}
}

// defaultPruneBatch keeps each prune transaction short.
const defaultPruneBatch = 1000

// sqlBuilder collects WHERE conditions and their $n arguments; both
// dialects bind $n by number.
type sqlBuilder struct {
	conds []string
	args  []any
}

func (b *sqlBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

func (b *sqlBuilder) where(cond string) { b.conds = append(b.conds, cond) }

// filter adds q's conditions. The stores differ only in how a user id
// placeholder is typed (userParam, a format for the placeholder) and how
// the action column reads in byte order (action).
func (b *sqlBuilder) filter(q query, userParam, action string) {
	if q.UserID != "" {
		b.where("user_id = " + fmt.Sprintf(userParam, b.arg(q.UserID)))
	}
	if q.Action != "" {
		exact, prefix := actionBounds(q.Action)
		// A byte-wise range, not LIKE: exact whatever the collation, no
		// escaping of % and _ in what an admin typed, and an index on the
		// byte-ordered action serves it. The prefix ends in ".", so its
		// successor ends in "/".
		upper := prefix[:len(prefix)-1] + "/"
		cond := "(" + action + " >= " + b.arg(prefix) + " AND " + action + " < " + b.arg(upper) + ")"
		if exact != "" {
			cond = "(" + action + " = " + b.arg(exact) + " OR " + cond + ")"
		}
		b.where(cond)
	}
	// Times are bound as time.Time: pgx sends timestamptz, the SQLite
	// driver writes the column's text layout, whose order is time order.
	if !q.Since.IsZero() {
		b.where("created_at >= " + b.arg(q.Since))
	}
	if !q.Until.IsZero() {
		b.where("created_at < " + b.arg(q.Until))
	}
	if q.IP != "" {
		b.where("ip_address = " + b.arg(q.IP))
	}
	if q.after {
		b.keyset(q.afterTime, q.afterID)
	}
}

// keyset continues after the row (t, id) in (created_at, id) descending
// order. Written so that created_at <= t alone bounds an index scan on
// created_at, in both dialects.
func (b *sqlBuilder) keyset(t time.Time, id int64) {
	pt, pid := b.arg(t), b.arg(id)
	b.where("created_at <= " + pt + " AND (created_at < " + pt + " OR id < " + pid + ")")
}

func (b *sqlBuilder) clause() string {
	if len(b.conds) == 0 {
		return ""
	}
	return "\nWHERE " + strings.Join(b.conds, "\n  AND ")
}

// page trims the extra row Query fetched to learn whether there is a next
// page, and makes the next page's cursor from the last row kept.
func page(out []Event, ids []int64, limit int) ([]Event, string) {
	if len(out) <= limit {
		return out, ""
	}
	out = out[:limit]
	return out, encodeCursor(out[limit-1].CreatedAt, ids[limit-1])
}
