package sessions

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Session is one signed-in client: who it is (a snapshot of the user taken at
// login and rewritten by Store.UpdateUser), where it came from, and when it
// expires. Stores return copies; changing a returned Session changes nothing
// stored.
type Session struct {
	// ID is the public, non-secret name of the session, shown by
	// GET /auth/sessions and used by DELETE /auth/sessions/{id}. Knowing it
	// grants nothing: it is unrelated to the token.
	ID string `json:"id"`
	// Key is the store key (Token.Key). It is set on sessions returned by a
	// store so a handler can tell the caller's own session apart; it is never
	// encoded, because it is what an attacker would look a session up by.
	Key string `json:"-"`

	UserID      string   `json:"user_id"`
	Email       string   `json:"email"`
	Roles       []string `json:"roles,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	// LegacyID is the legacy app's integer user id, nil for users it never had.
	LegacyID *int64 `json:"legacy_id,omitempty"`

	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`

	// Times are UTC with millisecond precision (what the stores keep).
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	// IdleExpiresAt is derived: LastSeenAt plus the store's idle timeout.
	IdleExpiresAt     time.Time `json:"idle_expires_at"`
	AbsoluteExpiresAt time.Time `json:"absolute_expires_at"`
}

// ExpiresAt is when the session dies if nothing touches it: the earlier of
// the idle and the absolute expiry (a cookie's or a bearer JWT's lifetime).
func (s Session) ExpiresAt() time.Time {
	if s.AbsoluteExpiresAt.Before(s.IdleExpiresAt) {
		return s.AbsoluteExpiresAt
	}
	return s.IdleExpiresAt
}

// Clone returns a deep copy, so slices and LegacyID are not shared.
func (s Session) Clone() Session {
	s.Roles = slices.Clone(s.Roles)
	s.Permissions = slices.Clone(s.Permissions)
	if s.LegacyID != nil {
		v := *s.LegacyID
		s.LegacyID = &v
	}
	return s
}

// alive is the one expiry rule both stores use, in Unix milliseconds: a
// session lives while now is before both its idle and its absolute expiry.
// The Redis Lua scripts repeat exactly this comparison.
func alive(nowMs, lastSeenMs, absMs, idleMs int64) bool {
	return nowMs < lastSeenMs+idleMs && nowMs < absMs
}

// ms converts a time to the stores' precision.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMs converts back to a UTC time.Time.
func fromMs(v int64) time.Time { return time.UnixMilli(v).UTC() }

// newID makes a public session id: 128 random bits, hex.
func newID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (Go 1.24+); it crashes the
	// program if the system's randomness fails, which is what we want.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// record is the compact JSON of a session's identity as the Redis store keeps
// it in the hash field "v". LastSeenAt and AbsoluteExpiresAt live in their own
// hash fields ("ls", "ax") so the Touch script can read and slide them without
// decoding JSON in Lua (cjson would round a large legacy id through a double).
type record struct {
	ID          string   `json:"i"`
	UserID      string   `json:"u"`
	Email       string   `json:"e,omitempty"`
	Roles       []string `json:"r,omitempty"`
	Permissions []string `json:"p,omitempty"`
	LegacyID    *int64   `json:"l,omitempty"`
	IP          string   `json:"a,omitempty"`
	UserAgent   string   `json:"g,omitempty"`
	CreatedMs   int64    `json:"c"`
}

// encodeRecord renders the identity part of s for storage.
func encodeRecord(s *Session) (string, error) {
	b, err := json.Marshal(record{
		ID: s.ID, UserID: s.UserID, Email: s.Email,
		Roles: s.Roles, Permissions: s.Permissions, LegacyID: s.LegacyID,
		IP: s.IP, UserAgent: s.UserAgent, CreatedMs: ms(s.CreatedAt),
	})
	if err != nil {
		return "", fmt.Errorf("sessions: encode session: %w", err)
	}
	return string(b), nil
}

// decodeSession rebuilds a session from the three stored fields. A value
// that does not decode is reported, never half-used: a corrupt entry must
// not authenticate anyone.
func decodeSession(key, v, lastSeen, absolute string, idle time.Duration) (Session, error) {
	var r record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return Session{}, fmt.Errorf("sessions: decode session: %w", err)
	}
	if r.ID == "" || r.UserID == "" {
		return Session{}, fmt.Errorf("sessions: decode session: missing id or user id")
	}
	ls, err := strconv.ParseInt(lastSeen, 10, 64)
	if err != nil {
		return Session{}, fmt.Errorf("sessions: decode session last seen: %w", err)
	}
	ax, err := strconv.ParseInt(absolute, 10, 64)
	if err != nil {
		return Session{}, fmt.Errorf("sessions: decode session absolute expiry: %w", err)
	}
	return Session{
		ID: r.ID, Key: key, UserID: r.UserID, Email: r.Email,
		Roles: r.Roles, Permissions: r.Permissions, LegacyID: r.LegacyID,
		IP: r.IP, UserAgent: r.UserAgent,
		CreatedAt:         fromMs(r.CreatedMs),
		LastSeenAt:        fromMs(ls),
		IdleExpiresAt:     fromMs(ls + idle.Milliseconds()),
		AbsoluteExpiresAt: fromMs(ax),
	}, nil
}
