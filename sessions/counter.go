package sessions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CounterStore keeps the short-lived counters behind login lockout and
// throttling: per key, the failures in the current window, the attempts
// still in flight, and a lock. Implementations: RedisCounters (shared by
// every Portero instance) and MemoryCounters (the embedded default); both
// pass counterstest.Run.
//
// The point of the contract is that an attempt is reserved atomically before
// any password hash is computed. A key admits at most lim.Max attempts that
// are failures or still in flight, so however many requests race, at most
// Max hashes run before the lock, and the failure that reaches Max sets the
// lock exactly once. In detail, for one key:
//
//   - Reserve refuses while the key is locked (Locked) or while failures plus
//     attempts in flight have reached Max (not Allowed); otherwise it counts
//     one more attempt in flight. A refusal changes nothing: it neither counts
//     nor extends the window or the lock.
//   - Fail turns one attempt in flight into a failure. The failure that brings
//     the count to Max sets the lock for LockFor (when LockFor > 0) and clears
//     the counter, so the count starts afresh once the lock lifts by itself.
//     During a lock Fail changes nothing: attempts never extend a lock.
//   - Succeed ends one attempt in flight and forgets the failures (a
//     successful login resets the count), unless the key is locked: then it
//     changes nothing and reports the lock, so no success is ever recorded
//     after the lock was set.
//   - Release ends one attempt in flight without counting it (the password
//     was never checked: the hasher was busy, the user lookup failed).
//   - Unlock clears the lock and the counter (an admin unlocking an account).
//
// The window starts with the first attempt counted in a fresh counter and
// is fixed: it is not pushed forward by later attempts. Attempts in flight
// are counted against Max until they end or the window expires, so an
// instance that dies mid-attempt costs the key one slot for at most a window.
//
// Every method refuses a key that is empty, longer than MaxCounterKeyLen or
// contains '{' or '}', and an unusable Limit, with ErrInvalidCounter. A Redis
// store wraps every failure to talk to Redis in ErrUnavailable; callers fail
// closed (login answers 503), never open.
type CounterStore interface {
	// Reserve asks for one attempt on key under lim. See Reservation.
	Reserve(ctx context.Context, key string, lim Limit) (Reservation, error)

	// Fail records that a reserved attempt failed. failures is the count in
	// the window with this one (0 when the key was locked and nothing was
	// counted); lockedNow reports whether this failure set the lock, true
	// for exactly one Fail per lock. lim must be the one given to Reserve.
	Fail(ctx context.Context, key string, lim Limit) (failures int, lockedNow bool, err error)

	// Succeed records that a reserved attempt succeeded and resets the
	// failures. If the key is locked it records nothing and returns the
	// lock's remaining time (at least 1ms); the caller must then treat the
	// attempt as refused. lockedFor is 0 when the success was recorded.
	Succeed(ctx context.Context, key string) (lockedFor time.Duration, err error)

	// Release ends a reserved attempt without counting it either way.
	Release(ctx context.Context, key string) error

	// Unlock removes the key's lock and counter and reports whether a lock
	// was in force.
	Unlock(ctx context.Context, key string) (wasLocked bool, err error)

	// Status reads the key's state without changing it (stats, admin views).
	Status(ctx context.Context, key string) (CounterStatus, error)

	// Ping reports whether the store can serve requests (readiness).
	Ping(ctx context.Context) error

	// Close releases what the store started (the memory store's sweeper). It
	// does not close a Redis client the caller passed in.
	Close(ctx context.Context) error
}

// Limit is the policy of one kind of counter, passed with every call so that
// one store serves accounts and client addresses with different policies.
type Limit struct {
	// Max is how many attempts may be failures or in flight at once within
	// one window; at least 1.
	Max int
	// Window is how long a counter lives from its first attempt; at least
	// 1ms.
	Window time.Duration
	// LockFor is how long the failure that reaches Max locks the key. 0
	// means no lock: the key is simply refused until its window ends (the
	// per-address throttle). Otherwise at least 1ms.
	LockFor time.Duration
}

// Reservation is Reserve's answer.
type Reservation struct {
	// Allowed: the attempt is counted as in flight; the caller checks the
	// password and must then call Fail, Succeed or Release exactly once.
	Allowed bool
	// Locked: the key is locked; nothing was counted.
	Locked bool
	// RetryAfter, for a refusal, is how long until the lock lifts (Locked)
	// or until the window ends (a full counter without a lock). At least 1ms
	// for a refusal, 0 when Allowed.
	RetryAfter time.Duration
	// N is the number of failures plus attempts in flight in the window,
	// this one included when Allowed; 0 when Locked.
	N int
}

// CounterStatus is a snapshot of one key.
type CounterStatus struct {
	Failures   int           // failures in the current window
	InFlight   int           // attempts reserved and not yet ended
	WindowLeft time.Duration // until the counter expires; 0 without a counter
	LockedFor  time.Duration // until the lock lifts; 0 when not locked
}

// MaxCounterKeyLen bounds a counter key. Callers build keys from ids,
// hashes and addresses, never from raw client input, so this is generous.
const MaxCounterKeyLen = 256

// Defaults of the counter stores' optional settings. A memory store key
// costs about 110 bytes (measured with user-id keys), so the default bound
// is about 20 MB; every login creates at most two keys, one per account and
// one per client address, each gone when its window or lock ends.
const (
	DefaultCounterKeyPrefix     = "portero:cnt:"
	DefaultMaxCounters          = 200_000
	DefaultCounterSweepInterval = time.Minute
	DefaultCounterTimeout       = 500 * time.Millisecond
)

// CounterOption sets an optional counter store setting. Options that concern
// one store are ignored by the other, as their documentation says.
type CounterOption func(*counterSettings)

type counterSettings struct {
	now           func() time.Time
	keyPrefix     string
	maxCounters   int
	sweepInterval time.Duration
	timeout       time.Duration
}

// WithCounterClock sets the clock that decides expiry (memory store only).
// Default time.Now. The Redis store leaves expiry to Redis's own clock, so
// every Portero instance agrees on when a lock lifts whatever its own clock
// says.
func WithCounterClock(now func() time.Time) CounterOption {
	return func(s *counterSettings) { s.now = now }
}

// WithCounterKeyPrefix sets the Redis key prefix (Redis store only). Default
// DefaultCounterKeyPrefix. It must not contain '{' or '}': each counter and
// its lock share a hash tag so that one script can touch both on Redis
// Cluster, and a brace in the prefix would break that.
func WithCounterKeyPrefix(p string) CounterOption {
	return func(s *counterSettings) { s.keyPrefix = p }
}

// WithMaxCounters bounds the memory store (memory store only). Default
// DefaultMaxCounters. When full, a new key first makes the store drop
// expired entries and, if it is still full, fails with ErrCountersFull: the
// store never evicts a live counter or lock, because evicting one would let
// an attacker who floods the store reset a victim's count.
func WithMaxCounters(n int) CounterOption {
	return func(s *counterSettings) { s.maxCounters = n }
}

// WithCounterSweepInterval sets how often the memory store's background
// sweeper drops expired entries (memory store only). Default
// DefaultCounterSweepInterval.
func WithCounterSweepInterval(d time.Duration) CounterOption {
	return func(s *counterSettings) { s.sweepInterval = d }
}

// WithCounterTimeout bounds each Redis call of the store (Redis store only).
// Default DefaultCounterTimeout. A login waits on the counters before it
// can answer, so a dead or hung Redis must turn into a quick 503, whatever
// the client's own dial retries and timeouts would allow. The bound is a
// context deadline, which go-redis honours while dialling and, with
// ContextTimeoutEnabled (NewRedisClient sets it), while reading.
func WithCounterTimeout(d time.Duration) CounterOption {
	return func(s *counterSettings) { s.timeout = d }
}

func newCounterSettings(opts []CounterOption) (counterSettings, error) {
	st := counterSettings{
		now:           time.Now,
		keyPrefix:     DefaultCounterKeyPrefix,
		maxCounters:   DefaultMaxCounters,
		sweepInterval: DefaultCounterSweepInterval,
		timeout:       DefaultCounterTimeout,
	}
	for _, o := range opts {
		o(&st)
	}
	var errs []error
	if st.now == nil {
		errs = append(errs, errors.New("clock: must not be nil"))
	}
	if strings.ContainsAny(st.keyPrefix, "{}") {
		errs = append(errs, fmt.Errorf("key prefix %q: must not contain '{' or '}'", st.keyPrefix))
	}
	if st.maxCounters < 1 {
		errs = append(errs, fmt.Errorf("max counters %d: must be at least 1", st.maxCounters))
	}
	if st.sweepInterval <= 0 {
		errs = append(errs, fmt.Errorf("sweep interval %v: must be positive", st.sweepInterval))
	}
	if st.timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout %v: must be positive", st.timeout))
	}
	if err := errors.Join(errs...); err != nil {
		return counterSettings{}, fmt.Errorf("sessions: counters: %w", err)
	}
	return st, nil
}

// checkCounterKey refuses keys that could break the Redis layout: a brace
// would change the hash tag (and "{}" hashes the whole key, sending the
// counter and its lock to different Cluster slots).
func checkCounterKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidCounter)
	case len(key) > MaxCounterKeyLen:
		return fmt.Errorf("%w: key longer than %d bytes", ErrInvalidCounter, MaxCounterKeyLen)
	case strings.ContainsAny(key, "{}"):
		return fmt.Errorf("%w: key contains '{' or '}'", ErrInvalidCounter)
	}
	return nil
}

// check refuses limits the stores cannot honour. Durations are used to the
// millisecond, like Redis's PX.
func (l Limit) check() error {
	var errs []error
	if l.Max < 1 {
		errs = append(errs, fmt.Errorf("max %d: must be at least 1", l.Max))
	}
	if l.Window < time.Millisecond {
		errs = append(errs, fmt.Errorf("window %v: must be at least 1ms", l.Window))
	}
	if l.LockFor != 0 && l.LockFor < time.Millisecond {
		errs = append(errs, fmt.Errorf("lock duration %v: must be 0 or at least 1ms", l.LockFor))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCounter, err)
	}
	return nil
}

// checkCall validates a key and limit together.
func checkCall(key string, lim Limit) error {
	if err := checkCounterKey(key); err != nil {
		return err
	}
	return lim.check()
}

// atLeastMs turns a remaining time in milliseconds into a RetryAfter: a key
// that still exists has at least 1ms left, even if Redis rounds it to 0.
func atLeastMs(v int64) time.Duration {
	return time.Duration(max(v, 1)) * time.Millisecond
}
