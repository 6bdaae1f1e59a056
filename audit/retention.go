package audit

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// Pruner deletes old events; a Store is one.
type Pruner interface {
	Prune(ctx context.Context, before time.Time, batch int) (int, error)
}

// Retention deletes events older than MaxAge in the background (issue 5,
// audit.retention). Every instance of a fleet may run it: concurrent prunes
// of the same rows only wait on each other's row locks, and each batch is
// its own short transaction.
type Retention struct {
	// MaxAge is how long events are kept (e.g. 365 days). Required.
	MaxAge time.Duration
	// Every is the time between prunes (default 1h).
	Every time.Duration
	// Batch is the most rows deleted per transaction (default 1000).
	Batch int
	// Now is the clock the cut-off is taken from (default time.Now).
	Now func() time.Time
	// Logger (default: none).
	Logger *zap.Logger
}

// Run prunes at once and then every r.Every until ctx ends, and returns
// ctx's error. A failed prune is logged and retried at the next tick.
func (r Retention) Run(ctx context.Context, p Pruner) error {
	if r.MaxAge <= 0 {
		return errors.New("audit: Retention.MaxAge must be positive")
	}
	if r.Every <= 0 {
		r.Every = time.Hour
	}
	if r.Batch <= 0 {
		r.Batch = defaultPruneBatch
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	log := r.Logger
	if log == nil {
		log = zap.NewNop()
	}
	tick := time.NewTicker(r.Every)
	defer tick.Stop()
	for {
		before := r.Now().Add(-r.MaxAge)
		n, err := p.Prune(ctx, before, r.Batch)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			log.Warn("audit: retention prune failed", zap.Time("before", before), zap.Int("deleted", n), zap.Error(err))
		case n > 0:
			log.Info("audit: retention pruned events", zap.Time("before", before), zap.Int("deleted", n))
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
