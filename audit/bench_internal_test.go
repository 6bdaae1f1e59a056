package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/portero/portero/storage/storagetest"
)

// insertCopy is the alternative to pgInsertSQL the store was measured
// against: COPY into a temporary table, then one INSERT … SELECT … ON
// CONFLICT. Kept in a test file to rerun the comparison.
func (s *pgStore) insertCopy(ctx context.Context, events []Event) error {
	events, err := checkInsert(events)
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS audit_logs_in (
    n int, event_id uuid, user_id uuid, action text, resource text, resource_id text,
    ip_address text, user_agent text, details jsonb, created_at timestamptz) ON COMMIT DELETE ROWS`); err != nil {
		return err
	}
	rows := make([][]any, len(events))
	for i := range events {
		ev := &events[i]
		var user any
		if ev.UserID != "" {
			user = uuid.MustParse(ev.UserID)
		}
		rows[i] = []any{i, uuid.MustParse(ev.ID), user, ev.Action, strPtr(ev.Resource), strPtr(ev.ResourceID),
			strPtr(ev.IP), strPtr(ev.UserAgent), ev.details, ev.CreatedAt}
	}
	cols := []string{"n", "event_id", "user_id", "action", "resource", "resource_id", "ip_address", "user_agent", "details", "created_at"}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_logs_in"}, cols, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit_logs
    (event_id, user_id, action, resource, resource_id, ip_address, user_agent, details, created_at)
SELECT event_id, user_id, action, resource, resource_id, ip_address, user_agent, details, created_at
FROM audit_logs_in ORDER BY n
ON CONFLICT (event_id) DO NOTHING`); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// checked is insert behind Insert's own checks.
func checked(insert func(context.Context, []Event) error) func(context.Context, []Event) error {
	return func(ctx context.Context, events []Event) error {
		events, err := checkInsert(events)
		if err != nil {
			return err
		}
		return insert(ctx, events)
	}
}

// BenchmarkPostgresInsert compares the ways of writing a batch: COPY
// straight into audit_logs (what pgStore.Insert does first; copy-pgx is
// the same COPY encoded by pgx.CopyFrom, as it was until 2026-12-07), the unnest
// statement that skips stored events (its fallback), and COPY into a
// temporary table followed by INSERT … ON CONFLICT. Reported per event.
func BenchmarkPostgresInsert(b *testing.B) {
	db := storagetest.NewPostgres(b)
	s := &pgStore{pool: db.Pool()}
	ctx := context.Background()
	for _, size := range []int{1, 32, 256, 1024} {
		for _, m := range []struct {
			name   string
			insert func(context.Context, []Event) error
		}{
			{"copy", s.Insert},
			{"copy-pgx", checked(func(ctx context.Context, events []Event) error {
				return s.copyInPgx(ctx, "audit_logs", events)
			})},
			{"unnest", checked(s.insertSkippingStored)},
			{"copy-temp", s.insertCopy},
		} {
			b.Run(fmt.Sprintf("%s/batch=%d", m.name, size), func(b *testing.B) {
				batch := make([]Event, size)
				b.ReportAllocs()
				n := 0
				start := time.Now()
				for b.Loop() {
					for i := range batch {
						ev, err := prepare(Event{
							Action: ActionProxyAccess, UserID: "0b8f7a4e-0f43-4c8c-9c5e-333333333333",
							IP: "203.0.113.7", UserAgent: "Mozilla/5.0", Resource: "GET", ResourceID: "/api/x",
							Details: map[string]any{"status": 200, "duration_ms": 1.7},
						}, time.Now)
						if err != nil {
							b.Fatal(err)
						}
						batch[i] = ev
					}
					if err := m.insert(ctx, batch); err != nil {
						b.Fatal(err)
					}
					n += size
				}
				b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}
