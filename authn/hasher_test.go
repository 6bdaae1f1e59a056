package authn

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestHasher(tb testing.TB, p Argon2Params, workers, queue int, maxWait time.Duration) *Hasher {
	tb.Helper()
	h, err := NewHasher(p, workers, queue, maxWait)
	if err != nil {
		tb.Fatalf("NewHasher: %v", err)
	}
	return h
}

// gate holds every run at the hook until released and records how many ran
// at once.
type gate struct {
	release chan struct{}
	started chan struct{} // one value per run that reached the hook
	cur     atomic.Int32
	peak    atomic.Int32
}

func newGate() *gate {
	return &gate{release: make(chan struct{}), started: make(chan struct{}, 1024)}
}

func (g *gate) hook(work func()) {
	n := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	g.started <- struct{}{}
	<-g.release
	work()
	g.cur.Add(-1)
}

func TestHasherRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newTestHasher(t, cheapParams(), 0, 0, 0)
	if got := h.Stats(); got.Workers != runtime.GOMAXPROCS(0) || got.Queue != 0 {
		t.Errorf("defaults: Stats() = %+v, want GOMAXPROCS workers, no queue", got)
	}
	if h.Params() != cheapParams() {
		t.Errorf("Params() = %+v", h.Params())
	}
	encoded, err := h.Hash(ctx, "Tq7!vZp2wK")
	if err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := h.Verify(ctx, "Tq7!vZp2wK", encoded); !ok || rehash || err != nil {
		t.Errorf("Verify(right) = %v, %v, %v", ok, rehash, err)
	}
	if ok, _, err := h.Verify(ctx, "wrong", encoded); ok || err != nil {
		t.Errorf("Verify(wrong) = %v, %v", ok, err)
	}
	if ok, rehash, err := h.Verify(ctx, "pw", mustBcrypt(t, "pw")); !ok || !rehash || err != nil {
		t.Errorf("Verify(bcrypt) = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	if _, _, err := h.Verify(ctx, "pw", "nonsense"); !errors.Is(err, ErrUnknownHashFormat) {
		t.Errorf("Verify(nonsense) err = %v, want ErrUnknownHashFormat", err)
	}
	if err := h.VerifyDummy(ctx, "pw"); err != nil {
		t.Errorf("VerifyDummy = %v", err)
	}
	if _, err := NewHasher(Argon2Params{}, 1, 1, time.Second); !errors.Is(err, ErrInvalidHashParams) {
		t.Errorf("NewHasher(zero params) = %v, want ErrInvalidHashParams", err)
	}
}

// A pool reuses its argon2 memory: logins do not each allocate m KiB (and
// leave it to the collector), and the answers stay right whatever an earlier
// hash left in that memory, including one made with costlier parameters.
func TestHasherReusesMemory(t *testing.T) {
	ctx := t.Context()
	p := Argon2Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h := newTestHasher(t, p, 1, 0, 0)
	costlier := p
	costlier.Memory, costlier.Time = 2048, 2
	older, err := costlier.Hash("older")
	if err != nil {
		t.Fatal(err)
	}
	current, err := h.Hash(ctx, "current")
	if err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		for _, c := range []struct {
			password, encoded string
			ok, rehash        bool
		}{{"current", current, true, false}, {"older", older, true, true}, {"older", current, false, false}, {"current", older, false, false}} {
			if ok, rehash, err := h.Verify(ctx, c.password, c.encoded); ok != c.ok || rehash != c.rehash || err != nil {
				t.Fatalf("Verify(%q) = %v, %v, %v; want %v, %v, nil", c.password, ok, rehash, err, c.ok, c.rehash)
			}
		}
	}
	check()
	if len(h.memory) != 1 {
		t.Fatalf("after hashes on one worker the pool keeps %d memories, want 1", len(h.memory))
	}
	mem := <-h.memory
	if mem.KiB() > int(p.Memory) {
		t.Errorf("after an old costlier hash the pool keeps %d KiB, want at most the current %d", mem.KiB(), p.Memory)
	}
	h.memory <- mem

	// 20 hashes of 1 MiB allocate 20 MiB without reuse.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 20 {
		if ok, _, err := h.Verify(ctx, "current", current); !ok || err != nil {
			t.Fatalf("Verify = %v, %v", ok, err)
		}
	}
	runtime.ReadMemStats(&after)
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 1<<20 {
		t.Errorf("20 verifications of 1 MiB allocated %d KiB; the pool's memory is not reused", allocated>>10)
	}
	check()
}

// An idle pool lets its argon2 memory go (19 MiB per core at the default
// cost), and a busy one keeps at most one per worker.
func TestHasherReleasesIdleMemory(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newTestHasher(t, cheapParams(), 2, 8, 0)
	h.memoryIdle = 200 * time.Millisecond
	encoded, err := h.Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if ok, _, err := h.Verify(ctx, "pw", encoded); !ok || err != nil {
				t.Errorf("Verify = %v, %v", ok, err)
			}
		})
	}
	wg.Wait()
	if n := len(h.memory); n < 1 || n > 2 {
		t.Errorf("after a burst on 2 workers the pool keeps %d memories, want 1 or 2", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(h.memory) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle for 5 s, the pool still keeps %d memories", len(h.memory))
		}
		time.Sleep(10 * time.Millisecond)
	}

	// What the timer runs wipes the memory it lets go. Run here, on this
	// goroutine, after a hash with the timer out of the way.
	h.memoryIdle = time.Hour
	if ok, _, err := h.Verify(ctx, "pw", encoded); !ok || err != nil {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	kept := <-h.memory
	if kept.Zeroed() {
		t.Fatal("the kept memory is all zeros right after hashing; nothing to wipe")
	}
	h.memory <- kept
	h.releaseMemory()
	if !kept.Zeroed() {
		t.Error("released memory still holds the last hash's blocks")
	}
}

// TestHasherFlood: 200 concurrent verifications against a pool of 2 workers
// and 4 waiting places. Workers are held at the hook until every caller has
// been answered, so exactly 6 get in, 194 get ErrHasherBusy at once, and
// never more than 2 run together.
func TestHasherFlood(t *testing.T) {
	t.Parallel()
	const (
		callers = 200
		workers = 2
		queue   = 4
	)
	h := newTestHasher(t, cheapParams(), workers, queue, time.Minute)
	g := newGate()
	h.runHook = g.hook
	encoded := mustHash(t, cheapParams(), "pw")

	var busy, verified atomic.Int32
	var others sync.Map
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			var err error
			switch i % 3 { // all three entry points share the pool
			case 0:
				var ok bool
				ok, _, err = h.Verify(t.Context(), "pw", encoded)
				if err == nil && !ok {
					others.Store(i, "wrong result")
				}
			case 1:
				err = h.VerifyDummy(t.Context(), "pw")
			case 2:
				_, err = h.Hash(t.Context(), "pw")
			}
			switch {
			case err == nil:
				verified.Add(1)
			case errors.Is(err, ErrHasherBusy):
				busy.Add(1)
			default:
				others.Store(i, err)
			}
		})
	}

	// Wait until every caller that will be refused has been refused; the 6
	// admitted ones are stuck at the gate or waiting for it.
	deadline := time.After(10 * time.Second)
	for busy.Load() < callers-workers-queue {
		select {
		case <-deadline:
			t.Fatalf("only %d of %d callers refused after 10s", busy.Load(), callers-workers-queue)
		case <-time.After(time.Millisecond):
		}
	}
	if s := h.Stats(); s.Running != workers || s.Waiting != queue {
		t.Errorf("Stats() under flood = %+v, want %d running, %d waiting", s, workers, queue)
	}
	close(g.release)
	wg.Wait()

	others.Range(func(k, v any) bool { t.Errorf("caller %v: %v", k, v); return true })
	if got := verified.Load(); got != workers+queue {
		t.Errorf("%d callers served, want %d", got, workers+queue)
	}
	if got := busy.Load(); got != callers-workers-queue {
		t.Errorf("%d callers got ErrHasherBusy, want %d", got, callers-workers-queue)
	}
	if got := g.peak.Load(); got != workers {
		t.Errorf("peak concurrent runs = %d, want %d", got, workers)
	}
	if s := h.Stats(); s.Running != 0 || s.Waiting != 0 {
		t.Errorf("Stats() after the flood = %+v, want idle", s)
	}
}

// TestHasherUnboundedFloodStaysBounded lets the pool work for real (no gate)
// while 200 callers arrive at once: however the arrivals interleave, never
// more than `workers` hashes run together and every caller is answered.
func TestHasherUnboundedFloodStaysBounded(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, cheapParams(), 2, 4, time.Second)
	var cur, peak atomic.Int32
	h.runHook = func(work func()) {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		work()
		cur.Add(-1)
	}
	encoded := mustHash(t, cheapParams(), "pw")
	var served, busy atomic.Int32
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			_, _, err := h.Verify(t.Context(), "pw", encoded)
			switch {
			case err == nil:
				served.Add(1)
			case errors.Is(err, ErrHasherBusy):
				busy.Add(1)
			default:
				t.Errorf("Verify: %v", err)
			}
		})
	}
	wg.Wait()
	if peak.Load() > 2 {
		t.Errorf("peak concurrent runs = %d, want <= 2", peak.Load())
	}
	// The first two arrivals find a free worker; how many more are served
	// depends on scheduling.
	if served.Load()+busy.Load() != 200 || served.Load() < 2 {
		t.Errorf("served %d, busy %d; want all 200 answered, at least 2 served", served.Load(), busy.Load())
	}
}

func TestHasherMaxWait(t *testing.T) {
	t.Parallel()
	const maxWait = 50 * time.Millisecond
	h := newTestHasher(t, cheapParams(), 1, 1, maxWait)
	g := newGate()
	h.runHook = g.hook
	t.Cleanup(func() { close(g.release) }) // hooked runs only ever wait; let the holder finish

	done := make(chan error, 1)
	go func() { done <- h.VerifyDummy(context.Background(), "pw") }()
	<-g.started // the only worker is now held

	start := time.Now()
	err := h.VerifyDummy(t.Context(), "pw")
	waited := time.Since(start)
	if !errors.Is(err, ErrHasherBusy) {
		t.Fatalf("queued VerifyDummy = %v, want ErrHasherBusy after maxWait", err)
	}
	if waited < maxWait || waited > maxWait+2*time.Second {
		t.Errorf("gave up after %v, want about %v", waited, maxWait)
	}
}

func TestHasherContextWhileQueued(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, cheapParams(), 1, 1, time.Minute)
	g := newGate()
	h.runHook = g.hook
	t.Cleanup(func() { close(g.release) })

	go func() { _ = h.VerifyDummy(context.Background(), "pw") }()
	<-g.started

	ctx, cancel := context.WithCancel(t.Context())
	result := make(chan error, 1)
	go func() { _, _, err := h.Verify(ctx, "pw", "$argon2id$whatever"); result <- err }()
	// Let it queue, then cancel: it must return at once, not after a minute.
	for h.Stats().Waiting != 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-result:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled while queued: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled caller still waiting after 5s")
	}
	// Its waiting place is free again.
	if s := h.Stats(); s.Waiting != 0 {
		t.Errorf("Stats() = %+v, want no waiter", s)
	}

	// An already-ended context never enters the pool.
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash(cancelled ctx) = %v, want context.Canceled", err)
	}
}

func TestHasherRefusesHugePasswordBeforeQueueing(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, cheapParams(), 1, 0, time.Second)
	h.runHook = func(func()) { t.Error("a too-long password reached a worker") }
	if _, err := h.Hash(t.Context(), string(make([]byte, MaxPasswordBytes+1))); !errors.Is(err, ErrPasswordTooLong) {
		t.Errorf("Hash(huge) = %v, want ErrPasswordTooLong", err)
	}
}

// TestVerifyDummyTiming: the unknown-user path must cost what a wrong
// password for a known user costs. Medians over interleaved runs keep the
// comparison robust; params are cheap but large enough that argon2
// dominates. The test is not parallel so this package's other tests do not
// skew it, and it takes the best of a few attempts because the machine may be
// shared: noise can push one attempt out of bounds, while a real difference
// (a dummy that skips the hash, or hashes twice) fails every attempt.
func TestVerifyDummyTiming(t *testing.T) {
	p := Argon2Params{Memory: 4096, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h := newTestHasher(t, p, 1, 0, time.Minute)
	encoded := mustHash(t, p, "the-right-one")
	ctx := t.Context()
	median := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }

	const attempts, runs = 5, 11
	var ratios []float64
	for range attempts {
		var real, dummy []time.Duration
		for range runs {
			start := time.Now()
			if _, _, err := h.Verify(ctx, "a-wrong-one", encoded); err != nil {
				t.Fatal(err)
			}
			real = append(real, time.Since(start))
			start = time.Now()
			if err := h.VerifyDummy(ctx, "a-wrong-one"); err != nil {
				t.Fatal(err)
			}
			dummy = append(dummy, time.Since(start))
		}
		r, d := median(real), median(dummy)
		ratio := float64(d) / float64(r)
		t.Logf("median verify %v, median dummy %v, ratio %.2f", r, d, ratio)
		if ratio >= 0.5 && ratio <= 2 {
			return
		}
		ratios = append(ratios, ratio)
	}
	t.Errorf("dummy/real median ratios %.2f, want one within 0.5x-2x", ratios)
}
