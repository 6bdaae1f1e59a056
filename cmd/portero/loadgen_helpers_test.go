package main

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// These keep the load harness's helpers honest in the plain test run; the
// harness itself (loadharness_test.go) runs only with -tags loadharness.

func TestLoadGenPercentile(t *testing.T) {
	t.Parallel()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var lat []time.Duration
	for i := 1; i <= 1000; i++ {
		lat = append(lat, ms(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, ms(500)}, {0.99, ms(990)}, {0.999, ms(999)}, {1, ms(1000)}, {0, ms(1)}} {
		if got := percentile(lat, tc.q); got != tc.want {
			t.Errorf("percentile(1..1000 ms, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := percentile([]time.Duration{ms(7)}, 0.999); got != ms(7) {
		t.Errorf("one sample: %v", got)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("no samples: %v", got)
	}
	// summarize sorts before it reads the percentiles.
	r := summarize([]time.Duration{ms(3), ms(1), ms(2)}, 1, time.Second, "x")
	if r.p50 != ms(2) || r.p99 != ms(3) || r.rps != 3 || r.errors != 1 {
		t.Errorf("summarize: %+v", r)
	}
}

func TestLoadGenMedian(t *testing.T) {
	t.Parallel()
	xs := []float64{5, 1, 3}
	if got := median(xs); got != 3 {
		t.Errorf("median odd = %v", got)
	}
	if xs[0] != 5 {
		t.Error("median changed its input")
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
	if got := median[float64](nil); got != 0 {
		t.Errorf("median none = %v", got)
	}
	m := medianRun([]loadRun{{rps: 100, p99: 9, errors: 1}, {rps: 300, p99: 1}, {rps: 200, p99: 5, errors: 2}})
	if m.rps != 200 || m.p99 != 5 || m.errors != 3 {
		t.Errorf("medianRun: %+v", m)
	}
}

func TestLoadGenTable(t *testing.T) {
	t.Parallel()
	rows := []tableRow{
		{name: "bare proxy", conns: 50, rps: 12345.6, p50: 1500 * time.Microsecond, p99: 4 * time.Millisecond, p999: 9 * time.Millisecond, rssMiB: 12.25, ratio: 1,
			cpu: 61400 * time.Nanosecond, upstreamCPU: 38 * time.Microsecond, machineCPU: 151 * time.Microsecond, postgresCPU: 17 * time.Microsecond, perRound: []float64{1.1, 0.9, 1.0}},
		{name: "raw argon2id", rps: 59, errors: -1},
	}
	text := formatText(rows)
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("text table:\n%s", text)
	}
	for _, l := range lines[1:] {
		if utf8.RuneCountInString(l) != utf8.RuneCountInString(lines[0]) {
			t.Errorf("columns not aligned:\n%s", text)
		}
	}
	for _, want := range []string{"12346", "1.50 ms", "9.00 ms", "12.2", "  61", "  38", "  151", "  17", "1.00×", "0.90–1.10"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("bare row lacks %q: %s", want, lines[1])
		}
	}
	if strings.Count(lines[2], "—") != 13 {
		t.Errorf("unmeasured cells should be dashes: %s", lines[2])
	}
	md := formatMarkdown(rows)
	if !strings.HasPrefix(md, "| row | conns | req/s |") || !strings.Contains(md, "| raw argon2id | — | 59 | — |") {
		t.Errorf("markdown table:\n%s", md)
	}
}

func TestLoadGenDrive(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	r := driveLoad(2, 200*time.Millisecond, http.StatusOK, func(ctx context.Context, _ int) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		return req
	})
	if r.requests == 0 || r.errors == 0 || r.firstErr != "status 418" || r.rps <= 0 || r.p50 <= 0 || r.p999 < r.p50 {
		t.Errorf("driveLoad: %+v", r)
	}
}

// Slices of load alternate between servers on the same connections: a
// slice that ends cancels nothing, so no connection is torn down and
// dialled again by the next.
func TestLoadGenDriveKeepsConnections(t *testing.T) {
	t.Parallel()
	var dialled, aborted atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		if r.Context().Err() != nil {
			aborted.Add(1)
		}
		_, _ = w.Write([]byte("ok"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dialled.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	clients := newLoadClients(3)
	defer clients.close()
	get := func(ctx context.Context, _ int) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		return req
	}
	var total loadSample
	for range 3 {
		s := clients.drive(50*time.Millisecond, http.StatusOK, get)
		if s.elapsed < 50*time.Millisecond || s.errs != 0 || len(s.lat) == 0 {
			t.Fatalf("slice: %d answers, %d errors (%s) in %v", len(s.lat), s.errs, s.firstErr, s.elapsed)
		}
		total.add(s)
	}
	if n := dialled.Load(); n != 3 {
		t.Errorf("3 clients over 3 slices dialled %d connections, want 3", n)
	}
	if n := aborted.Load(); n != 0 {
		t.Errorf("%d requests were cancelled at a slice's end", n)
	}
	if r := total.run(); r.requests != len(total.lat) || r.elapsed < 150*time.Millisecond {
		t.Errorf("three slices summed: %+v", r)
	}
}

// A row's ratio is the median of its rounds' paired ratios, not the ratio
// of medians taken apart: a round where the machine ran fast for both
// sides must not pair the row's median with another round's twin.
func TestLoadGenPairedRatio(t *testing.T) {
	t.Parallel()
	rows := []loadRun{{rps: 80}, {rps: 170}, {rps: 90}}
	twins := []loadRun{{rps: 100}, {rps: 200}, {rps: 95}}
	r := tableRow{ratio: medianRun(rows).rps / medianRun(twins).rps} // 90/100
	r.paired(pairRatios(rows, twins))
	if want := 0.85; math.Abs(r.ratio-want) > 1e-9 {
		t.Errorf("ratio %.3f, want the median of 0.80, 0.85, 0.95 = %.2f", r.ratio, want)
	}
	if len(r.perRound) != 3 || slices.Min(r.perRound) != 0.8 {
		t.Errorf("per round %v", r.perRound)
	}
}

func TestStatCPU(t *testing.T) {
	t.Parallel()
	// pid (comm) state ppid … utime stime cutime cstime …: 3+5+7+11 ticks.
	stat := "42 (postgres: a) b) S 1 42 42 0 -1 4194560 100 0 0 0 3 5 7 11 20 0 1 0 100 200 300"
	if got, want := statCPU(stat, false), 80*time.Millisecond; got != want {
		t.Errorf("own = %v, want %v", got, want)
	}
	if got, want := statCPU(stat, true), 260*time.Millisecond; got != want {
		t.Errorf("with children = %v, want %v", got, want)
	}
	if got := statCPU("42 (truncated", true); got != 0 {
		t.Errorf("malformed = %v, want 0", got)
	}
}
