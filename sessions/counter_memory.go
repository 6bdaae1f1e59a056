package sessions

import (
	"context"
	"sync"
	"time"
)

// counterEntry is one key of MemoryCounters: a counter (alive while now is
// before windowEnd) and a lock (in force while now is before lockEnd), in
// Unix milliseconds like the Redis TTLs. Zero means absent.
type counterEntry struct {
	failures, inFlight int32
	windowEnd, lockEnd int64
}

// expire drops the parts of e that are over at nowMs and reports whether
// anything is left.
func (e *counterEntry) expire(nowMs int64) bool {
	if e.windowEnd != 0 && nowMs >= e.windowEnd {
		e.failures, e.inFlight, e.windowEnd = 0, 0, 0
	}
	if e.lockEnd != 0 && nowMs >= e.lockEnd {
		e.lockEnd = 0
	}
	return e.windowEnd != 0 || e.lockEnd != 0
}

// MemoryCounters keeps counters in process: the embedded single-machine
// default. It follows the CounterStore contract exactly like RedisCounters
// (same contract suite) but is not shared between instances. Memory is
// bounded by WithMaxCounters; a background sweeper, started by
// NewMemoryCounters and stopped by Close, drops expired entries.
type MemoryCounters struct {
	st counterSettings

	mu           sync.Mutex
	m            map[string]*counterEntry
	lastInlineMs int64 // clock of the last sweep done because the map was full

	sweeper *sweeper
}

var _ CounterStore = (*MemoryCounters)(nil)

// NewMemoryCounters returns an empty store and starts its sweeper; call
// Close to stop it. Options: WithCounterClock, WithMaxCounters,
// WithCounterSweepInterval.
func NewMemoryCounters(opts ...CounterOption) (*MemoryCounters, error) {
	st, err := newCounterSettings(opts)
	if err != nil {
		return nil, err
	}
	m := &MemoryCounters{
		st: st,
		m:  make(map[string]*counterEntry),
	}
	m.sweeper = startSweeper(m.st.sweepInterval, func() {
		m.mu.Lock()
		m.sweepLocked(ms(m.st.now()))
		m.mu.Unlock()
	})
	return m, nil
}

func (m *MemoryCounters) sweepLocked(nowMs int64) {
	for k, e := range m.m {
		if !e.expire(nowMs) {
			delete(m.m, k)
		}
	}
}

// entryLocked returns key's live entry, or nil, dropping it if it has
// expired. m.mu must be held.
func (m *MemoryCounters) entryLocked(key string, nowMs int64) *counterEntry {
	e := m.m[key]
	if e != nil && !e.expire(nowMs) {
		delete(m.m, key)
		return nil
	}
	return e
}

// newEntryLocked adds an empty entry for key, or fails with ErrCountersFull.
// m.mu must be held.
func (m *MemoryCounters) newEntryLocked(nowMs int64, key string) (*counterEntry, error) {
	if len(m.m) >= m.st.maxCounters {
		// A flood of new keys against a full store must not turn into a full
		// scan (under the lock every login needs) per request.
		if nowMs-m.lastInlineMs >= inlineSweepEvery.Milliseconds() || nowMs < m.lastInlineMs {
			m.lastInlineMs = nowMs
			m.sweepLocked(nowMs)
		}
		if len(m.m) >= m.st.maxCounters {
			return nil, ErrCountersFull
		}
	}
	e := &counterEntry{}
	m.m[key] = e
	return e, nil
}

// dropIfEmptyLocked removes an entry with nothing left to remember.
func (m *MemoryCounters) dropIfEmptyLocked(key string, e *counterEntry) {
	if e.failures == 0 && e.inFlight == 0 && e.lockEnd == 0 {
		delete(m.m, key)
	}
}

// Reserve implements CounterStore.
func (m *MemoryCounters) Reserve(ctx context.Context, key string, lim Limit) (Reservation, error) {
	if err := checkCall(key, lim); err != nil {
		return Reservation{}, err
	}
	if err := ctx.Err(); err != nil {
		return Reservation{}, err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entryLocked(key, nowMs)
	if e != nil && e.lockEnd != 0 {
		return Reservation{Locked: true, RetryAfter: atLeastMs(e.lockEnd - nowMs)}, nil
	}
	if e != nil && int(e.failures)+int(e.inFlight) >= lim.Max {
		return Reservation{RetryAfter: atLeastMs(e.windowEnd - nowMs), N: int(e.failures + e.inFlight)}, nil
	}
	if e == nil {
		var err error
		if e, err = m.newEntryLocked(nowMs, key); err != nil {
			return Reservation{}, err
		}
	}
	if e.windowEnd == 0 {
		e.windowEnd = nowMs + lim.Window.Milliseconds()
	}
	e.inFlight++
	return Reservation{Allowed: true, N: int(e.failures + e.inFlight)}, nil
}

// Fail implements CounterStore.
func (m *MemoryCounters) Fail(ctx context.Context, key string, lim Limit) (int, bool, error) {
	if err := checkCall(key, lim); err != nil {
		return 0, false, err
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entryLocked(key, nowMs)
	if e != nil && e.lockEnd != 0 {
		return 0, false, nil // attempts during a lock never count or extend it
	}
	if e == nil {
		// The counter ended (window over, or reset by a success) while this
		// attempt was in flight: the failure starts a new window.
		var err error
		if e, err = m.newEntryLocked(nowMs, key); err != nil {
			return 0, false, err
		}
	}
	if e.windowEnd == 0 {
		e.windowEnd = nowMs + lim.Window.Milliseconds()
	}
	if e.inFlight > 0 {
		e.inFlight--
	}
	e.failures++
	failures := int(e.failures)
	if lim.LockFor > 0 && failures >= lim.Max {
		*e = counterEntry{lockEnd: nowMs + lim.LockFor.Milliseconds()}
		return failures, true, nil
	}
	return failures, false, nil
}

// Succeed implements CounterStore.
func (m *MemoryCounters) Succeed(ctx context.Context, key string) (time.Duration, error) {
	if err := checkCounterKey(key); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entryLocked(key, nowMs)
	if e == nil {
		return 0, nil
	}
	if e.lockEnd != 0 {
		return atLeastMs(e.lockEnd - nowMs), nil
	}
	e.failures = 0
	if e.inFlight > 0 {
		e.inFlight--
	}
	m.dropIfEmptyLocked(key, e)
	return 0, nil
}

// Release implements CounterStore.
func (m *MemoryCounters) Release(ctx context.Context, key string) error {
	if err := checkCounterKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entryLocked(key, nowMs); e != nil && e.inFlight > 0 {
		e.inFlight--
		m.dropIfEmptyLocked(key, e)
	}
	return nil
}

// Unlock implements CounterStore.
func (m *MemoryCounters) Unlock(ctx context.Context, key string) (bool, error) {
	if err := checkCounterKey(key); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entryLocked(key, nowMs)
	delete(m.m, key)
	return e != nil && e.lockEnd != 0, nil
}

// Status implements CounterStore.
func (m *MemoryCounters) Status(ctx context.Context, key string) (CounterStatus, error) {
	if err := checkCounterKey(key); err != nil {
		return CounterStatus{}, err
	}
	if err := ctx.Err(); err != nil {
		return CounterStatus{}, err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entryLocked(key, nowMs)
	if e == nil {
		return CounterStatus{}, nil
	}
	st := CounterStatus{Failures: int(e.failures), InFlight: int(e.inFlight)}
	if e.windowEnd != 0 {
		st.WindowLeft = atLeastMs(e.windowEnd - nowMs)
	}
	if e.lockEnd != 0 {
		st.LockedFor = atLeastMs(e.lockEnd - nowMs)
	}
	return st, nil
}

// Ping implements CounterStore; an in-process store is always reachable.
func (m *MemoryCounters) Ping(ctx context.Context) error { return ctx.Err() }

// Len returns how many keys the store holds, expired ones not yet swept
// included (a gauge for metrics, and what WithMaxCounters bounds).
func (m *MemoryCounters) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// Close stops the sweeper and waits for it, or for ctx. The store keeps
// answering afterwards (nothing sweeps it any more). Close is idempotent.
func (m *MemoryCounters) Close(ctx context.Context) error {
	return m.sweeper.close(ctx)
}
