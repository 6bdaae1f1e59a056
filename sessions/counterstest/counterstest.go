// Package counterstest is the contract suite every sessions.CounterStore must
// pass, plus the environments the tests of this module build counter stores
// with: an in-process store on a fake clock and a Redis store on a key prefix
// of the test's own.
//
// Redis keeps its own time, so a test cannot move it: where the suite needs
// time to pass it calls Env.Advance, which moves the memory store's fake clock
// and, for Redis, sleeps. Those scenarios use windows and locks of a second or
// two, check with Env.Now that the machine did not oversleep past what they
// can judge, and run again if it did; every other test uses windows of
// minutes, so real time never interferes.
package counterstest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/sessionstest"
)

// Env is one test's counter store and the way to let time pass for it.
type Env struct {
	Store sessions.CounterStore
	// Advance lets at least d pass as far as Store can tell.
	Advance func(d time.Duration)
	// Now is the time as Store sees it (a fake clock, or the real time for
	// a store that keeps its own). Timing scenarios use it to notice that a
	// busy machine overslept so much that the scenario proves nothing.
	Now func() time.Time
}

// NewStore builds a fresh, empty store for one test, isolated from every
// other test and cleaned up with t.Cleanup.
type NewStore func(t *testing.T) Env

// testTimeout bounds every test, so a hung store fails instead of stalling
// the run.
const testTimeout = 20 * time.Second

// DefaultRedis is used when PORTERO_TEST_REDIS is unset.
const DefaultRedis = sessionstest.DefaultRedis

// Run runs the contract suite against the stores newStore makes.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e env)
	}{
		{"LockAfterMaxFailures", testLockAfterMax},
		{"AttemptsDuringLockDoNotExtendIt", testLockNotExtended},
		{"LockLiftsByItself", testLockLifts},
		{"WindowExpires", testWindowExpires},
		{"WindowIsFixed", testWindowIsFixed},
		{"FiftyConcurrentWrongAttempts", testConcurrentWrong},
		{"FourFailuresThenRightAndWrongAtOnce", testConcurrentRightAndWrong},
		{"SucceedResets", testSucceedResets},
		{"SucceedRefusedWhileLocked", testSucceedWhileLocked},
		{"InFlightAttemptsCount", testInFlight},
		{"Release", testRelease},
		{"Unlock", testUnlock},
		{"ThrottleWithoutLock", testThrottleWithoutLock},
		{"KeysAreIndependent", testKeysIndependent},
		{"Status", testStatus},
		{"InvalidKeyOrLimit", testInvalid},
		{"CancelledContext", testCancelledContext},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			t.Cleanup(cancel)
			tc.fn(t, env{Env: newStore(t), ctx: ctx})
		})
	}
}

// env is one test's store and context.
type env struct {
	Env
	ctx context.Context
}

// Limits of the suite. Tests that let time pass use the short ones (a Redis
// store really waits for them); the others use minutes.
var long = sessions.Limit{Max: 5, Window: time.Minute, LockFor: time.Minute}

// slack is how much longer real time may run than the suite asked for
// before a remaining-time check counts as wrong: Redis measures its own
// time, and a busy test machine oversleeps.
const slack = 2 * time.Second

func (e env) reserve(t *testing.T, key string, lim sessions.Limit) sessions.Reservation {
	t.Helper()
	r, err := e.Store.Reserve(e.ctx, key, lim)
	if err != nil {
		t.Fatalf("Reserve(%q) = %v", key, err)
	}
	return r
}

func (e env) mustAllow(t *testing.T, key string, lim sessions.Limit, wantN int) {
	t.Helper()
	r := e.reserve(t, key, lim)
	if !r.Allowed || r.Locked || r.RetryAfter != 0 || r.N != wantN {
		t.Fatalf("Reserve(%q) = %+v, want allowed with N=%d", key, r, wantN)
	}
}

func (e env) fail(t *testing.T, key string, lim sessions.Limit) bool {
	t.Helper()
	_, locked, err := e.Store.Fail(e.ctx, key, lim)
	if err != nil {
		t.Fatalf("Fail(%q) = %v", key, err)
	}
	return locked
}

// failCount is fail that also checks the failure count Fail reports.
func (e env) failCount(t *testing.T, key string, lim sessions.Limit, want int) bool {
	t.Helper()
	n, locked, err := e.Store.Fail(e.ctx, key, lim)
	if err != nil {
		t.Fatalf("Fail(%q) = %v", key, err)
	}
	if n != want {
		t.Fatalf("Fail(%q) counted %d failures, want %d", key, n, want)
	}
	return locked
}

// failN makes n reserved attempts that fail and checks none of them locks.
func (e env) failN(t *testing.T, key string, lim sessions.Limit, n int) {
	t.Helper()
	for i := range n {
		r := e.reserve(t, key, lim)
		if !r.Allowed {
			t.Fatalf("attempt %d: Reserve = %+v, want allowed", i+1, r)
		}
		if e.fail(t, key, lim) {
			t.Fatalf("attempt %d locked the key, want a lock only at %d", i+1, lim.Max)
		}
	}
}

// lock makes lim.Max failures and checks the last one, and only it, locks.
func (e env) lock(t *testing.T, key string, lim sessions.Limit) {
	t.Helper()
	e.failN(t, key, lim, lim.Max-1)
	e.mustAllow(t, key, lim, lim.Max)
	if !e.fail(t, key, lim) {
		t.Fatalf("failure %d did not lock the key", lim.Max)
	}
}

// wantLocked checks r says locked with at most want and more than
// want-slack left.
func (e env) wantLocked(t *testing.T, r sessions.Reservation, want time.Duration) {
	t.Helper()
	if !r.Locked || r.Allowed || r.N != 0 {
		t.Fatalf("Reserve = %+v, want locked", r)
	}
	within(t, "RetryAfter", r.RetryAfter, want)
}

// advanceTo lets time pass until at least target.
func (e env) advanceTo(target time.Time) {
	if d := target.Sub(e.Now()); d > 0 {
		e.Advance(d)
	}
}

// timed runs a scenario that needs time to pass as asked. The scenario
// returns false when the machine was so slow (a Redis test really sleeps)
// that it proves nothing either way; it then runs again, and three such runs
// fail the test rather than pass it unproven.
func (e env) timed(t *testing.T, scenario func() bool) {
	t.Helper()
	for range 3 {
		if scenario() {
			return
		}
		t.Log("the machine overslept; running the timing scenario again")
	}
	t.Fatal("the machine overslept three times; the timing scenario proved nothing")
}

func (e env) status(t *testing.T, key string) sessions.CounterStatus {
	t.Helper()
	st, err := e.Store.Status(e.ctx, key)
	if err != nil {
		t.Fatalf("Status(%q) = %v", key, err)
	}
	return st
}

// within checks 0 < got <= want and got > want-slack.
func within(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if got <= 0 || got > want || got <= want-slack {
		t.Fatalf("%s = %v, want at most %v and more than %v", what, got, want, want-slack)
	}
}

// newKey returns a key no other test uses.
func newKey() string { return "t:" + rand.Text() }

func testLockAfterMax(t *testing.T, e env) {
	k := newKey()
	for i := 1; i <= long.Max; i++ {
		e.mustAllow(t, k, long, i)
		if got := e.failCount(t, k, long, i); got != (i == long.Max) {
			t.Fatalf("failure %d: lockedNow = %v", i, got)
		}
		if i < long.Max {
			if st := e.status(t, k); st.Failures != i || st.InFlight != 0 || st.LockedFor != 0 {
				t.Fatalf("after failure %d: status %+v", i, st)
			}
		}
	}
	e.wantLocked(t, e.reserve(t, k, long), long.LockFor)
	st := e.status(t, k)
	within(t, "LockedFor", st.LockedFor, long.LockFor)
	if st.Failures != 0 || st.InFlight != 0 {
		t.Fatalf("locked status %+v: the counter should start afresh after the lock", st)
	}
}

func testLockNotExtended(t *testing.T, e env) {
	lim := sessions.Limit{Max: 2, Window: time.Minute, LockFor: 2 * time.Second}
	e.timed(t, func() bool {
		k := newKey()
		e.lock(t, k, lim)
		lockedAt := e.Now() // the lock was set before this
		e.Advance(500 * time.Millisecond)
		// Every kind of attempt during the lock: refused reservations, stray
		// failures, a success and a release of attempts reserved earlier.
		var rs []sessions.Reservation
		var lockedNow bool
		for range 5 {
			rs = append(rs, e.reserve(t, k, lim))
			lockedNow = lockedNow || e.failCount(t, k, lim, 0)
		}
		d, err := e.Store.Succeed(e.ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Store.Release(e.ctx, k); err != nil {
			t.Fatal(err)
		}
		before := e.Now()
		r := e.reserve(t, k, lim)
		if e.Now().Sub(lockedAt) > lim.LockFor-300*time.Millisecond {
			return false // too near the lock's end to tell
		}
		for _, r := range rs {
			if !r.Locked {
				t.Fatalf("Reserve during the lock = %+v", r)
			}
		}
		if lockedNow || d <= 0 {
			t.Fatalf("during the lock: Fail reported a new lock (%v), Succeed = %v", lockedNow, d)
		}
		// Had any of those extended the lock, it would have about the full
		// duration left again.
		e.wantLocked(t, r, lim.LockFor-before.Sub(lockedAt)+time.Millisecond)
		e.advanceTo(lockedAt.Add(lim.LockFor + 50*time.Millisecond))
		e.mustAllow(t, k, lim, 1)
		return true
	})
}

func testLockLifts(t *testing.T, e env) {
	k := newKey()
	lim := sessions.Limit{Max: 3, Window: time.Minute, LockFor: 500 * time.Millisecond}
	e.lock(t, k, lim)
	e.advanceTo(e.Now().Add(lim.LockFor + 50*time.Millisecond))
	if st := e.status(t, k); st != (sessions.CounterStatus{}) {
		t.Fatalf("status after the lock lifted = %+v, want empty", st)
	}
	// The count starts afresh: Max-1 failures do not lock again.
	e.failN(t, k, lim, lim.Max-1)
	e.mustAllow(t, k, lim, lim.Max)
}

func testWindowExpires(t *testing.T, e env) {
	lim := sessions.Limit{Max: 3, Window: time.Second, LockFor: time.Minute}
	e.timed(t, func() bool {
		k := newKey()
		e.failN(t, k, lim, 2)
		e.advanceTo(e.Now().Add(lim.Window + 50*time.Millisecond))
		began := e.Now()
		e.failN(t, k, lim, 2) // 4 failures in all, never 3 within one window
		st := e.status(t, k)
		if e.Now().Sub(began) >= lim.Window {
			return false // the second pair itself spanned two windows
		}
		if st.Failures != 2 || st.LockedFor != 0 {
			t.Fatalf("status = %+v, want 2 failures and no lock", st)
		}
		return true
	})
}

func testWindowIsFixed(t *testing.T, e env) {
	lim := sessions.Limit{Max: 5, Window: 2 * time.Second, LockFor: time.Minute}
	e.timed(t, func() bool {
		k := newKey()
		began := e.Now()
		e.failN(t, k, lim, 1)
		firstDone := e.Now() // the window began before this
		e.Advance(time.Second)
		secondAt := e.Now()
		e.failN(t, k, lim, 1)
		if secondAt.Sub(began) >= lim.Window-100*time.Millisecond {
			return false // the second failure may have opened a new window
		}
		e.advanceTo(firstDone.Add(lim.Window + 50*time.Millisecond))
		st := e.status(t, k)
		if e.Now().Sub(secondAt) >= lim.Window-50*time.Millisecond {
			return false // a sliding window would have ended too
		}
		// The first attempt's window is over though the second failure is
		// recent: the window did not slide.
		if st != (sessions.CounterStatus{}) {
			t.Fatalf("status after the first window = %+v, want empty (the window must not slide)", st)
		}
		return true
	})
}

// hashTime stands in for a password hash in the races: without it each
// goroutine would end its attempt before the next one reserved, and a store
// that forgot attempts in flight would pass.
const hashTime = 2 * time.Millisecond

// race runs fn on n goroutines released at once.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// testConcurrentWrong: 50 concurrent wrong attempts produce exactly one lock
// and at most Max (here exactly Max) password checks.
func testConcurrentWrong(t *testing.T, e env) {
	k := newKey()
	var checks, locks, refused atomic.Int32
	errs := make(chan error, 50)
	race(50, func(int) {
		r, err := e.Store.Reserve(e.ctx, k, long)
		if err != nil {
			errs <- err
			return
		}
		if !r.Allowed {
			refused.Add(1)
			return
		}
		checks.Add(1)
		time.Sleep(hashTime) // the password check would run here
		n, locked, err := e.Store.Fail(e.ctx, k, long)
		if err != nil {
			errs <- err
			return
		}
		if locked {
			locks.Add(1)
			if n != long.Max {
				errs <- fmt.Errorf("the locking failure counted %d failures, want %d", n, long.Max)
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if checks.Load() != int32(long.Max) || locks.Load() != 1 || refused.Load() != 50-int32(long.Max) {
		t.Fatalf("50 concurrent wrong attempts: %d checks, %d locks, %d refused; want %d, 1, %d",
			checks.Load(), locks.Load(), refused.Load(), long.Max, 50-long.Max)
	}
	e.wantLocked(t, e.reserve(t, k, long), long.LockFor)
}

// testConcurrentRightAndWrong: 4 failures, then 1 right and 49 wrong
// attempts at once give at most one success and none after the lock.
func testConcurrentRightAndWrong(t *testing.T, e env) {
	for range 3 {
		k := newKey()
		e.failN(t, k, long, long.Max-1)
		var checks, successes, locks, lockedSuccess atomic.Int32
		errs := make(chan error, 50)
		race(50, func(i int) {
			r, err := e.Store.Reserve(e.ctx, k, long)
			if err != nil {
				errs <- err
				return
			}
			if !r.Allowed {
				return
			}
			checks.Add(1)
			time.Sleep(hashTime)
			if i == 0 { // the right password
				d, err := e.Store.Succeed(e.ctx, k)
				switch {
				case err != nil:
					errs <- err
				case d > 0:
					lockedSuccess.Add(1)
				default:
					successes.Add(1)
				}
				return
			}
			_, locked, err := e.Store.Fail(e.ctx, k, long)
			if err != nil {
				errs <- err
				return
			}
			if locked {
				locks.Add(1)
			}
		})
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		s, l := successes.Load(), locks.Load()
		switch {
		case s > 1 || l > 1:
			t.Fatalf("%d successes, %d locks; want at most one of each", s, l)
		case lockedSuccess.Load() != 0:
			// With 4 failures counted, the right attempt can only hold the
			// last slot, so no lock can appear while it is in flight.
			t.Fatalf("the right attempt was checked and then found the key locked")
		case s == 0 && l != 1:
			t.Fatalf("the last slot went to a wrong attempt but no lock followed (%d locks)", l)
		case checks.Load() > int32(1+long.Max):
			t.Fatalf("%d password checks, want at most %d (the last slot, then Max after a reset)", checks.Load(), 1+long.Max)
		}
		if l == 1 {
			e.wantLocked(t, e.reserve(t, k, long), long.LockFor)
		}
	}
}

func testSucceedResets(t *testing.T, e env) {
	k := newKey()
	e.failN(t, k, long, long.Max-1)
	e.mustAllow(t, k, long, long.Max)
	if d, err := e.Store.Succeed(e.ctx, k); err != nil || d != 0 {
		t.Fatalf("Succeed = %v, %v; want 0, nil", d, err)
	}
	if st := e.status(t, k); st != (sessions.CounterStatus{}) {
		t.Fatalf("status after a success = %+v, want empty", st)
	}
	e.lock(t, k, long) // a full Max failures again before the lock
}

// testSucceedWhileLocked: an attempt in flight whose key got locked in the
// meantime (here: its window ran out and another attempt failed in a new
// one) is not recorded as a success.
func testSucceedWhileLocked(t *testing.T, e env) {
	k := newKey()
	lim := sessions.Limit{Max: 1, Window: 500 * time.Millisecond, LockFor: time.Minute}
	e.mustAllow(t, k, lim, 1) // the slow right attempt
	e.advanceTo(e.Now().Add(lim.Window + 50*time.Millisecond))
	e.lock(t, k, lim)
	d, err := e.Store.Succeed(e.ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	within(t, "Succeed on a locked key", d, lim.LockFor)
	e.wantLocked(t, e.reserve(t, k, lim), lim.LockFor)
}

func testInFlight(t *testing.T, e env) {
	k := newKey()
	lim := sessions.Limit{Max: 3, Window: time.Minute, LockFor: time.Minute}
	e.failN(t, k, lim, 1)
	e.mustAllow(t, k, lim, 2)
	e.mustAllow(t, k, lim, 3)
	r := e.reserve(t, k, lim)
	if r.Allowed || r.Locked || r.N != 3 {
		t.Fatalf("Reserve with 1 failure and 2 in flight = %+v, want refused, not locked, N=3", r)
	}
	within(t, "RetryAfter of a full counter", r.RetryAfter, lim.Window)
	if st := e.status(t, k); st.Failures != 1 || st.InFlight != 2 {
		t.Fatalf("status = %+v, want 1 failure and 2 in flight", st)
	}
	// The refusal counted nothing: the two in flight failing reach exactly 3.
	if e.fail(t, k, lim) {
		t.Fatal("second failure locked")
	}
	if !e.fail(t, k, lim) {
		t.Fatal("third failure did not lock")
	}
}

func testRelease(t *testing.T, e env) {
	k := newKey()
	lim := sessions.Limit{Max: 2, Window: time.Minute, LockFor: time.Minute}
	e.mustAllow(t, k, lim, 1)
	e.mustAllow(t, k, lim, 2)
	if r := e.reserve(t, k, lim); r.Allowed {
		t.Fatalf("third Reserve = %+v, want refused", r)
	}
	if err := e.Store.Release(e.ctx, k); err != nil {
		t.Fatal(err)
	}
	e.mustAllow(t, k, lim, 2)
	for range 2 {
		if err := e.Store.Release(e.ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if st := e.status(t, k); st != (sessions.CounterStatus{}) {
		t.Fatalf("status after releasing everything = %+v, want empty", st)
	}
	// Releasing more than was reserved never makes room for extra attempts.
	if err := e.Store.Release(e.ctx, k); err != nil {
		t.Fatal(err)
	}
	e.mustAllow(t, k, lim, 1)
	e.mustAllow(t, k, lim, 2)
	if r := e.reserve(t, k, lim); r.Allowed {
		t.Fatalf("Reserve after extra releases = %+v, want refused", r)
	}
	// A failure stays counted when another attempt is released.
	if e.failCount(t, k, lim, 1) {
		t.Fatal("first failure locked")
	}
	if err := e.Store.Release(e.ctx, k); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, k); st.Failures != 1 || st.InFlight != 0 {
		t.Fatalf("status = %+v, want 1 failure and nothing in flight", st)
	}
}

func testUnlock(t *testing.T, e env) {
	k := newKey()
	e.lock(t, k, long)
	if was, err := e.Store.Unlock(e.ctx, k); err != nil || !was {
		t.Fatalf("Unlock of a locked key = %v, %v; want true", was, err)
	}
	e.mustAllow(t, k, long, 1)
	if e.fail(t, k, long) {
		t.Fatal("first failure after unlock locked")
	}
	// Unlock also clears a counter that has not locked yet.
	if was, err := e.Store.Unlock(e.ctx, k); err != nil || was {
		t.Fatalf("Unlock of an unlocked key = %v, %v; want false", was, err)
	}
	if st := e.status(t, k); st != (sessions.CounterStatus{}) {
		t.Fatalf("status after Unlock = %+v, want empty", st)
	}
	if was, err := e.Store.Unlock(e.ctx, newKey()); err != nil || was {
		t.Fatalf("Unlock of an unknown key = %v, %v; want false", was, err)
	}
}

// testThrottleWithoutLock is the per-address throttle: LockFor 0.
func testThrottleWithoutLock(t *testing.T, e env) {
	lim := sessions.Limit{Max: 3, Window: 2 * time.Second}
	e.timed(t, func() bool {
		k := newKey()
		began := e.Now()
		e.failN(t, k, lim, 3)
		windowEnd := e.Now().Add(lim.Window) // at the latest
		var rs []sessions.Reservation
		for range 3 {
			rs = append(rs, e.reserve(t, k, lim))
		}
		st := e.status(t, k)
		if e.Now().Sub(began) >= lim.Window-100*time.Millisecond {
			return false
		}
		for _, r := range rs {
			if r.Allowed || r.Locked || r.N != 3 {
				t.Fatalf("Reserve over the limit = %+v, want refused without a lock, N=3", r)
			}
			within(t, "RetryAfter", r.RetryAfter, lim.Window)
		}
		if st.LockedFor != 0 || st.Failures != 3 {
			t.Fatalf("status = %+v, want 3 failures and no lock", st)
		}
		e.advanceTo(windowEnd.Add(50 * time.Millisecond))
		e.mustAllow(t, k, lim, 1)
		return true
	})
}

func testKeysIndependent(t *testing.T, e env) {
	a := newKey()
	b := a + "x"
	e.lock(t, a, long)
	e.mustAllow(t, b, long, 1)
	e.mustAllow(t, a[:len(a)-1], long, 1)
	if st := e.status(t, b); st.InFlight != 1 || st.LockedFor != 0 {
		t.Fatalf("status of the other key = %+v", st)
	}
}

func testStatus(t *testing.T, e env) {
	k := newKey()
	if st := e.status(t, k); st != (sessions.CounterStatus{}) {
		t.Fatalf("status of a new key = %+v, want empty", st)
	}
	// A failure without a reservation (the counter ended while the attempt
	// was in flight) still counts, in a new window.
	if e.failCount(t, k, long, 1) {
		t.Fatal("one failure locked")
	}
	e.mustAllow(t, k, long, 2)
	st := e.status(t, k)
	if st.Failures != 1 || st.InFlight != 1 || st.LockedFor != 0 {
		t.Fatalf("status = %+v, want 1 failure, 1 in flight", st)
	}
	within(t, "WindowLeft", st.WindowLeft, long.Window)
}

func testInvalid(t *testing.T, e env) {
	badKeys := []string{"", "{a}", "a}b", "a{b", strings.Repeat("k", sessions.MaxCounterKeyLen+1)}
	for _, k := range badKeys {
		calls := map[string]error{}
		_, calls["Reserve"] = e.Store.Reserve(e.ctx, k, long)
		_, _, calls["Fail"] = e.Store.Fail(e.ctx, k, long)
		_, calls["Succeed"] = e.Store.Succeed(e.ctx, k)
		calls["Release"] = e.Store.Release(e.ctx, k)
		_, calls["Unlock"] = e.Store.Unlock(e.ctx, k)
		_, calls["Status"] = e.Store.Status(e.ctx, k)
		for name, err := range calls {
			if !errors.Is(err, sessions.ErrInvalidCounter) {
				t.Errorf("%s(key of %d bytes %.10q) = %v, want ErrInvalidCounter", name, len(k), k, err)
			}
		}
	}
	e.mustAllow(t, strings.Repeat("k", sessions.MaxCounterKeyLen), long, 1)
	badLimits := []sessions.Limit{
		{Max: 0, Window: time.Minute},
		{Max: -1, Window: time.Minute},
		{Max: 1, Window: 0},
		{Max: 1, Window: 500 * time.Microsecond},
		{Max: 1, Window: time.Minute, LockFor: -time.Second},
		{Max: 1, Window: time.Minute, LockFor: 500 * time.Microsecond},
	}
	k := newKey()
	for _, lim := range badLimits {
		if _, err := e.Store.Reserve(e.ctx, k, lim); !errors.Is(err, sessions.ErrInvalidCounter) {
			t.Errorf("Reserve with %+v = %v, want ErrInvalidCounter", lim, err)
		}
		if _, _, err := e.Store.Fail(e.ctx, k, lim); !errors.Is(err, sessions.ErrInvalidCounter) {
			t.Errorf("Fail with %+v = %v, want ErrInvalidCounter", lim, err)
		}
	}
	if st := e.status(t, k); st != (sessions.CounterStatus{}) {
		t.Fatalf("refused calls changed the key: %+v", st)
	}
}

func testCancelledContext(t *testing.T, e env) {
	k := newKey()
	e.failN(t, k, long, 1)
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	calls := map[string]error{}
	_, calls["Reserve"] = e.Store.Reserve(ctx, k, long)
	_, _, calls["Fail"] = e.Store.Fail(ctx, k, long)
	_, calls["Succeed"] = e.Store.Succeed(ctx, k)
	calls["Release"] = e.Store.Release(ctx, k)
	_, calls["Unlock"] = e.Store.Unlock(ctx, k)
	_, calls["Status"] = e.Store.Status(ctx, k)
	calls["Ping"] = e.Store.Ping(ctx)
	for name, err := range calls {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", name, err)
		}
	}
	if st := e.status(t, k); st.Failures != 1 || st.InFlight != 0 {
		t.Fatalf("cancelled calls changed the key: %+v", st)
	}
}

func testPing(t *testing.T, e env) {
	if err := e.Store.Ping(e.ctx); err != nil {
		t.Fatalf("Ping = %v", err)
	}
}

// MemoryEnv is a NewStore for sessions.MemoryCounters on a fake clock that
// Advance moves.
func MemoryEnv(t *testing.T) Env {
	t.Helper()
	clock := sessionstest.NewFakeClock(time.Now().UTC().Truncate(time.Millisecond))
	st, err := sessions.NewMemoryCounters(sessions.WithCounterClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := st.Close(ctx); err != nil {
			t.Errorf("close memory counters: %v", err)
		}
	})
	return Env{Store: st, Advance: func(d time.Duration) { clock.Advance(d) }, Now: clock.Now}
}

// RedisEnv is a NewStore for sessions.RedisCounters on the test Redis (see
// RedisClient), under a key prefix of the test's own. Advance sleeps.
func RedisEnv(t *testing.T) Env {
	t.Helper()
	rdb, prefix := RedisClient(t)
	st, err := sessions.NewRedisCounters(rdb, sessions.WithCounterKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return Env{Store: st, Advance: time.Sleep, Now: time.Now}
}

// RedisClient is sessionstest.RedisClient for the counter store's tests.
func RedisClient(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	return sessionstest.RedisClient(tb, "counters")
}

// PrefixKeys lists the keys under prefix.
func PrefixKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]string, error) {
	return sessionstest.PrefixKeys(ctx, rdb, prefix)
}
