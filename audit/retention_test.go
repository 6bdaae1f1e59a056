package audit_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/audit/audittest"
	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

type prunerFunc func(ctx context.Context, before time.Time, batch int) (int, error)

func (f prunerFunc) Prune(ctx context.Context, before time.Time, batch int) (int, error) {
	return f(ctx, before, batch)
}

func TestRetentionRun(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	var (
		mu    sync.Mutex
		calls []time.Time
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := prunerFunc(func(_ context.Context, before time.Time, batch int) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if batch != 50 {
			t.Errorf("batch = %d, want 50", batch)
		}
		calls = append(calls, before)
		if len(calls) == 1 {
			return 0, errors.New("database away") // logged, retried next tick
		}
		if len(calls) == 3 {
			cancel()
		}
		return 1, nil
	})
	r := audit.Retention{MaxAge: 24 * time.Hour, Every: time.Millisecond, Batch: 50, Now: func() time.Time { return now }}
	if err := r.Run(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 3 {
		t.Fatalf("%d prunes, want 3", len(calls))
	}
	for _, b := range calls {
		if !b.Equal(now.Add(-24 * time.Hour)) {
			t.Errorf("pruned before %v, want %v", b, now.Add(-24*time.Hour))
		}
	}
	if err := (audit.Retention{}).Run(ctx, p); err == nil {
		t.Error("Run without MaxAge succeeded")
	}
}

// TestRetentionPrunes runs Retention against the real stores.
func TestRetentionPrunes(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := testCtx(t)
		store := audit.NewStore(db)
		old, recent := audittest.Ev(0, "old"), audittest.Ev(0, "recent")
		recent.CreatedAt = old.CreatedAt.Add(48 * time.Hour)
		if err := store.Insert(ctx, []audit.Event{old, recent}); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		once := prunerFunc(func(ctx context.Context, before time.Time, batch int) (int, error) {
			defer cancel() // one prune, then stop
			return store.Prune(ctx, before, batch)
		})
		r := audit.Retention{MaxAge: 24 * time.Hour, Every: time.Hour, Now: func() time.Time { return recent.CreatedAt }}
		if err := r.Run(rctx, once); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v", err)
		}
		got, _, err := store.Query(ctx, audit.Filter{})
		if err != nil || len(got) != 1 || got[0].ID != recent.ID {
			t.Fatalf("after retention: %v, %v", got, err)
		}
	})
}
