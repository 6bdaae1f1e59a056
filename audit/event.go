package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Action names. They are dotted, most general part first, so that a Query
// by prefix ("auth.", "auth.login") selects a family of events.
const (
	ActionRegister         = "auth.register"
	ActionLoginSucceeded   = "auth.login.succeeded"
	ActionLoginFailed      = "auth.login.failed" // Details["reason"]: bad_password, unknown_user, locked, inactive
	ActionAccountLocked    = "auth.account.locked"
	ActionAccountUnlocked  = "auth.account.unlocked"
	ActionLogout           = "auth.logout"
	ActionPasswordChanged  = "auth.password.changed"
	ActionSessionRevoked   = "session.revoked"
	ActionUserUpdated      = "user.updated"
	ActionUserDeleted      = "user.deleted"
	ActionRouteModeChanged = "route.mode.changed"
	ActionProxyDenied      = "proxy.denied"
	ActionProxyAccess      = "proxy.access" // per-route access auditing (audit: true)
)

// Event is one row of audit_logs.
//
// Empty strings are stored as NULL and read back as empty strings. The
// Writer owns an Event's Details map once Record or Enqueue has been called
// with it: do not modify the map afterwards.
type Event struct {
	// ID is the event's UUID (the event_id column). It makes delivery
	// idempotent: storing the same ID twice keeps one row. The Writer assigns
	// a time-ordered UUIDv7 when it is empty.
	ID string
	// UserID is the acting or affected user's UUID, empty when there is none
	// (a failed login for an unknown e-mail).
	UserID string
	// Action is a dotted name such as ActionLoginSucceeded. Required.
	Action     string
	Resource   string
	ResourceID string
	IP         string
	UserAgent  string
	// Details is stored as a JSON object.
	Details map[string]any
	// Access is the details of a proxy.access or proxy.denied row in a
	// form that costs no map (one such row per request on an audited
	// route): stored as the JSON object Details with the same keys would
	// be. Ignored when Details is set.
	Access *AccessDetails
	// CreatedAt is when the event happened. The Writer stamps it from its
	// clock when zero. Stored with microsecond precision (PostgreSQL's).
	CreatedAt time.Time

	// details caches Details marshalled to JSON: the Writer marshals once,
	// when it takes the event, and the spool and the stores reuse the bytes.
	details []byte
	// prepared marks an event prepare has already checked and completed,
	// with its ids parsed, so a store handed the Writer's batch does not
	// repeat the work for every row.
	prepared    bool
	uid, userID uuid.UUID
}

// Limits on what one event may hold. Strings beyond them are cut (at a
// UTF-8 boundary) rather than refused, because they come from clients (user
// agents, forwarded addresses) and an audit row must not be lost to a long
// header; the cut also keeps indexed columns (action, ip_address) under
// PostgreSQL's btree entry size, which would otherwise refuse the row.
const (
	maxActionLen    = 128
	maxIndexedLen   = 256  // ip_address, resource, resource_id
	maxUserAgentLen = 1024 // browsers send < 300 bytes
	// maxDetailsLen bounds the JSON details, so that one event always fits
	// in a spool record.
	maxDetailsLen = 64 << 10
)

// prepare validates ev and returns the copy that is stored: IDs in
// canonical lower-case form, strings cut to their limits and made valid
// UTF-8 without NUL (PostgreSQL's text refuses both), CreatedAt in UTC at
// microsecond precision, details marshalled. now stamps a zero CreatedAt.
// A nil now leaves a zero CreatedAt an error: stores are handed complete events.
func prepare(ev Event, now func() time.Time) (Event, error) {
	if ev.prepared {
		return ev, nil
	}
	if ev.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return Event{}, fmt.Errorf("audit: new event id: %w", err)
		}
		ev.uid = id
	} else {
		id, err := uuid.Parse(ev.ID)
		if err != nil {
			return Event{}, fmt.Errorf("%w: id %q is not a UUID", ErrInvalidEvent, clip(ev.ID, 64))
		}
		ev.uid = id
	}
	ev.ID = ev.uid.String()
	if ev.UserID != "" {
		id, err := uuid.Parse(ev.UserID)
		if err != nil {
			return Event{}, fmt.Errorf("%w: user id %q is not a UUID", ErrInvalidEvent, clip(ev.UserID, 64))
		}
		ev.userID = id
		ev.UserID = id.String()
	}
	if ev.Action == "" {
		return Event{}, fmt.Errorf("%w: no action", ErrInvalidEvent)
	}
	if len(ev.Action) > maxActionLen {
		return Event{}, fmt.Errorf("%w: action longer than %d bytes", ErrInvalidEvent, maxActionLen)
	}
	ev.Action = clean(ev.Action, maxActionLen)
	ev.Resource = clean(ev.Resource, maxIndexedLen)
	ev.ResourceID = clean(ev.ResourceID, maxIndexedLen)
	ev.IP = clean(ev.IP, maxIndexedLen)
	ev.UserAgent = clean(ev.UserAgent, maxUserAgentLen)
	if ev.CreatedAt.IsZero() {
		if now == nil {
			return Event{}, fmt.Errorf("%w: no created_at", ErrInvalidEvent)
		}
		ev.CreatedAt = now()
	}
	ev.CreatedAt = ev.CreatedAt.UTC().Truncate(time.Microsecond)
	if ev.details == nil && ev.Details == nil && ev.Access != nil {
		ev.details = ev.Access.appendJSON(make([]byte, 0, 192))
	}
	if ev.details == nil && ev.Details != nil {
		b, ok := appendFlatJSON(make([]byte, 0, 256), ev.Details)
		if !ok {
			var err error
			if b, err = json.Marshal(ev.Details); err != nil {
				return Event{}, fmt.Errorf("%w: details: %w", ErrInvalidEvent, err)
			}
			b = sanitizeJSON(b)
		}
		ev.details = b
	}
	if len(ev.details) > maxDetailsLen {
		return Event{}, fmt.Errorf("%w: details larger than %d bytes", ErrInvalidEvent, maxDetailsLen)
	}
	ev.prepared = true
	return ev, nil
}

// AccessDetails are the details of one proxied request's audit row.
type AccessDetails struct {
	Method, Path, Route, Mode string
	Status                    int
	DurationMs                float64
	RequestID                 string
	Reason                    string // why it was refused; omitted when empty
}

// Map is a as a Details map, for a row that adds details of its own.
func (a *AccessDetails) Map() map[string]any {
	m := map[string]any{
		"method": a.Method, "path": a.Path, "route": a.Route, "mode": a.Mode,
		"status": a.Status, "duration_ms": a.DurationMs, "request_id": a.RequestID,
	}
	if a.Reason != "" {
		m["reason"] = a.Reason
	}
	return m
}

// appendJSON encodes a as appendFlatJSON encodes a.Map(): keys
// sorted, reason left out when empty.
func (a *AccessDetails) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"duration_ms":`...)
	dst = appendJSONFloat(dst, a.DurationMs)
	dst = append(dst, `,"method":`...)
	dst = appendJSONString(dst, a.Method)
	dst = append(dst, `,"mode":`...)
	dst = appendJSONString(dst, a.Mode)
	dst = append(dst, `,"path":`...)
	dst = appendJSONString(dst, a.Path)
	if a.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendJSONString(dst, a.Reason)
	}
	dst = append(dst, `,"request_id":`...)
	dst = appendJSONString(dst, a.RequestID)
	dst = append(dst, `,"route":`...)
	dst = appendJSONString(dst, a.Route)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(a.Status), 10)
	return append(dst, '}')
}

// clean makes s valid UTF-8 without NUL bytes and at most n bytes long.
func clean(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	return clip(s, n)
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// sanitizeJSON replaces the escape \u0000 in JSON produced by
// encoding/json with \ufffd: PostgreSQL's jsonb refuses \u0000, and a row it
// refuses would be an audit event lost. encoding/json already replaces
// invalid UTF-8 with U+FFFD, and outside strings its output has no
// backslashes, so every backslash starts an escape of two or six bytes.
func sanitizeJSON(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "0000" {
			out = append(out, `\ufffd`...)
			i += 5
			continue
		}
		out = append(out, b[i], b[i+1])
		i++
	}
	return out
}
