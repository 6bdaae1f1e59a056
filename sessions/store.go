package sessions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Store keeps live sessions. It is the one interface this package shares
// (proxy, authn and cmd all depend on it), so it lives here rather than with
// a consumer. Implementations: RedisStore and MemoryStore; both pass
// sessionstest.Run.
//
// Keys are Token.Key values. Every read decides expiry from the store's
// clock (or, for Touch, the time passed in) with the same rule: a session is
// alive while now is before both LastSeenAt+idle and AbsoluteExpiresAt.
type Store interface {
	// Create stores s under tok.Key() and indexes it under s.UserID. The store
	// assigns ID (when empty), CreatedAt, LastSeenAt and the expiries from its
	// clock, and returns the session as stored. Errors: ErrInvalidToken for a
	// zero token, ErrInvalidSession without a user id, ErrExists, ErrStoreFull.
	Create(ctx context.Context, tok Token, s Session) (Session, error)

	// Get returns the live session stored under key, or ErrNotFound. It does
	// not slide the idle expiry; the request path uses Touch.
	Get(ctx context.Context, key string) (Session, error)

	// Touch is Get plus the slide: if the session is alive at now it moves
	// LastSeenAt to now (unless the store throttles writes and the last write
	// is more recent than the throttle interval), pushes the idle expiry
	// forward — never past the absolute cap — and returns the updated session.
	// ErrNotFound when the session is missing or dead at now. The request
	// path calls Touch instead of Get: one round trip in the common case.
	Touch(ctx context.Context, key string, now time.Time) (Session, error)

	// Delete ends the session stored under key. Deleting a missing session is
	// not an error.
	Delete(ctx context.Context, key string) error

	// ListByUser returns the user's live sessions, oldest first, with Key set.
	// A user without sessions gets an empty slice and no error.
	ListByUser(ctx context.Context, userID string) ([]Session, error)

	// DeleteByID ends the session with public id id if it belongs to userID;
	// otherwise ErrNotFound (another user's session id reveals nothing).
	DeleteByID(ctx context.Context, userID, id string) error

	// DeleteByUser ends every session of the user except the one stored under
	// exceptKey (pass "" to end them all) and returns how many live sessions
	// it ended. Used on password change, deactivation and admin sign-out.
	DeleteByUser(ctx context.Context, userID, exceptKey string) (int, error)

	// UpdateUser rewrites the identity snapshot of every live session of the
	// user: fn gets a copy of each session and may change Email, Roles,
	// Permissions and LegacyID; changes to any other field are ignored. fn
	// may run more than once for a session (the Redis store retries when a
	// concurrent update wins), so it must only set fields.
	UpdateUser(ctx context.Context, userID string, fn func(*Session)) error

	// Count returns how many sessions the store holds, for the active-sessions
	// gauge. It may include sessions that died a moment ago and have not been
	// removed yet; it is meant for a metrics scrape, not the request path.
	Count(ctx context.Context) (int, error)

	// Ping reports whether the store can serve requests (readiness).
	Ping(ctx context.Context) error

	// Close releases what the store started (the memory store's sweeper). It
	// does not close a Redis client the caller passed in.
	Close(ctx context.Context) error
}

// Option sets an optional store setting. Options that concern one store are
// ignored by the other, as their documentation says.
type Option func(*settings)

type settings struct {
	now           func() time.Time
	touchThrottle time.Duration
	keyPrefix     string
	maxSessions   int
	sweepInterval time.Duration
}

// Defaults for the optional settings.
const (
	DefaultKeyPrefix     = "portero:sess:"
	DefaultMaxSessions   = 100_000
	DefaultSweepInterval = time.Minute
	// maxThrottleShare bounds the throttle to half the idle timeout: a
	// throttle shortens the effective idle timeout by up to its own length.
	maxThrottleShare = 2
)

// WithClock sets the clock that decides expiry in Create, Get, ListByUser,
// DeleteByUser and the sweeper. Default time.Now. Tests pass a fake clock.
func WithClock(now func() time.Time) Option { return func(s *settings) { s.now = now } }

// WithTouchThrottle makes Touch write only when LastSeenAt is at least d old,
// so a busy session costs one write per d instead of one per request. The
// price: a session may expire up to d earlier than idle after its last
// request. Default 0 (write on every Touch). Must be below half the idle
// timeout.
func WithTouchThrottle(d time.Duration) Option {
	return func(s *settings) { s.touchThrottle = d }
}

// WithKeyPrefix sets the Redis key prefix (Redis store only). Default
// DefaultKeyPrefix. It must not contain '{' or '}': the per-user index key
// uses a hash tag, and a brace in the prefix would move every key into one
// Redis Cluster slot.
func WithKeyPrefix(p string) Option { return func(s *settings) { s.keyPrefix = p } }

// WithMaxSessions bounds the memory store (memory store only). Default
// DefaultMaxSessions. When full, Create removes dead sessions and, if still
// full, refuses with ErrStoreFull rather than evicting live sessions.
func WithMaxSessions(n int) Option { return func(s *settings) { s.maxSessions = n } }

// WithSweepInterval sets how often the memory store's background sweeper
// drops dead sessions (memory store only). Default DefaultSweepInterval.
func WithSweepInterval(d time.Duration) Option {
	return func(s *settings) { s.sweepInterval = d }
}

// newSettings applies opts over the defaults and checks the timeouts, which
// every store needs.
func newSettings(idle, absolute time.Duration, opts []Option) (settings, error) {
	st := settings{
		now:           time.Now,
		keyPrefix:     DefaultKeyPrefix,
		maxSessions:   DefaultMaxSessions,
		sweepInterval: DefaultSweepInterval,
	}
	for _, o := range opts {
		o(&st)
	}
	var errs []error
	if idle < time.Millisecond {
		errs = append(errs, fmt.Errorf("idle timeout %v: must be at least 1ms", idle))
	}
	if absolute < time.Millisecond {
		errs = append(errs, fmt.Errorf("absolute timeout %v: must be at least 1ms", absolute))
	}
	if st.touchThrottle < 0 || st.touchThrottle*maxThrottleShare > idle {
		errs = append(errs, fmt.Errorf("touch throttle %v: must be between 0 and half the idle timeout", st.touchThrottle))
	}
	if st.now == nil {
		errs = append(errs, errors.New("clock: must not be nil"))
	}
	if strings.ContainsAny(st.keyPrefix, "{}") {
		errs = append(errs, fmt.Errorf("key prefix %q: must not contain '{' or '}'", st.keyPrefix))
	}
	if st.maxSessions < 1 {
		errs = append(errs, fmt.Errorf("max sessions %d: must be at least 1", st.maxSessions))
	}
	if st.sweepInterval <= 0 {
		errs = append(errs, fmt.Errorf("sweep interval %v: must be positive", st.sweepInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return settings{}, fmt.Errorf("sessions: %w", err)
	}
	return st, nil
}

// prepare validates a session for Create and fills in what the store owns.
// Times are cut to milliseconds so both stores return identical values.
func prepare(tok Token, s Session, now time.Time, idle, absolute time.Duration) (Session, error) {
	if tok.IsZero() {
		return Session{}, ErrInvalidToken
	}
	if s.UserID == "" {
		return Session{}, fmt.Errorf("%w: no user id", ErrInvalidSession)
	}
	s = s.Clone()
	if s.ID == "" {
		s.ID = newID()
	}
	s.Key = tok.Key()
	nowMs := ms(now)
	s.CreatedAt = fromMs(nowMs)
	s.LastSeenAt = s.CreatedAt
	s.IdleExpiresAt = fromMs(nowMs + idle.Milliseconds())
	s.AbsoluteExpiresAt = fromMs(nowMs + absolute.Milliseconds())
	return s, nil
}

// applyUpdate runs fn on a copy of s and keeps only the identity fields fn
// is allowed to change.
func applyUpdate(s Session, fn func(*Session)) Session {
	c := s.Clone()
	fn(&c)
	s.Email = c.Email
	s.Roles = c.Roles
	s.Permissions = c.Permissions
	s.LegacyID = c.LegacyID
	return s.Clone()
}
