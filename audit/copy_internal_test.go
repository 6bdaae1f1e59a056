package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/portero/portero/storage/storagetest"
)

// copyInPgx is how the store wrote a batch until it encoded COPY itself:
// pgx.CopyFrom with a row of values per event. It stays as the reference
// the hand-written encoding must agree with, and as the benchmark's
// comparison.
func (s *pgStore) copyInPgx(ctx context.Context, table string, events []Event) error {
	ids := make([]pgtype.UUID, 2*len(events))
	row := make([]any, 9)
	cols := []string{"event_id", "user_id", "action", "resource", "resource_id", "ip_address", "user_agent", "details", "created_at"}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
		ev := &events[i]
		id, user := &ids[2*i], &ids[2*i+1]
		*id = pgtype.UUID{Bytes: ev.uid, Valid: true}
		*user = pgtype.UUID{Bytes: ev.userID, Valid: ev.UserID != ""}
		row[0], row[1], row[2] = id, user, &ev.Action
		row[3], row[4], row[5], row[6] = nullableRef(&ev.Resource), nullableRef(&ev.ResourceID), nullableRef(&ev.IP), nullableRef(&ev.UserAgent)
		row[7], row[8] = ev.details, &ev.CreatedAt
		return row, nil
	}))
	return err
}

// The binary COPY the store encodes stores exactly what pgx's encoding of
// the same events stored: every column, NULLs, text PostgreSQL must
// accept as UTF-8, jsonb, and times before 2000 (negative in the format),
// at microsecond edges and far off.
func TestCopyEncodingMatchesPgx(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := storagetest.NewPostgres(t)
	s := &pgStore{pool: db.Pool()}
	if _, err := db.Pool().Exec(ctx, `CREATE TABLE audit_logs_ref (LIKE audit_logs INCLUDING ALL)`); err != nil {
		t.Fatal(err)
	}
	times := []time.Time{
		time.Date(2026, 12, 7, 13, 31, 0, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 1, 1, 0, 0, 0, 1000, time.UTC),
		time.Date(1969, 7, 20, 20, 17, 40, 0, time.FixedZone("X", -5*3600)),
		time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), // the zero time is "no created_at"
		time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC),
	}
	var raw []Event
	for i, at := range times {
		raw = append(raw, Event{ID: uuid.NewString(), Action: ActionProxyAccess, CreatedAt: at})
		raw = append(raw, Event{
			ID: uuid.NewString(), UserID: uuid.NewString(), Action: "auth.login.failed",
			Resource: "route", ResourceID: strings.Repeat("r", i), IP: "2001:db8::1",
			UserAgent: "Mozilla/5.0 ñ \u2028 \"quoted\" \\ \xff\x00",
			Details:   map[string]any{"n": i, "s": "é\u0000", "nested": map[string]any{"a": []any{1.5, true, nil}}},
			CreatedAt: at,
		})
	}
	raw = append(raw,
		Event{ID: uuid.NewString(), Action: ActionProxyDenied, Details: map[string]any{}, CreatedAt: times[0]},
		Event{ID: uuid.NewString(), Action: ActionProxyAccess, CreatedAt: times[0],
			Access: &AccessDetails{Method: "GET", Path: "/a%20b", Route: "r", Mode: "gateway", Status: 200, DurationMs: 0.125, RequestID: "x"}},
	)
	events, err := checkInsert(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.copyIn(ctx, events); err != nil {
		t.Fatalf("binary COPY: %v", err)
	}
	if err := s.copyInPgx(ctx, "audit_logs_ref", events); err != nil {
		t.Fatalf("pgx COPY: %v", err)
	}
	const cols = `event_id, user_id, action, resource, resource_id, ip_address, user_agent, details, created_at`
	for _, q := range []string{
		`SELECT count(*) FROM (SELECT ` + cols + ` FROM audit_logs EXCEPT SELECT ` + cols + ` FROM audit_logs_ref) d`,
		`SELECT count(*) FROM (SELECT ` + cols + ` FROM audit_logs_ref EXCEPT SELECT ` + cols + ` FROM audit_logs) d`,
	} {
		var n int
		if err := db.Pool().QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d rows differ between the two encodings (%s)", n, q)
		}
	}
	var n int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_logs`).Scan(&n); err != nil || n != len(events) {
		t.Fatalf("stored %d rows (%v), want %d", n, err, len(events))
	}
}

// A time PostgreSQL cannot hold is refused by the server, as pgx's
// encoding was, and marked as the data's fault.
func TestCopyEncodingOutOfRange(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := &pgStore{pool: storagetest.NewPostgres(t).Pool()}
	err := s.Insert(ctx, []Event{{ID: uuid.NewString(), Action: ActionProxyAccess,
		CreatedAt: time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)}})
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("Insert of year 300000: %v, want PostgreSQL's out of range", err)
	}
}

// nullableRef is s, or NULL for an empty string, without a copy.
func nullableRef(s *string) any {
	if *s == "" {
		return nil
	}
	return s
}
