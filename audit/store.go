package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/portero/portero/storage"
)

// Inserter stores events; it is all the Writer needs of a Store.
type Inserter interface {
	// Insert stores events in one transaction, in slice order (so row ids
	// follow it), skipping any whose ID is already stored. Every event must
	// have an ID, an Action and a CreatedAt. An error wrapping ErrRejected
	// means the database refused the data and retrying cannot help; any
	// other error may be transient.
	Insert(ctx context.Context, events []Event) error
}

// Store is the audit_logs table.
type Store interface {
	Inserter
	// Query returns the events matching f, newest first (created_at, then
	// insertion order, descending), at most f.Limit of them, and the cursor
	// of the next page ("" when this page is the last).
	Query(ctx context.Context, f Filter) ([]Event, string, error)
	// Prune deletes events created before before, at most batch rows per
	// transaction so that no lock is held for long, until none is left or
	// ctx ends. It returns how many it deleted.
	Prune(ctx context.Context, before time.Time, batch int) (int, error)
}

// NewStore returns the Store for db's dialect.
func NewStore(db *storage.DB) Store {
	if db.Dialect() == storage.Postgres {
		return &pgStore{pool: db.Pool()}
	}
	return newSQLiteStore(db.SQL())
}

// Query limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Filter selects events for Query. Zero fields do not filter.
type Filter struct {
	// UserID selects one user's events (a UUID).
	UserID string
	// Action selects an action and the actions below it: "auth.login"
	// matches auth.login, auth.login.succeeded and auth.login.failed but not
	// auth.loginx. A value ending in "." ("auth.") matches every action it
	// begins.
	Action string
	// Since and Until bound created_at: Since <= created_at < Until.
	Since, Until time.Time
	// IP selects one client address (exact match).
	IP string
	// Cursor continues from a page Query returned. Filters must be the same
	// as for that page.
	Cursor string
	// Limit is the page size: DefaultLimit when <= 0, at most MaxLimit.
	Limit int
}

// query is a validated Filter.
type query struct {
	Filter
	limit     int
	after     bool // the cursor is set
	afterTime time.Time
	afterID   int64
}

func (f Filter) validate() (query, error) {
	q := query{Filter: f, limit: f.Limit}
	if q.limit <= 0 {
		q.limit = DefaultLimit
	}
	q.limit = min(q.limit, MaxLimit)
	if f.UserID != "" {
		id, err := uuid.Parse(f.UserID)
		if err != nil {
			return query{}, fmt.Errorf("%w: user_id is not a UUID", ErrInvalidFilter)
		}
		q.UserID = id.String()
	}
	if f.Cursor != "" {
		t, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return query{}, err
		}
		q.after, q.afterTime, q.afterID = true, t, id
	}
	if !q.Since.IsZero() {
		q.Since = q.Since.UTC()
	}
	if !q.Until.IsZero() {
		q.Until = q.Until.UTC()
	}
	return q, nil
}

// actionBounds returns what Filter.Action matches: the action itself (exact,
// "" if none) and a prefix every matching action begins with.
func actionBounds(a string) (exact, prefix string) {
	if strings.HasSuffix(a, ".") {
		return "", a
	}
	return a, a + "."
}

// The cursor is the last row's created_at (Unix nanoseconds) and row id,
// base64url-encoded so clients treat it as opaque.
const cursorVersion = "1"

func encodeCursor(t time.Time, id int64) string {
	s := cursorVersion + ":" + strconv.FormatInt(t.UnixNano(), 10) + ":" + strconv.FormatInt(id, 10)
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// maxCursorLen bounds the work done on a cursor from the query string.
const maxCursorLen = 64

func decodeCursor(c string) (time.Time, int64, error) {
	bad := fmt.Errorf("%w: cursor", ErrInvalidFilter)
	if len(c) > maxCursorLen {
		return time.Time{}, 0, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, 0, bad
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 3 || parts[0] != cursorVersion {
		return time.Time{}, 0, bad
	}
	ns, err1 := strconv.ParseInt(parts[1], 10, 64)
	id, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || id < 0 {
		return time.Time{}, 0, bad
	}
	return time.Unix(0, ns).UTC(), id, nil
}

// checkInsert returns events as Insert stores them (see prepare): every
// event must have an ID, an Action and a CreatedAt. A batch that is
// prepared already (every batch the Writer hands over) comes back as it
// is, since stores only read it; anything else is prepared into a new
// slice.
func checkInsert(events []Event) ([]Event, error) {
	if allPrepared(events) {
		return events, nil
	}
	out := make([]Event, len(events))
	for i, ev := range events {
		if ev.ID == "" || ev.CreatedAt.IsZero() {
			return nil, fmt.Errorf("%w: event %d has no id or created_at", ErrInvalidEvent, i)
		}
		p, err := prepare(ev, nil)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

func allPrepared(events []Event) bool {
	for i := range events {
		if !events[i].prepared {
			return false
		}
	}
	return true
}

// decodeDetails turns a details column back into a map.
func decodeDetails(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("audit: details column: %w", err)
	}
	return m, nil
}

// nullable maps "" to NULL.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
