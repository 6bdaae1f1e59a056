package sessions

import (
	"context"
	"sync"
	"time"
)

// sweeper runs a store's sweep every interval until it is closed. The
// ticker runs on real time; what has expired is decided by the store's clock.
type sweeper struct {
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func startSweeper(interval time.Duration, sweep func()) *sweeper {
	s := &sweeper{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				sweep()
			}
		}
	}()
	return s
}

// close stops the sweeper and waits for it, or for ctx; it may be called twice.
func (s *sweeper) close(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.stop) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
