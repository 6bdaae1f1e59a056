package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/storage/storagetest"
)

// accessEvent is a typical proxy.access event (issue 5, point 2).
func accessEvent() audit.Event {
	return audit.Event{
		Action:     audit.ActionProxyAccess,
		UserID:     "0b8f7a4e-0f43-4c8c-9c5e-333333333333",
		Resource:   "GET",
		ResourceID: "/api/samples/42",
		IP:         "203.0.113.7",
		UserAgent:  "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		Details: map[string]any{
			"method": "GET", "path": "/api/samples/42", "status": 200, "duration_ms": 1.7,
			"request_id": "01J9Z3K6T7Q2V8W4X5Y6Z7A8B9", "route": "/api/samples", "mode": "gateway",
		},
	}
}

// BenchmarkWriterEnqueuePostgres measures sustained Enqueue throughput into
// PostgreSQL with the default batching: ns/op is the producer's cost once
// the bounded queue applies backpressure; events/s counts until the last
// event is committed (Close included).
func BenchmarkWriterEnqueuePostgres(b *testing.B) {
	db := storagetest.NewPostgres(b)
	w, err := audit.NewWriter(audit.NewStore(db), audit.WriterConfig{SpoolDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ev := accessEvent()
	n := 0
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Enqueue(ev); err != nil {
			b.Fatal(err)
		}
		n++
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
	if st := w.Stats(); st.Written != uint64(n) || st.Spooled != 0 {
		b.Fatalf("Stats = %+v after %d events", st, n)
	}
}

// BenchmarkWriterRecordPostgres measures Record's latency: one event
// committed per call (what a login waits for).
func BenchmarkWriterRecordPostgres(b *testing.B) {
	db := storagetest.NewPostgres(b)
	w, err := audit.NewWriter(audit.NewStore(db), audit.WriterConfig{SpoolDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ev := accessEvent()
	ev.Action = audit.ActionLoginSucceeded
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Record(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
}
