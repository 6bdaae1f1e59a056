package authn

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Sizes of the queue of work done off the request: sending mail and the
// look-ups of forgot-password and request-verify-token, which must not
// take a different time for an e-mail that exists than for one that does
// not. Two workers keep a slow mail server from holding many goroutines; a
// full queue drops work (logged and counted) instead of slowing answers.
const (
	backgroundWorkers = 2
	backgroundQueue   = 256
	backgroundTimeout = time.Minute
)

// background runs jobs on a few goroutines, each under its own timeout and
// detached from the request that queued it. The workers start with the
// first job, so a Service that never queues one starts none; close drains
// the queue.
type background struct {
	log     *zap.Logger
	start   sync.Once
	mu      sync.RWMutex // guards closed against a send on a closed channel
	closed  bool
	jobs    chan func(context.Context)
	workers sync.WaitGroup
}

func newBackground(log *zap.Logger) *background {
	return &background{log: log, jobs: make(chan func(context.Context), backgroundQueue)}
}

// submit queues fn; false when the queue is full or closed.
func (b *background) submit(fn func(context.Context)) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return false
	}
	b.start.Do(func() {
		for range backgroundWorkers {
			b.workers.Add(1)
			go b.work()
		}
	})
	select {
	case b.jobs <- fn:
		return true
	default:
		return false
	}
}

func (b *background) work() {
	defer b.workers.Done()
	for fn := range b.jobs {
		b.run(fn)
	}
}

func (b *background) run(fn func(context.Context)) {
	ctx, cancel := context.WithTimeout(context.Background(), backgroundTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("background job panicked", zap.Any("panic", r))
		}
	}()
	fn(ctx)
}

// close stops taking jobs and waits for the queued ones until ctx ends.
func (b *background) close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.jobs)
	}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.workers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
