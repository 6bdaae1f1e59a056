package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// loadResult is one timed load run against a URL.
type loadResult struct {
	requests int
	errors   int
	rps      float64
	p50, p99 time.Duration
}

// runLoad drives `clients` keep-alive clients at target for d and measures
// throughput and latency percentiles.
func runLoad(tb testing.TB, target string, clients int, d time.Duration) loadResult {
	tb.Helper()
	return runLoadWith(tb, clients, d, func(ctx context.Context) *http.Request {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		return req
	})
}

// benchUpstream answers a small JSON body, like a typical legacy API call.
func benchUpstream() *httptest.Server {
	body := []byte(`{"id":1,"name":"sample","status":"ok","items":[1,2,3]}`)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
}

// bareProxy is the ceiling: httputil.ReverseProxy with a tuned transport.
func bareProxy(upstream string) *httptest.Server {
	u, _ := url.Parse(upstream)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second},
	}
	return httptest.NewServer(rp)
}

// benchLogger encodes access-log lines as in production, then drops them.
func benchLogger() *zap.Logger {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zap.InfoLevel))
}

// BenchmarkLoadLegacyVsBare compares, in one run, Portero in legacy mode
// with a bare ReverseProxy at 10 concurrent clients. Rounds alternate so
// machine noise hits both alike. Run with -benchtime=1x (make bench does).
func BenchmarkLoadLegacyVsBare(b *testing.B) {
	b.ReportAllocs()
	up := benchUpstream()
	defer up.Close()
	bare := bareProxy(up.URL)
	defer bare.Close()
	gw := newBenchGateway(b, up.URL)

	const clients, rounds = 10, 3
	per := 2 * time.Second
	if testing.Short() {
		per = 300 * time.Millisecond
	}
	var bareRes, gwRes []loadResult
	for b.Loop() {
		bareRes, gwRes = nil, nil
		runLoad(b, bare.URL+"/warm", clients, per/4)
		runLoad(b, gw.URL+"/warm", clients, per/4)
		for range rounds {
			bareRes = append(bareRes, runLoad(b, bare.URL+"/api/samples/1", clients, per))
			gwRes = append(gwRes, runLoad(b, gw.URL+"/api/samples/1", clients, per))
		}
	}
	reportComparison(b, "legacy", bareRes, gwRes)
}

func newBenchGateway(b *testing.B, upstream string) *httptest.Server {
	u, _ := url.Parse(upstream)
	log := benchLogger()
	strip := NewHeaderStripper("X-Auth-User-Id", "X-Auth-User-Email", "X-Auth-User-Roles", "X-Auth-Legacy-User-Id", "X-Auth-Assertion")
	fwd, err := NewForwarder(ForwarderOptions{Upstream: u, DialTimeout: time.Second, ResponseTimeout: 10 * time.Second, IdleConnTimeout: time.Minute}, strip, log, ErrorResponder(log))
	if err != nil {
		b.Fatal(err)
	}
	front := NewFront(FrontOptions{Health: NewHealth(time.Second), Forward: fwd, IPs: NewIPResolver(nil), Log: log, OwnPrefixes: []string{"/auth", "/users"}})
	srv := httptest.NewServer(front)
	b.Cleanup(srv.Close)
	return srv
}

// reportComparison reports the median round of each side and their ratio.
func reportComparison(b *testing.B, name string, bare, other []loadResult) {
	med := func(rs []loadResult, f func(loadResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	rps := func(r loadResult) float64 { return r.rps }
	p99 := func(r loadResult) float64 { return float64(r.p99) / 1e6 }
	p50 := func(r loadResult) float64 { return float64(r.p50) / 1e6 }
	errs := 0
	for _, r := range append(slices.Clone(bare), other...) {
		errs += r.errors
	}
	bareRPS, otherRPS := med(bare, rps), med(other, rps)
	b.ReportMetric(bareRPS, "bare_req/s")
	b.ReportMetric(otherRPS, name+"_req/s")
	b.ReportMetric(otherRPS/bareRPS, "ratio")
	b.ReportMetric(med(bare, p50), "bare_p50_ms")
	b.ReportMetric(med(other, p50), name+"_p50_ms")
	b.ReportMetric(med(bare, p99), "bare_p99_ms")
	b.ReportMetric(med(other, p99), name+"_p99_ms")
	b.ReportMetric(med(other, p99)-med(bare, p99), "p99_added_ms")
	b.ReportMetric(float64(errs), "errors")
}
