package authn

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portero/portero/sessions"
)

// LockoutCounters is what Lockout needs from the counter store shared by
// every Portero instance. sessions.RedisCounters and sessions.MemoryCounters
// satisfy it; see sessions.CounterStore for the exact semantics.
type LockoutCounters interface {
	Reserve(ctx context.Context, key string, lim sessions.Limit) (sessions.Reservation, error)
	Fail(ctx context.Context, key string, lim sessions.Limit) (failures int, lockedNow bool, err error)
	Succeed(ctx context.Context, key string) (lockedFor time.Duration, err error)
	Release(ctx context.Context, key string) error
	Unlock(ctx context.Context, key string) (wasLocked bool, err error)
	Status(ctx context.Context, key string) (sessions.CounterStatus, error)
}

// Lockout defaults (DESIGN.md: 5 failures within 15 minutes lock for 30).
// The per-address throttle allows more than one account's worth of typos,
// since many users may share an address (an office NAT), but few enough
// that one address cannot spray guesses across many accounts.
const (
	DefaultLockoutMaxAttempts   = 5
	DefaultLockoutWindow        = 15 * time.Minute
	DefaultLockoutDuration      = 30 * time.Minute
	DefaultLockoutIPMaxAttempts = 20
	DefaultLockoutIPWindow      = 15 * time.Minute
)

// ipv6ThrottlePrefix is how much of an IPv6 address names one client: a
// single host usually holds a whole /64 and can pick any address in it, so
// throttling single IPv6 addresses would throttle nothing.
const ipv6ThrottlePrefix = 64

// lockoutFinishTimeout bounds the bookkeeping that ends an attempt. It runs
// detached from the request's cancellation: a client that hangs up once its
// password has been checked must not escape having the failure counted.
const lockoutFinishTimeout = 5 * time.Second

// LockoutPolicy is the lockout configuration. A zero field takes its default
// (DefaultLockoutPolicy); a negative one is an error, so there is no way to
// switch counting off.
type LockoutPolicy struct {
	// MaxAttempts failed logins within Window lock the account for Duration.
	MaxAttempts int
	Window      time.Duration
	Duration    time.Duration
	// IPMaxAttempts failed logins from one client address (an IPv4 address
	// or an IPv6 /64) within IPWindow, whatever the accounts and whether or
	// not they exist, refuse further logins from it until the window ends.
	IPMaxAttempts int
	IPWindow      time.Duration
}

// DefaultLockoutPolicy is DESIGN.md's lockout plus the address throttle.
func DefaultLockoutPolicy() LockoutPolicy {
	return LockoutPolicy{
		MaxAttempts:   DefaultLockoutMaxAttempts,
		Window:        DefaultLockoutWindow,
		Duration:      DefaultLockoutDuration,
		IPMaxAttempts: DefaultLockoutIPMaxAttempts,
		IPWindow:      DefaultLockoutIPWindow,
	}
}

// withDefaults fills zero fields and checks the rest, naming each problem by
// its configuration key.
func (p LockoutPolicy) withDefaults() (LockoutPolicy, error) {
	d := DefaultLockoutPolicy()
	var errs []error
	count := func(v *int, def int, key string) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			errs = append(errs, fmt.Errorf("lockout.%s: %d must be positive", key, *v))
		}
	}
	span := func(v *time.Duration, def time.Duration, key string) {
		switch {
		case *v == 0:
			*v = def
		case *v < time.Second:
			errs = append(errs, fmt.Errorf("lockout.%s: %v must be at least 1s", key, *v))
		}
	}
	count(&p.MaxAttempts, d.MaxAttempts, "max_attempts")
	span(&p.Window, d.Window, "window")
	span(&p.Duration, d.Duration, "duration")
	count(&p.IPMaxAttempts, d.IPMaxAttempts, "ip_max_attempts")
	span(&p.IPWindow, d.IPWindow, "ip_window")
	if err := errors.Join(errs...); err != nil {
		return LockoutPolicy{}, err
	}
	return p, nil
}

// Lockout decides whether a password may be checked at all, and counts the
// outcome, per account and per client address.
//
// Every password check is bracketed: Begin reserves an attempt on both
// counters before any hash is computed, and the Attempt it returns is ended
// with exactly one of Fail, Succeed or Release. Because the reservation is
// atomic in the shared store, concurrent requests on any number of
// instances cannot run more than MaxAttempts checks against an account
// before its lock, and exactly one failure sets the lock. Attempts during a
// lock do not extend it; it lifts by itself after Duration, or by Unlock.
//
// Keys. The account key is the caller's: a stable name for the account that
// does not depend on how the e-mail was typed (the user id for known users,
// a digest of the normalised e-mail for unknown ones, so guessing at an
// address nobody has is counted the same way and reveals nothing). Lockout
// keeps accounts and addresses in separate namespaces, so no account key can
// collide with an address.
//
// When the counter store cannot answer, every method fails with
// ErrCountersUnavailable and login must answer 503: never a guess that
// goes uncounted.
type Lockout struct {
	store   LockoutCounters
	policy  LockoutPolicy
	account sessions.Limit
	addr    sessions.Limit
}

// NewLockout returns a Lockout counting in store under policy (zero fields
// take their defaults).
func NewLockout(store LockoutCounters, policy LockoutPolicy) (*Lockout, error) {
	if store == nil {
		return nil, errors.New("authn: lockout: nil counter store")
	}
	p, err := policy.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	return &Lockout{
		store:   store,
		policy:  p,
		account: sessions.Limit{Max: p.MaxAttempts, Window: p.Window, LockFor: p.Duration},
		// LockFor 0: an address is not locked, only refused until its
		// window ends, so a shared address recovers on its own.
		addr: sessions.Limit{Max: p.IPMaxAttempts, Window: p.IPWindow},
	}, nil
}

// Policy returns the policy in force, defaults filled in.
func (l *Lockout) Policy() LockoutPolicy { return l.policy }

// Duration is how long a lock lasts.
func (l *Lockout) Duration() time.Duration { return l.policy.Duration }

// accountCounter is the store key of an account.
func accountCounter(accountKey string) (string, error) {
	k := "acct:" + accountKey
	if accountKey == "" || strings.ContainsAny(accountKey, "{}") || len(k) > sessions.MaxCounterKeyLen {
		return "", fmt.Errorf("%w: account key must be 1 to %d bytes without '{' or '}'",
			ErrInvalidLockoutInput, sessions.MaxCounterKeyLen-len("acct:"))
	}
	return k, nil
}

// addrCounter is the store key of a client address: the IPv4 address, or
// the /64 of an IPv6 one (IPv4-mapped IPv6 counts as IPv4; zones are
// dropped). A "host:port" is accepted too, since that is what a socket's
// remote address looks like.
func addrCounter(clientIP string) (string, error) {
	s := strings.TrimSpace(clientIP)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return "", fmt.Errorf("%w: client ip %.64q: %w", ErrInvalidLockoutInput, clientIP, err)
		}
		a = ap.Addr()
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return "ip:" + a.String(), nil
	}
	return "ip:" + netip.PrefixFrom(a, ipv6ThrottlePrefix).Masked().String(), nil
}

// Begin reserves one login attempt on accountKey from clientIP, before any
// password hash. On success the caller checks the password and ends the
// Attempt with Fail, Succeed or Release.
//
// Errors, none of which leave anything reserved:
//   - *LockoutError matching ErrAccountLocked: the account is locked.
//   - *LockoutError matching ErrTooManyAttempts (only): the client address
//     is over its throttle (ClientIP true), or the account already has
//     MaxAttempts attempts failed or in flight (concurrent guesses).
//     Every *LockoutError matches ErrTooManyAttempts, the locked one too.
//   - ErrCountersUnavailable: the store did not answer; answer 503.
//   - ErrInvalidLockoutInput: an empty or unusable key or client address.
//
// A refused attempt counts as a failure of the client address (it is a
// failed login from there), never of the account.
func (l *Lockout) Begin(ctx context.Context, accountKey, clientIP string) (*Attempt, error) {
	acct, err := accountCounter(accountKey)
	if err != nil {
		return nil, err
	}
	addr, err := addrCounter(clientIP)
	if err != nil {
		return nil, err
	}

	// The address first: a throttled address must not use up an account's
	// attempts.
	r, err := l.store.Reserve(ctx, addr, l.addr)
	if err != nil {
		return nil, l.storeErr("reserve address", err)
	}
	if !r.Allowed {
		return nil, &LockoutError{Err: ErrTooManyAttempts, RetryAfter: r.RetryAfter, ClientIP: true}
	}

	r, err = l.store.Reserve(ctx, acct, l.account)
	if err != nil {
		fctx, cancel := finishContext(ctx)
		defer cancel()
		return nil, errors.Join(l.storeErr("reserve account", err), l.storeErr("release address", l.store.Release(fctx, addr)))
	}
	if !r.Allowed {
		fctx, cancel := finishContext(ctx)
		defer cancel()
		if _, _, err := l.store.Fail(fctx, addr, l.addr); err != nil {
			return nil, l.storeErr("count refused attempt", err)
		}
		if r.Locked {
			return nil, &LockoutError{Err: ErrAccountLocked, RetryAfter: r.RetryAfter}
		}
		return nil, &LockoutError{Err: ErrTooManyAttempts, RetryAfter: r.RetryAfter}
	}
	return &Attempt{l: l, acct: acct, addr: addr}, nil
}

// Unlock lifts the account's lock and forgets its failures (admin unlock)
// and reports whether a lock was in force.
func (l *Lockout) Unlock(ctx context.Context, accountKey string) (wasLocked bool, err error) {
	acct, err := accountCounter(accountKey)
	if err != nil {
		return false, err
	}
	was, err := l.store.Unlock(ctx, acct)
	if err != nil {
		return false, l.storeErr("unlock", err)
	}
	return was, nil
}

// LockoutStatus is an account's lockout state (admin views, stats).
type LockoutStatus struct {
	Failures  int           // failed attempts in the current window
	LockedFor time.Duration // until the lock lifts; 0 when not locked
}

// Status reads an account's lockout state.
func (l *Lockout) Status(ctx context.Context, accountKey string) (LockoutStatus, error) {
	acct, err := accountCounter(accountKey)
	if err != nil {
		return LockoutStatus{}, err
	}
	st, err := l.store.Status(ctx, acct)
	if err != nil {
		return LockoutStatus{}, l.storeErr("status", err)
	}
	return LockoutStatus{Failures: st.Failures, LockedFor: st.LockedFor}, nil
}

// storeErr wraps a store failure in ErrCountersUnavailable (nil stays nil).
// An invalid key is the caller's mistake, not an outage.
func (l *Lockout) storeErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sessions.ErrInvalidCounter):
		return fmt.Errorf("authn: lockout %s: %w: %w", op, ErrInvalidLockoutInput, err)
	default:
		return fmt.Errorf("authn: lockout %s: %w: %w", op, ErrCountersUnavailable, err)
	}
}

// finishContext is the context the bookkeeping that ends an attempt runs
// under: the request's values, not its cancellation.
func finishContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), lockoutFinishTimeout)
}

// Attempt is one reserved login attempt. End it exactly once, with Fail
// (wrong password), Succeed (right password) or Release (no password was
// checked, or the check said nothing about the guess: the hasher was busy,
// the account is inactive). Later calls return ErrAttemptFinished. The
// methods finish their work even if ctx is cancelled.
type Attempt struct {
	l          *Lockout
	acct, addr string
	finished   atomic.Bool
	failures   atomic.Int32
}

func (a *Attempt) finish() error {
	if !a.finished.CompareAndSwap(false, true) {
		return ErrAttemptFinished
	}
	return nil
}

// Fail counts a wrong password against the account and the client address
// and reports whether this failure locked the account (true for exactly one
// failure per lock, so the caller audits auth.account.locked once).
func (a *Attempt) Fail(ctx context.Context) (lockedNow bool, err error) {
	if err := a.finish(); err != nil {
		return false, err
	}
	ctx, cancel := finishContext(ctx)
	defer cancel()
	n, lockedNow, accErr := a.l.store.Fail(ctx, a.acct, a.l.account)
	a.failures.Store(int32(n))
	_, _, addrErr := a.l.store.Fail(ctx, a.addr, a.l.addr)
	if err := errors.Join(a.l.storeErr("count failure", accErr), a.l.storeErr("count address failure", addrErr)); err != nil {
		return false, err
	}
	return lockedNow, nil
}

// Succeed records a right password: the account's failures are forgotten;
// the address's are not (one good login must not reset a sprayer's count).
// If the account was locked while the password was being checked,
// lockedFor is the lock's remaining time and the login must be refused as
// locked: no success is ever accepted after the lock.
func (a *Attempt) Succeed(ctx context.Context) (lockedFor time.Duration, err error) {
	if err := a.finish(); err != nil {
		return 0, err
	}
	ctx, cancel := finishContext(ctx)
	defer cancel()
	lockedFor, accErr := a.l.store.Succeed(ctx, a.acct)
	addrErr := a.l.store.Release(ctx, a.addr)
	if err := errors.Join(a.l.storeErr("record success", accErr), a.l.storeErr("release address", addrErr)); err != nil {
		return 0, err
	}
	return lockedFor, nil
}

// Release ends the attempt without counting it either way.
func (a *Attempt) Release(ctx context.Context) error {
	if err := a.finish(); err != nil {
		return err
	}
	ctx, cancel := finishContext(ctx)
	defer cancel()
	return errors.Join(
		a.l.storeErr("release account", a.l.store.Release(ctx, a.acct)),
		a.l.storeErr("release address", a.l.store.Release(ctx, a.addr)))
}

// Failures is the account's failure count in the current window after Fail
// (MaxAttempts for the failure that locked it); 0 before Fail, or when the
// account was already locked and nothing was counted. It is what to mirror
// into users.login_attempts and the audit row.
func (a *Attempt) Failures() int { return int(a.failures.Load()) }

// LockoutError is a login attempt refused before any password check. It
// always matches ErrTooManyAttempts, and ErrAccountLocked too when Err is
// that. The HTTP layer answers a locked account like bad credentials unless
// lockout.reveal is set (then 423 with Retry-After), and a refusal without
// a lock like bad credentials (or 429 with Retry-After when ClientIP).
type LockoutError struct {
	Err        error         // ErrAccountLocked or ErrTooManyAttempts
	RetryAfter time.Duration // until the lock lifts or the window ends; at least 1ms
	ClientIP   bool          // the client address's throttle refused it, not the account
}

func (e *LockoutError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.RetryAfter)
}

// Unwrap returns Err.
func (e *LockoutError) Unwrap() error { return e.Err }

// Is makes every refusal match ErrTooManyAttempts.
func (e *LockoutError) Is(target error) bool { return target == ErrTooManyAttempts }
