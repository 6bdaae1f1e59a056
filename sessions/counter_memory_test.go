package sessions_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/counterstest"
	"github.com/portero/portero/sessions/sessionstest"
)

func TestMemoryCountersContract(t *testing.T) {
	t.Parallel()
	counterstest.Run(t, counterstest.MemoryEnv)
}

func newMemoryCounters(t *testing.T, opts ...sessions.CounterOption) (*sessions.MemoryCounters, *sessionstest.FakeClock) {
	t.Helper()
	clock := start()
	m, err := sessions.NewMemoryCounters(append([]sessions.CounterOption{sessions.WithCounterClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m, clock
}

// TestMemoryCountersFull: a full store refuses new keys rather than evicting
// live counters or locks, and makes room once entries expire.
func TestMemoryCountersFull(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	m, clock := newMemoryCounters(t, sessions.WithMaxCounters(2))
	lim := sessions.Limit{Max: 1, Window: time.Minute, LockFor: 10 * time.Minute}
	if _, err := m.Reserve(ctx, "a", lim); err != nil {
		t.Fatal(err)
	}
	if _, locked, err := m.Fail(ctx, "a", lim); err != nil || !locked {
		t.Fatalf("Fail = %v, %v; want a lock", locked, err)
	}
	if _, err := m.Reserve(ctx, "b", lim); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reserve(ctx, "c", lim); !errors.Is(err, sessions.ErrCountersFull) {
		t.Fatalf("Reserve on a full store = %v, want ErrCountersFull", err)
	}
	// Existing keys keep working.
	if r, err := m.Reserve(ctx, "a", lim); err != nil || !r.Locked {
		t.Fatalf("Reserve of the locked key = %+v, %v", r, err)
	}
	// b's window ends; a's lock does not: c gets b's room, a stays locked.
	clock.Advance(2 * time.Minute)
	if r, err := m.Reserve(ctx, "c", lim); err != nil || !r.Allowed {
		t.Fatalf("Reserve after b expired = %+v, %v", r, err)
	}
	if r, err := m.Reserve(ctx, "d", lim); !errors.Is(err, sessions.ErrCountersFull) {
		t.Fatalf("Reserve of a fourth key = %+v, %v; want ErrCountersFull", r, err)
	}
	if r, err := m.Reserve(ctx, "a", lim); err != nil || !r.Locked {
		t.Fatalf("the lock was evicted: %+v, %v", r, err)
	}
}

// TestMemoryCountersSweeper: expired entries leave the map even if their
// keys are never used again.
func TestMemoryCountersSweeper(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	m, clock := newMemoryCounters(t, sessions.WithCounterSweepInterval(5*time.Millisecond))
	lim := sessions.Limit{Max: 1, Window: time.Minute, LockFor: 3 * time.Minute}
	for _, k := range []string{"a", "b", "c"} {
		if _, err := m.Reserve(ctx, k, lim); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := m.Fail(ctx, "a", lim); err != nil { // a: locked for 3m
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	waitLen(t, m, 1)
	clock.Advance(2 * time.Minute)
	waitLen(t, m, 0)
}

func waitLen(t *testing.T, m *sessions.MemoryCounters, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for m.Len() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Len = %d, want %d after sweeping", m.Len(), want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestMemoryCountersNoGarbage: ended attempts leave nothing behind.
func TestMemoryCountersNoGarbage(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	m, _ := newMemoryCounters(t)
	lim := sessions.Limit{Max: 3, Window: time.Minute, LockFor: time.Minute}
	for range 2 {
		if _, err := m.Reserve(ctx, "s", lim); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Succeed(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Reserve(ctx, "u", lim); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Fail(ctx, "u", lim); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Unlock(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if n := m.Len(); n != 0 {
		t.Fatalf("Len = %d after every attempt ended, want 0", n)
	}
}

func TestNewMemoryCountersOptions(t *testing.T) {
	t.Parallel()
	bad := map[string]sessions.CounterOption{
		"nil clock":      sessions.WithCounterClock(nil),
		"max 0":          sessions.WithMaxCounters(0),
		"sweep 0":        sessions.WithCounterSweepInterval(0),
		"brace prefix":   sessions.WithCounterKeyPrefix("a{"),
		"closing prefix": sessions.WithCounterKeyPrefix("}"),
	}
	for name, opt := range bad {
		if m, err := sessions.NewMemoryCounters(opt); err == nil {
			_ = m.Close(context.Background())
			t.Errorf("%s: NewMemoryCounters succeeded", name)
		}
	}
	m, err := sessions.NewMemoryCounters()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := m.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}
