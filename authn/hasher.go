package authn

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/portero/portero/authn/internal/argon2"
)

// DefaultHasherMaxWait is how long a request waits for a hashing worker when
// NewHasher is given maxWait <= 0: long enough to ride out a burst of logins,
// short enough that a flood turns into quick 503s rather than piled-up
// requests.
const DefaultHasherMaxWait = 2 * time.Second

// Hasher runs password hashing and verification in a bounded pool. argon2id
// with m=19 MiB costs that much memory and tens of milliseconds of CPU per
// call; without a bound, a flood of logins would exhaust memory long before
// it exhausted anything else. With a Hasher at most `workers` hashes run at
// once (so memory stays below workers × (the configured argon2 memory + the
// largest allowed, which only an old costlier stored hash uses)),
// at most `queue` more wait, and a wait longer than maxWait gives up. Either
// refusal is ErrHasherBusy, which the HTTP layer answers with 503 and
// Retry-After.
//
// The work runs on the caller's goroutine once it holds a worker slot; the
// pool has no goroutines of its own and nothing to close (its one timer
// fires once after the last hash). Waiters are served in arrival order
// (Go's channel send queue is FIFO).
type Hasher struct {
	params  Argon2Params
	dummy   string
	maxWait time.Duration

	// admit holds one token per request inside the pool, running or waiting:
	// capacity workers+queue. run holds one token per running hash: capacity
	// workers.
	admit chan struct{}
	run   chan struct{}

	// memory holds argon2 working memory between hashes, at most one per
	// worker, so a busy pool does not allocate, zero and collect m KiB per
	// login. When no hash has ended for memoryIdle, release lets it all go.
	memory     chan *argon2.Memory
	memoryIdle time.Duration
	release    *time.Timer

	// runHook, when set (tests only), is called with the work in place of
	// calling it directly, while the worker slot is held; it lets tests count
	// concurrent runs and hold workers busy.
	runHook func(work func())
}

// HasherStats is a snapshot for metrics.
type HasherStats struct {
	Workers int // size of the pool
	Queue   int // how many may wait
	Running int // hashes running now
	Waiting int // requests waiting for a worker now
}

// NewHasher returns a pool that hashes with params. workers <= 0 means
// GOMAXPROCS (argon2id with p=1 keeps one core busy, so more workers than
// cores only add memory); queue < 0 means 0; maxWait <= 0 means
// DefaultHasherMaxWait.
func NewHasher(params Argon2Params, workers, queue int, maxWait time.Duration) (*Hasher, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	queue = max(queue, 0)
	if maxWait <= 0 {
		maxWait = DefaultHasherMaxWait
	}
	h := &Hasher{
		params:     params,
		dummy:      params.DummyHash(),
		maxWait:    maxWait,
		admit:      make(chan struct{}, workers+queue),
		run:        make(chan struct{}, workers),
		memory:     make(chan *argon2.Memory, workers),
		memoryIdle: hasherMemoryIdle,
	}
	h.release = time.AfterFunc(time.Hour, h.releaseMemory)
	h.release.Stop()
	return h, nil
}

// hasherMemoryIdle is how long a pool keeps its argon2 memory after the last
// hash: through any burst of logins, not for good (19 MiB per core at the
// default cost).
const hasherMemoryIdle = 30 * time.Second

// releaseMemory lets the kept argon2 memory go, wiped first: what the last
// hashes left there would check password guesses cheaply for anyone who
// reads the process's memory. A hash running meanwhile puts its own back
// afterwards.
func (h *Hasher) releaseMemory() {
	for {
		select {
		case mem := <-h.memory:
			mem.Wipe()
		default:
			return
		}
	}
}

// Params are the parameters new hashes are made with and against which
// Verify decides needsRehash.
func (h *Hasher) Params() Argon2Params { return h.params }

// Stats reports the pool's size and load. Running and Waiting are read
// without locking and may be momentarily inconsistent with each other.
func (h *Hasher) Stats() HasherStats {
	running, admitted := len(h.run), len(h.admit)
	return HasherStats{
		Workers: cap(h.run),
		Queue:   cap(h.admit) - cap(h.run),
		Running: running,
		Waiting: max(admitted-running, 0),
	}
}

// Hash makes a new argon2id hash of password (see Argon2Params.Hash).
// It returns ErrHasherBusy when the pool is saturated and the context's
// error when ctx ends while waiting.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if len(password) > MaxPasswordBytes {
		return "", ErrPasswordTooLong // before queueing: costs nothing
	}
	var encoded string
	var err error
	if perr := h.do(ctx, func(mem *argon2.Memory) { encoded, err = h.params.hash(mem, password) }); perr != nil {
		return "", perr
	}
	return encoded, err
}

// Verify checks password against encoded (see Argon2Params.Verify) and
// reports needsRehash against the pool's parameters. Pool errors are
// ErrHasherBusy and the context's error; they mean "not checked", never
// "wrong password".
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	if perr := h.do(ctx, func(mem *argon2.Memory) { ok, needsRehash, err = h.params.verify(mem, password, encoded) }); perr != nil {
		return false, false, perr
	}
	return ok, needsRehash, err
}

// VerifyDummy verifies password against a hash no password matches, made
// with the pool's parameters, through the same pool: an unknown user costs
// the same time as a known one, and is refused with ErrHasherBusy under the
// same load, so neither the latency nor the 503 tells them apart.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	return h.do(ctx, func(mem *argon2.Memory) { _, _, _ = h.params.verify(mem, password, h.dummy) })
}

// do runs work once it holds a worker slot, or says why it could not.
func (h *Hasher) do(ctx context.Context, work func(mem *argon2.Memory)) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("authn: before hashing: %w", err)
	}
	select {
	case h.admit <- struct{}{}:
	default:
		return fmt.Errorf("%w: %d running, %d waiting", ErrHasherBusy, cap(h.run), cap(h.admit)-cap(h.run))
	}
	defer func() { <-h.admit }()

	select {
	case h.run <- struct{}{}:
		// A worker was free; no timer needed.
	default:
		timer := time.NewTimer(h.maxWait)
		defer timer.Stop()
		select {
		case h.run <- struct{}{}:
		case <-timer.C:
			return fmt.Errorf("%w: no worker within %v", ErrHasherBusy, h.maxWait)
		case <-ctx.Done():
			return fmt.Errorf("authn: waiting for a hashing worker: %w", ctx.Err())
		}
	}
	defer func() { <-h.run }()

	// Once started, a hash runs to the end even if ctx ends: argon2 cannot
	// be interrupted, and the slot stays taken either way.
	var mem *argon2.Memory
	select {
	case mem = <-h.memory:
	default:
		mem = new(argon2.Memory)
	}
	defer func() {
		select {
		case h.memory <- mem:
		default:
		}
		h.release.Reset(h.memoryIdle)
	}()
	if h.runHook != nil {
		h.runHook(func() { work(mem) })
	} else {
		work(mem)
	}
	return nil
}
