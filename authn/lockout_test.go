package authn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/counterstest"
)

// lkStores are the counter stores every lockout test runs against: the
// in-process one on a fake clock and the shared Redis one.
var lkStores = []struct {
	name string
	env  counterstest.NewStore
}{
	{"memory", counterstest.MemoryEnv},
	{"redis", counterstest.RedisEnv},
}

// lkEach runs fn once per store, in parallel subtests.
func lkEach(t *testing.T, fn func(t *testing.T, e counterstest.Env)) {
	t.Helper()
	for _, s := range lkStores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			fn(t, s.env(t))
		})
	}
}

func lkNew(tb testing.TB, e counterstest.Env, p authn.LockoutPolicy) *authn.Lockout {
	tb.Helper()
	lo, err := authn.NewLockout(e.Store, p)
	if err != nil {
		tb.Fatal(err)
	}
	return lo
}

func lkCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// lkAccount is a fresh account key (what the service derives from a user id).
var lkSeq atomic.Int64

func lkAccount() string { return fmt.Sprintf("u:acct-%d-%d", time.Now().UnixNano(), lkSeq.Add(1)) }

// lkIP is a distinct documentation-range address per n.
func lkIP(n int) string { return fmt.Sprintf("198.51.%d.%d", n/250, n%250+1) }

// lkVerifier is the fake password check: it counts the real checks, takes a
// little time like a hash would, and knows one right password.
type lkVerifier struct{ checks atomic.Int32 }

func (v *lkVerifier) check(pw string) bool {
	v.checks.Add(1)
	time.Sleep(time.Millisecond)
	return pw == "right"
}

// lkLogin is the login flow the service runs: Begin, check, end.
type lkOutcome int

const (
	lkRefused lkOutcome = iota // Begin said no: no check ran
	lkFailed
	lkLockedNow // the failure that locked
	lkSucceeded
	lkLockedAfterCheck // right password, but the account got locked meanwhile
)

func lkLogin(ctx context.Context, lo *authn.Lockout, v *lkVerifier, account, ip, pw string) (lkOutcome, error) {
	att, err := lo.Begin(ctx, account, ip)
	if err != nil {
		var le *authn.LockoutError
		if errors.As(err, &le) {
			return lkRefused, nil
		}
		return 0, err
	}
	if !v.check(pw) {
		locked, err := att.Fail(ctx)
		if err != nil {
			return 0, err
		}
		if locked {
			return lkLockedNow, nil
		}
		return lkFailed, nil
	}
	lockedFor, err := att.Succeed(ctx)
	if err != nil {
		return 0, err
	}
	if lockedFor > 0 {
		return lkLockedAfterCheck, nil
	}
	return lkSucceeded, nil
}

// lkWantLocked checks that even the right password is refused as locked.
func lkWantLocked(t *testing.T, ctx context.Context, lo *authn.Lockout, account, ip string) *authn.LockoutError {
	t.Helper()
	_, err := lo.Begin(ctx, account, ip)
	var le *authn.LockoutError
	if !errors.Is(err, authn.ErrAccountLocked) || !errors.As(err, &le) || le.ClientIP {
		t.Fatalf("Begin on a locked account = %v, want *LockoutError matching ErrAccountLocked", err)
	}
	if !errors.Is(err, authn.ErrTooManyAttempts) {
		t.Fatalf("a locked refusal must also match ErrTooManyAttempts: %v", err)
	}
	return le
}

func lkCounts(outs []lkOutcome) map[lkOutcome]int {
	m := map[lkOutcome]int{}
	for _, o := range outs {
		m[o]++
	}
	return m
}

// lkRace runs n logins at once; ipFor and pwFor pick each one's address and
// password.
func lkRace(t *testing.T, ctx context.Context, lo *authn.Lockout, v *lkVerifier, account string, n int, ipFor func(int) string, pwFor func(int) string) []lkOutcome {
	t.Helper()
	outs := make([]lkOutcome, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			outs[i], errs[i] = lkLogin(ctx, lo, v, account, ipFor(i), pwFor(i))
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return outs
}

// The address patterns of the races: an attacker with many addresses, and
// one with a single address (its own throttle then joins in).
var lkRaceIPs = []struct {
	name  string
	ipFor func(int) string
}{
	{"many addresses", lkIP},
	{"one address", func(int) string { return "203.0.113.7" }},
}

// TestLockoutFiftyConcurrentWrongAttempts: 50 concurrent wrong attempts
// produce exactly one lock and at most 5 real hash verifications.
func TestLockoutFiftyConcurrentWrongAttempts(t *testing.T) {
	t.Parallel()
	lkEach(t, func(t *testing.T, e counterstest.Env) {
		for _, ips := range lkRaceIPs {
			ctx := lkCtx(t)
			lo := lkNew(t, e, authn.DefaultLockoutPolicy())
			var v lkVerifier
			account := lkAccount()
			outs := lkRace(t, ctx, lo, &v, account, 50, ips.ipFor, func(int) string { return "wrong" })
			c := lkCounts(outs)
			if v.checks.Load() > 5 || c[lkLockedNow] != 1 || c[lkSucceeded] != 0 {
				t.Fatalf("%s: %d hash checks, %d locks, outcomes %v; want at most 5 checks and exactly 1 lock",
					ips.name, v.checks.Load(), c[lkLockedNow], c)
			}
			lkWantLocked(t, ctx, lo, account, "192.0.2.200")
		}
	})
}

// TestLockoutFourFailuresThenRightAndWrongAtOnce: 4 failures followed by 1
// right and 49 wrong attempts at once give at most one success and none
// after the lock.
func TestLockoutFourFailuresThenRightAndWrongAtOnce(t *testing.T) {
	t.Parallel()
	lkEach(t, func(t *testing.T, e counterstest.Env) {
		ctx := lkCtx(t)
		for _, ips := range lkRaceIPs {
			for round := range 8 {
				// A fresh Lockout per round keeps the one-address throttle
				// from carrying over; the store is shared, the keys are new.
				lo := lkNew(t, e, authn.DefaultLockoutPolicy())
				var v lkVerifier
				account := lkAccount()
				ip := ips.ipFor
				if ips.name == "one address" {
					addr := lkIP(1000 + round)
					ip = func(int) string { return addr }
				}
				for i := range 4 {
					if o, err := lkLogin(ctx, lo, &v, account, ip(100+i), "wrong"); err != nil || o != lkFailed {
						t.Fatalf("failure %d = %v, %v", i+1, o, err)
					}
				}
				outs := lkRace(t, ctx, lo, &v, account, 50, ip, func(i int) string {
					if i == 0 {
						return "right"
					}
					return "wrong"
				})
				c := lkCounts(outs)
				switch {
				case c[lkSucceeded] > 1 || c[lkLockedNow] > 1:
					t.Fatalf("%s: outcomes %v: want at most one success and one lock", ips.name, c)
				case c[lkLockedAfterCheck] != 0:
					t.Fatalf("%s: the right password was checked while a lock could still appear: %v", ips.name, c)
				case c[lkSucceeded] == 0 && c[lkLockedNow] != 1:
					t.Fatalf("%s: the last attempt went to a wrong password but nothing locked: %v", ips.name, c)
				case v.checks.Load() > 4+1+5:
					t.Fatalf("%s: %d checks, want at most 4 before, 1 for the last slot, 5 after a reset", ips.name, v.checks.Load())
				}
				if c[lkLockedNow] == 1 {
					// None after the lock: the right password is refused now.
					lkWantLocked(t, ctx, lo, account, "192.0.2.201")
				}
			}
		}
	})
}

// TestLockoutNoSuccessAfterLock: a right password whose check began before
// the lock (here: its window ran out while it was checked, and others then
// failed five times) is refused.
func TestLockoutNoSuccessAfterLock(t *testing.T) {
	t.Parallel()
	// Memory only: it needs a window to pass mid-check, which a fake clock
	// does at once; the store contract covers the same on Redis.
	e := counterstest.MemoryEnv(t)
	ctx := lkCtx(t)
	lo := lkNew(t, e, authn.DefaultLockoutPolicy())
	account := lkAccount()
	slow, err := lo.Begin(ctx, account, lkIP(1))
	if err != nil {
		t.Fatal(err)
	}
	e.Advance(authn.DefaultLockoutWindow + time.Second)
	var v lkVerifier
	for i := range 5 {
		if _, err := lkLogin(ctx, lo, &v, account, lkIP(2), "wrong"); err != nil {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	lockedFor, err := slow.Succeed(ctx)
	if err != nil || lockedFor <= 0 || lockedFor > authn.DefaultLockoutDuration {
		t.Fatalf("Succeed after the lock = %v, %v; want the lock's remaining time", lockedFor, err)
	}
	lkWantLocked(t, ctx, lo, account, lkIP(3))
}

// TestLockoutLockNotExtended: attempts during a lock, even with the right
// password, do not extend it, and it lifts by itself.
func TestLockoutLockNotExtended(t *testing.T) {
	t.Parallel()
	// A Redis store really waits, so its lock is short: 2s (the policy's
	// smallest, 1s, would leave too little margin on a busy machine).
	lkEach(t, func(t *testing.T, e counterstest.Env) {
		ctx := lkCtx(t)
		p := authn.LockoutPolicy{MaxAttempts: 3, Window: time.Hour, Duration: 30 * time.Minute}
		during := 10 * time.Minute
		if _, isRedis := e.Store.(*sessions.RedisCounters); isRedis {
			p.Duration, during = 2*time.Second, 700*time.Millisecond
		}
		lo := lkNew(t, e, p)
		account := lkAccount()
		var v lkVerifier
		for range 3 {
			if _, err := lkLogin(ctx, lo, &v, account, lkIP(1), "wrong"); err != nil {
				t.Fatal(err)
			}
		}
		lockedAt := e.Now()
		e.Advance(during)
		for i := range 10 {
			pw := "wrong"
			if i%2 == 0 {
				pw = "right"
			}
			o, err := lkLogin(ctx, lo, &v, account, lkIP(2+i), pw)
			if err != nil || o != lkRefused {
				t.Fatalf("attempt during the lock = %v, %v; want refused", o, err)
			}
		}
		before := e.Now()
		le := lkWantLocked(t, ctx, lo, account, lkIP(50))
		if most := p.Duration - before.Sub(lockedAt) + time.Millisecond; le.RetryAfter > most {
			t.Fatalf("RetryAfter = %v after attempts during the lock, want at most %v (not extended)", le.RetryAfter, most)
		}
		if checks := v.checks.Load(); checks != 3 {
			t.Fatalf("%d password checks, want 3: attempts during a lock must not check a password", checks)
		}
		if d := lockedAt.Add(p.Duration + 50*time.Millisecond).Sub(e.Now()); d > 0 {
			e.Advance(d)
		}
		if o, err := lkLogin(ctx, lo, &v, account, lkIP(60), "right"); err != nil || o != lkSucceeded {
			t.Fatalf("login after the lock lifted = %v, %v; want success", o, err)
		}
	})
}

// TestLockoutSuccessResets: a successful login forgets the failures.
func TestLockoutSuccessResets(t *testing.T) {
	t.Parallel()
	lkEach(t, func(t *testing.T, e counterstest.Env) {
		ctx := lkCtx(t)
		lo := lkNew(t, e, authn.DefaultLockoutPolicy())
		account := lkAccount()
		fail := func(want int, wantLock bool) {
			t.Helper()
			att, err := lo.Begin(ctx, account, lkIP(want))
			if err != nil {
				t.Fatal(err)
			}
			locked, err := att.Fail(ctx)
			if err != nil || locked != wantLock || att.Failures() != want {
				t.Fatalf("Fail = %v, %v, Failures %d; want %v, %d", locked, err, att.Failures(), wantLock, want)
			}
		}
		for i := 1; i <= 4; i++ {
			fail(i, false)
		}
		var v lkVerifier
		if o, err := lkLogin(ctx, lo, &v, account, lkIP(9), "right"); err != nil || o != lkSucceeded {
			t.Fatalf("right password after 4 failures = %v, %v", o, err)
		}
		if st, err := lo.Status(ctx, account); err != nil || st != (authn.LockoutStatus{}) {
			t.Fatalf("Status after a success = %+v, %v; want empty", st, err)
		}
		for i := 1; i <= 4; i++ {
			fail(i, false)
		}
		fail(5, true)
		st, err := lo.Status(ctx, account)
		if err != nil || st.LockedFor <= 0 || st.LockedFor > authn.DefaultLockoutDuration {
			t.Fatalf("Status after the lock = %+v, %v", st, err)
		}
	})
}

// TestLockoutUnlock: an admin unlock lifts the lock at once.
func TestLockoutUnlock(t *testing.T) {
	t.Parallel()
	lkEach(t, func(t *testing.T, e counterstest.Env) {
		ctx := lkCtx(t)
		lo := lkNew(t, e, authn.DefaultLockoutPolicy())
		account := lkAccount()
		var v lkVerifier
		for range 5 {
			if _, err := lkLogin(ctx, lo, &v, account, lkIP(1), "wrong"); err != nil {
				t.Fatal(err)
			}
		}
		lkWantLocked(t, ctx, lo, account, lkIP(2))
		if was, err := lo.Unlock(ctx, account); err != nil || !was {
			t.Fatalf("Unlock = %v, %v; want true", was, err)
		}
		if o, err := lkLogin(ctx, lo, &v, account, lkIP(2), "right"); err != nil || o != lkSucceeded {
			t.Fatalf("login after unlock = %v, %v", o, err)
		}
		if was, err := lo.Unlock(ctx, account); err != nil || was {
			t.Fatalf("second Unlock = %v, %v; want false", was, err)
		}
	})
}

// TestLockoutAddressThrottle: one address cannot spray many accounts, known
// or not; other addresses are unaffected; the throttle lifts by itself.
func TestLockoutAddressThrottle(t *testing.T) {
	t.Parallel()
	lkEach(t, func(t *testing.T, e counterstest.Env) {
		ctx := lkCtx(t)
		p := authn.DefaultLockoutPolicy()
		if _, isRedis := e.Store.(*sessions.RedisCounters); isRedis {
			p.IPWindow = 2 * time.Second
		}
		lo := lkNew(t, e, p)
		const sprayer = "203.0.113.9"
		var v lkVerifier
		began := e.Now()
		for i := range p.IPMaxAttempts {
			// A different account each time, as unknown e-mails would be.
			if o, err := lkLogin(ctx, lo, &v, fmt.Sprintf("e:unknown-%d-%s", i, lkAccount()), sprayer, "wrong"); err != nil || o != lkFailed {
				t.Fatalf("attempt %d = %v, %v", i+1, o, err)
			}
		}
		_, err := lo.Begin(ctx, lkAccount(), sprayer)
		var le *authn.LockoutError
		if !errors.As(err, &le) || !le.ClientIP || errors.Is(err, authn.ErrAccountLocked) || !errors.Is(err, authn.ErrTooManyAttempts) {
			t.Fatalf("attempt %d from the address = %v, want the address throttle", p.IPMaxAttempts+1, err)
		}
		if le.RetryAfter <= 0 || le.RetryAfter > p.IPWindow {
			t.Fatalf("RetryAfter = %v, want within the window %v", le.RetryAfter, p.IPWindow)
		}
		if o, err := lkLogin(ctx, lo, &v, lkAccount(), "203.0.113.10", "right"); err != nil || o != lkSucceeded {
			t.Fatalf("another address = %v, %v; want success", o, err)
		}
		if d := began.Add(p.IPWindow + 100*time.Millisecond).Sub(e.Now()); d > 0 {
			e.Advance(d)
		}
		if o, err := lkLogin(ctx, lo, &v, lkAccount(), sprayer, "right"); err != nil || o != lkSucceeded {
			t.Fatalf("the address after its window = %v, %v; want success", o, err)
		}
	})
}

// TestLockoutAddressCounting: which attempts count against an address, and
// which addresses are one client.
func TestLockoutAddressCounting(t *testing.T) {
	t.Parallel()
	e := counterstest.MemoryEnv(t)
	ctx := lkCtx(t)
	lo := lkNew(t, e, authn.LockoutPolicy{IPMaxAttempts: 3})
	var v lkVerifier
	throttled := func(ip string) bool {
		t.Helper()
		att, err := lo.Begin(ctx, lkAccount(), ip)
		if err == nil {
			if err := att.Release(ctx); err != nil {
				t.Fatal(err)
			}
			return false
		}
		var le *authn.LockoutError
		if !errors.As(err, &le) || !le.ClientIP {
			t.Fatalf("Begin from %s = %v", ip, err)
		}
		return true
	}
	login := func(ip, pw string, want lkOutcome) {
		t.Helper()
		if o, err := lkLogin(ctx, lo, &v, lkAccount(), ip, pw); err != nil || o != want {
			t.Fatalf("login from %s = %v, %v; want %v", ip, o, err, want)
		}
	}

	// A success does not reset the address (an attacker with one account
	// of their own must not be able to clear the count).
	login("192.0.2.1", "wrong", lkFailed)
	login("192.0.2.1", "right", lkSucceeded)
	login("192.0.2.1", "wrong", lkFailed)
	if throttled("192.0.2.1") {
		t.Fatal("throttled after 2 failures of 3")
	}
	// The same IPv4 client however the address is written.
	login("::ffff:192.0.2.1", "wrong", lkFailed)
	for _, spelling := range []string{"192.0.2.1", " 192.0.2.1 ", "192.0.2.1:40000", "::ffff:192.0.2.1", "[::ffff:192.0.2.1]:1"} {
		if !throttled(spelling) {
			t.Fatalf("%q not throttled after 3 failures of 192.0.2.1", spelling)
		}
	}
	if throttled("192.0.2.2") {
		t.Fatal("a neighbouring IPv4 address was throttled")
	}

	// An IPv6 client is its /64.
	login("2001:db8:1:2::1", "wrong", lkFailed)
	login("2001:db8:1:2:ffff::5", "wrong", lkFailed)
	login("2001:db8:1:2::9%eth0", "wrong", lkFailed)
	if !throttled("2001:db8:1:2:abcd::1") {
		t.Fatal("another address in the same /64 was not throttled")
	}
	if throttled("2001:db8:1:3::1") {
		t.Fatal("the next /64 was throttled")
	}

	// Attempts refused by a locked account count against the address.
	account := lkAccount()
	lo2 := lkNew(t, e, authn.LockoutPolicy{MaxAttempts: 1, IPMaxAttempts: 3})
	if o, err := lkLogin(ctx, lo2, &v, account, "192.0.2.50", "wrong"); err != nil || o != lkLockedNow {
		t.Fatalf("first failure = %v, %v; want the lock", o, err)
	}
	for range 2 {
		if o, err := lkLogin(ctx, lo2, &v, account, "192.0.2.50", "right"); err != nil || o != lkRefused {
			t.Fatalf("attempt on the locked account = %v, %v", o, err)
		}
	}
	_, err := lo2.Begin(ctx, lkAccount(), "192.0.2.50")
	var le *authn.LockoutError
	if !errors.As(err, &le) || !le.ClientIP {
		t.Fatalf("after 1 failure and 2 refusals the address = %v, want throttled", err)
	}
}

// TestLockoutRelease: an attempt that never checked a password costs
// nothing, and ending an attempt twice is refused.
func TestLockoutRelease(t *testing.T) {
	t.Parallel()
	lkEach(t, func(t *testing.T, e counterstest.Env) {
		ctx := lkCtx(t)
		lo := lkNew(t, e, authn.LockoutPolicy{IPMaxAttempts: 5})
		account := lkAccount()
		var atts []*authn.Attempt
		for range 5 {
			att, err := lo.Begin(ctx, account, "192.0.2.77")
			if err != nil {
				t.Fatal(err)
			}
			atts = append(atts, att)
		}
		// Five in flight: a sixth is refused without a lock.
		_, err := lo.Begin(ctx, account, "192.0.2.78")
		if !errors.Is(err, authn.ErrTooManyAttempts) || errors.Is(err, authn.ErrAccountLocked) {
			t.Fatalf("sixth concurrent attempt = %v, want ErrTooManyAttempts without a lock", err)
		}
		for _, att := range atts {
			if err := att.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if err := att.Release(ctx); !errors.Is(err, authn.ErrAttemptFinished) {
				t.Fatalf("second Release = %v, want ErrAttemptFinished", err)
			}
			if _, err := att.Fail(ctx); !errors.Is(err, authn.ErrAttemptFinished) {
				t.Fatalf("Fail after Release = %v, want ErrAttemptFinished", err)
			}
			if _, err := att.Succeed(ctx); !errors.Is(err, authn.ErrAttemptFinished) {
				t.Fatalf("Succeed after Release = %v, want ErrAttemptFinished", err)
			}
		}
		if st, err := lo.Status(ctx, account); err != nil || st != (authn.LockoutStatus{}) {
			t.Fatalf("Status after releasing = %+v, %v; want empty", st, err)
		}
		// Neither address was charged: 5 more attempts from .77 go through.
		for range 5 {
			att, err := lo.Begin(ctx, lkAccount(), "192.0.2.77")
			if err != nil {
				t.Fatalf("address charged for released attempts: %v", err)
			}
			if err := att.Release(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestLockoutClientGone: a client that hangs up after its password was
// checked still has the failure counted.
func TestLockoutClientGone(t *testing.T) {
	t.Parallel()
	lkEach(t, func(t *testing.T, e counterstest.Env) {
		lo := lkNew(t, e, authn.DefaultLockoutPolicy())
		account := lkAccount()
		ctx, cancel := context.WithCancel(lkCtx(t))
		att, err := lo.Begin(ctx, account, lkIP(1))
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := att.Fail(ctx); err != nil {
			t.Fatalf("Fail with the request cancelled = %v", err)
		}
		if st, err := lo.Status(lkCtx(t), account); err != nil || st.Failures != 1 {
			t.Fatalf("Status = %+v, %v; want the failure counted", st, err)
		}
	})
}

// TestLockoutCountersDown: with the counter store unreachable, login fails
// closed, fast.
func TestLockoutCountersDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	rdb, err := sessions.NewRedisClient("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	store, err := sessions.NewRedisCounters(rdb)
	if err != nil {
		t.Fatal(err)
	}
	lo, err := authn.NewLockout(store, authn.DefaultLockoutPolicy())
	if err != nil {
		t.Fatal(err)
	}
	ctx := lkCtx(t)
	calls := map[string]func() error{
		"Begin":  func() error { _, err := lo.Begin(ctx, lkAccount(), lkIP(1)); return err },
		"Unlock": func() error { _, err := lo.Unlock(ctx, lkAccount()); return err },
		"Status": func() error { _, err := lo.Status(ctx, lkAccount()); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			err := call()
			if took := time.Since(began); took >= time.Second {
				t.Errorf("took %v, want under 1s", took)
			}
			if !errors.Is(err, authn.ErrCountersUnavailable) || errors.Is(err, authn.ErrTooManyAttempts) {
				t.Errorf("= %v, want ErrCountersUnavailable", err)
			}
		})
	}
}

// lkFlaky is a counter store that fails on chosen calls.
type lkFlaky struct {
	sessions.CounterStore
	failReserve func(key string) bool
	released    atomic.Int32
}

func (f *lkFlaky) Reserve(ctx context.Context, key string, lim sessions.Limit) (sessions.Reservation, error) {
	if f.failReserve(key) {
		return sessions.Reservation{}, fmt.Errorf("flaky: %w", sessions.ErrUnavailable)
	}
	return f.CounterStore.Reserve(ctx, key, lim)
}

func (f *lkFlaky) Release(ctx context.Context, key string) error {
	f.released.Add(1)
	return f.CounterStore.Release(ctx, key)
}

// TestLockoutPartialOutage: if the account counter fails after the address
// was reserved, the address is given back and login answers unavailable.
func TestLockoutPartialOutage(t *testing.T) {
	t.Parallel()
	e := counterstest.MemoryEnv(t)
	ctx := lkCtx(t)
	flaky := &lkFlaky{CounterStore: e.Store, failReserve: func(key string) bool { return key != "ip:192.0.2.5" }}
	lo, err := authn.NewLockout(flaky, authn.LockoutPolicy{IPMaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := lo.Begin(ctx, lkAccount(), "192.0.2.5"); !errors.Is(err, authn.ErrCountersUnavailable) {
			t.Fatalf("Begin with the account counter down = %v, want ErrCountersUnavailable", err)
		}
	}
	if n := flaky.released.Load(); n != 3 {
		t.Fatalf("address released %d times, want 3", n)
	}
}

func TestLockoutInvalidInput(t *testing.T) {
	t.Parallel()
	e := counterstest.MemoryEnv(t)
	ctx := lkCtx(t)
	lo := lkNew(t, e, authn.DefaultLockoutPolicy())
	cases := []struct{ account, ip string }{
		{"", "192.0.2.1"},
		{"u:{x}", "192.0.2.1"},
		{string(make([]byte, sessions.MaxCounterKeyLen)), "192.0.2.1"},
		{"u:1", ""},
		{"u:1", "not an address"},
		{"u:1", "192.0.2.1.5"},
		{"u:1", "unix:/run/sock"},
	}
	for _, c := range cases {
		if _, err := lo.Begin(ctx, c.account, c.ip); !errors.Is(err, authn.ErrInvalidLockoutInput) {
			t.Errorf("Begin(%.20q, %q) = %v, want ErrInvalidLockoutInput", c.account, c.ip, err)
		}
	}
	if _, err := lo.Unlock(ctx, ""); !errors.Is(err, authn.ErrInvalidLockoutInput) {
		t.Errorf("Unlock(\"\") = %v", err)
	}
	if _, err := lo.Status(ctx, "{"); !errors.Is(err, authn.ErrInvalidLockoutInput) {
		t.Errorf("Status(\"{\") = %v", err)
	}
}

func TestNewLockout(t *testing.T) {
	t.Parallel()
	e := counterstest.MemoryEnv(t)
	lo, err := authn.NewLockout(e.Store, authn.LockoutPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	if got := lo.Policy(); got != authn.DefaultLockoutPolicy() {
		t.Fatalf("zero policy = %+v, want the defaults %+v", got, authn.DefaultLockoutPolicy())
	}
	if lo.Duration() != 30*time.Minute {
		t.Fatalf("Duration = %v", lo.Duration())
	}
	want := authn.LockoutPolicy{MaxAttempts: 3, Window: time.Minute, Duration: time.Hour, IPMaxAttempts: 50, IPWindow: time.Hour}
	if lo, err := authn.NewLockout(e.Store, want); err != nil || lo.Policy() != want {
		t.Fatalf("NewLockout(%+v) = %+v, %v", want, lo.Policy(), err)
	}
	bad := []authn.LockoutPolicy{
		{MaxAttempts: -1},
		{Window: -time.Minute},
		{Duration: 500 * time.Millisecond},
		{IPMaxAttempts: -5},
		{IPWindow: time.Millisecond},
	}
	for _, p := range bad {
		if _, err := authn.NewLockout(e.Store, p); err == nil {
			t.Errorf("NewLockout(%+v) accepted", p)
		}
	}
	if _, err := authn.NewLockout(nil, authn.LockoutPolicy{}); err == nil {
		t.Error("nil store accepted")
	}
}

func TestLockoutErrorShape(t *testing.T) {
	t.Parallel()
	locked := &authn.LockoutError{Err: authn.ErrAccountLocked, RetryAfter: time.Minute}
	if !errors.Is(locked, authn.ErrAccountLocked) || !errors.Is(locked, authn.ErrTooManyAttempts) || errors.Is(locked, authn.ErrCountersUnavailable) {
		t.Fatal("a locked refusal must match ErrAccountLocked and ErrTooManyAttempts only")
	}
	wrapped := fmt.Errorf("login: %w", &authn.LockoutError{Err: authn.ErrTooManyAttempts, RetryAfter: time.Second, ClientIP: true})
	var le *authn.LockoutError
	if !errors.As(wrapped, &le) || !le.ClientIP || errors.Is(wrapped, authn.ErrAccountLocked) {
		t.Fatalf("wrapped throttle refusal: %v", wrapped)
	}
	if locked.Error() == "" {
		t.Fatal("empty message")
	}
}
