package proxy_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/portero/portero/configs"
	"github.com/portero/portero/proxy"
)

// BenchmarkLoadGatewayVsBare compares, in one run, authenticated gateway-mode
// requests (a live Redis session, sent as the cookie and as the bearer
// token; identity headers and X-Auth-Assertion minted) with a bare
// httputil.ReverseProxy at 10 concurrent clients. Rounds alternate so
// machine noise hits both alike. Run with -benchtime=1x (make bench does).
// Issue 4's target: ratio >= 0.85 and p99_added_ms <= 1.5.
func BenchmarkLoadGatewayVsBare(b *testing.B) {
	b.ReportAllocs()
	up := proxy.BenchUpstream()
	defer up.Close()
	bare := proxy.BareProxy(up.URL)
	defer bare.Close()

	st := newStack(b, stackOptions{
		backend:     backend{name: "redis+sqlite", redis: true},
		upstreamURL: up.URL,
		routes:      []configs.Route{{Path: "/api/samples", Mode: "gateway"}},
		log:         proxy.BenchLogger(),
	})
	u := st.login(b, st.addUser(b, "bench@example.com", 2, 7, false))

	for _, cred := range []struct {
		name   string
		header string
		value  string
	}{
		{"cookie", "Cookie", u.cookie()},
		{"bearer", "Authorization", "Bearer " + u.login.Bearer},
	} {
		b.Run(cred.name, func(b *testing.B) {
			gateway := func(ctx context.Context) *http.Request {
				req, _ := http.NewRequestWithContext(ctx, "GET", st.url+"/api/samples/1", nil)
				req.Header.Set(cred.header, cred.value)
				return req
			}
			plain := func(ctx context.Context) *http.Request {
				req, _ := http.NewRequestWithContext(ctx, "GET", bare.URL+"/api/samples/1", nil)
				req.Header.Set(cred.header, cred.value) // the same bytes on the wire
				return req
			}
			if res := st.do(b, "GET", "/api/samples/1", http.Header{cred.header: {cred.value}}); res.status != http.StatusOK {
				b.Fatalf("gateway request with the %s: %d %s", cred.name, res.status, res.body)
			}
			const clients, rounds = 10, 3
			per := 2 * time.Second
			if testing.Short() {
				per = 300 * time.Millisecond
			}
			var bareRes, gwRes []proxy.LoadResult
			for b.Loop() {
				bareRes, gwRes = nil, nil
				proxy.RunLoadWith(b, clients, per/4, plain)
				proxy.RunLoadWith(b, clients, per/4, gateway)
				for range rounds {
					bareRes = append(bareRes, proxy.RunLoadWith(b, clients, per, plain))
					gwRes = append(gwRes, proxy.RunLoadWith(b, clients, per, gateway))
				}
			}
			for _, r := range gwRes {
				if r.Errors() > 0 {
					b.Errorf("%d gateway requests failed", r.Errors())
				}
			}
			proxy.ReportComparison(b, "gateway", bareRes, gwRes)
		})
	}
}
