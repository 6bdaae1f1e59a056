package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteStore is the SQLite Store.
type sqliteStore struct {
	db *sql.DB
	// insertFull is the INSERT for a full chunk, built once.
	insertFull string
}

func newSQLiteStore(db *sql.DB) *sqliteStore {
	return &sqliteStore{db: db, insertFull: sqliteInsertSQL(sqliteChunk)}
}

var _ Store = (*sqliteStore)(nil)

// sqliteChunk is the number of rows per INSERT statement: 9 parameters a
// row stays under 999, the smallest SQLITE_MAX_VARIABLE_NUMBER a build may
// have, and a few statements per transaction cost nothing next to the
// commit.
const sqliteChunk = 100

const sqliteInsertHead = `INSERT INTO audit_logs
    (event_id, user_id, action, resource, resource_id, ip_address, user_agent, details, created_at)
VALUES `

// ON CONFLICT (event_id) DO NOTHING rather than INSERT OR IGNORE: OR
// IGNORE would also drop, silently, a row that breaks a CHECK or NOT NULL
// constraint, where PostgreSQL fails; this way both dialects skip exactly the
// event ids already stored and nothing else.
const sqliteInsertTail = "\nON CONFLICT (event_id) DO NOTHING"

func sqliteInsertSQL(rows int) string {
	var b strings.Builder
	b.WriteString(sqliteInsertHead)
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range 9 {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(r*9 + c + 1))
		}
		b.WriteByte(')')
	}
	b.WriteString(sqliteInsertTail)
	return b.String()
}

func (s *sqliteStore) Insert(ctx context.Context, events []Event) (err error) {
	if len(events) == 0 {
		return nil
	}
	events, err = checkInsert(events)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: insert: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	args := make([]any, 0, 9*min(len(events), sqliteChunk))
	for start := 0; start < len(events); start += sqliteChunk {
		chunk := events[start:min(start+sqliteChunk, len(events))]
		query := s.insertFull
		if len(chunk) < sqliteChunk {
			query = sqliteInsertSQL(len(chunk))
		}
		args = args[:0]
		for i := range chunk {
			ev := &chunk[i]
			var details any
			if ev.details != nil {
				details = string(ev.details)
			}
			args = append(args, ev.ID, nullable(ev.UserID), ev.Action, nullable(ev.Resource),
				nullable(ev.ResourceID), nullable(ev.IP), nullable(ev.UserAgent), details, ev.CreatedAt)
		}
		if _, err = tx.ExecContext(ctx, query, args...); err != nil {
			return sqliteInsertError(err)
		}
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("audit: insert: commit: %w", err)
	}
	return nil
}

// sqliteInsertError marks constraint, size and type errors as ErrRejected;
// a busy database, a full disk or an I/O error may pass.
func sqliteInsertError(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // primary result code
		case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_MISMATCH:
			return fmt.Errorf("%w: %w", ErrRejected, err)
		}
	}
	return fmt.Errorf("audit: insert: %w", err)
}

func (s *sqliteStore) Query(ctx context.Context, f Filter) ([]Event, string, error) {
	q, err := f.validate()
	if err != nil {
		return nil, "", err
	}
	var b sqlBuilder
	// SQLite compares text with BINARY by default: action is byte-ordered.
	b.filter(q, "%s", "action")
	query := `SELECT id, event_id, user_id, action, resource, resource_id,
        ip_address, user_agent, details, created_at
FROM audit_logs` + b.clause() + `
ORDER BY created_at DESC, id DESC
LIMIT ` + strconv.Itoa(q.limit+1)
	rows, err := s.db.QueryContext(ctx, query, b.args...)
	if err != nil {
		return nil, "", fmt.Errorf("audit: query: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		out []Event
		ids []int64
	)
	for rows.Next() {
		var (
			ev                       Event
			id                       int64
			user, res, resID, ip, ua sql.NullString
			details                  sql.NullString
		)
		if err := rows.Scan(&id, &ev.ID, &user, &ev.Action, &res, &resID, &ip, &ua, &details, &ev.CreatedAt); err != nil {
			return nil, "", fmt.Errorf("audit: query: %w", err)
		}
		ev.UserID, ev.Resource, ev.ResourceID, ev.IP, ev.UserAgent = user.String, res.String, resID.String, ip.String, ua.String
		ev.CreatedAt = ev.CreatedAt.UTC()
		if ev.Details, err = decodeDetails([]byte(details.String)); err != nil {
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

func (s *sqliteStore) Prune(ctx context.Context, before time.Time, batch int) (int, error) {
	if batch <= 0 {
		batch = defaultPruneBatch
	}
	// Each statement is its own transaction: SQLite has one writer at a
	// time, so a short one lets the audit Writer in between batches.
	const query = `DELETE FROM audit_logs WHERE id IN (
    SELECT id FROM audit_logs WHERE created_at < $1 ORDER BY created_at LIMIT $2)`
	total := 0
	for {
		res, err := s.db.ExecContext(ctx, query, before.UTC(), batch)
		if err != nil {
			return total, fmt.Errorf("audit: prune: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("audit: prune: %w", err)
		}
		total += int(n)
		if int(n) < batch {
			return total, nil
		}
	}
}
