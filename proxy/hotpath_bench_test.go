package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portero/portero/configs"
)

// The per-request pieces of the proxy path, one by one, with their
// allocations (issue #10's allocation budget; figures in BENCHMARKS.md):
//
//	go test -run '^$' -bench 'TableDecide|HeaderStrip|ForwarderRewrite' -benchmem ./proxy

// benchRoutes is a route table of a realistic size: a few dozen routes of
// every mode, some with methods.
func benchRoutes(b *testing.B) *Table {
	b.Helper()
	var routes []configs.Route
	for _, p := range []string{"/api/samples", "/api/reports", "/api/users", "/api/labs", "/api/orders",
		"/api/invoices", "/api/exports", "/api/imports", "/api/search", "/api/stats"} {
		routes = append(routes,
			configs.Route{Path: p, Mode: "gateway", Roles: []string{"analyst", "admin"}},
			configs.Route{Path: p + "/public", Methods: []string{"GET"}, Mode: "public"},
			configs.Route{Path: p + "/legacy", Mode: "dual"},
		)
	}
	routes = append(routes, configs.Route{Path: "/static", Mode: "public"}, configs.Route{Path: "/admin", Mode: "gateway", Roles: []string{"admin"}})
	t, err := NewTable("legacy", routes)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// BenchmarkTableDecide is the route match every proxied request makes:
// path normalisation and the longest-prefix match.
func BenchmarkTableDecide(b *testing.B) {
	t := benchRoutes(b)
	for _, tc := range []struct{ name, path string }{
		{"hit", "/api/samples/1234"},
		{"hit-deep", "/api/reports/2024/q3/summary.json"},
		{"default", "/index.html"},
		{"escaped", "/api/samples/a%20b"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := t.Decide(http.MethodGet, tc.path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchClientHeaders is what a browser sends, plus one forged identity
// header that must go.
func benchClientHeaders() http.Header {
	return http.Header{
		"Accept":          {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		"Accept-Encoding": {"gzip, deflate, br"},
		"Accept-Language": {"en-GB,en;q=0.9"},
		"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"},
		"Cookie":          {"__Host-portero_session=dGhpcyBpcyBub3QgYSByZWFsIHNlc3Npb24gdG9rZW4; theme=dark"},
		"X-Auth_User_Id":  {"forged"},
	}
}

// BenchmarkHeaderStrip removes identity headers in every spelling; the
// header clone (the outbound copy ReverseProxy makes) is included, since
// stripping changes the map.
func BenchmarkHeaderStrip(b *testing.B) {
	s := NewHeaderStripper("X-Auth-User-Id", "X-Auth-User-Email", "X-Auth-User-Roles", "X-Auth-Legacy-User-Id", "X-Auth-Assertion")
	in := benchClientHeaders()
	b.ReportAllocs()
	for b.Loop() {
		h := in.Clone()
		s.Strip(h, false)
	}
}

// BenchmarkForwarderRewrite is header injection: what the forwarder does to
// the outbound copy of an authenticated request (target URL, stripping,
// Forwarded headers, own credentials out, identity headers and the
// assertion in). The request clone that ReverseProxy makes is included,
// since Rewrite never runs without it.
func BenchmarkForwarderRewrite(b *testing.B) {
	up, _ := url.Parse("http://127.0.0.1:8000")
	names := IdentityHeaders{UserID: "X-Auth-User-Id", Email: "X-Auth-User-Email", Roles: "X-Auth-User-Roles",
		LegacyID: "X-Auth-Legacy-User-Id", Assertion: "X-Auth-Assertion"}
	strip := NewHeaderStripper(names.UserID, names.Email, names.Roles, names.LegacyID, names.Assertion)
	f, err := NewForwarder(ForwarderOptions{Upstream: up, DialTimeout: time.Second, ResponseTimeout: time.Second,
		IdleConnTimeout: time.Minute, Headers: names, CookieNames: []string{"__Host-portero_session"}},
		strip, zap.NewNop(), func(http.ResponseWriter, *http.Request, error) {})
	if err != nil {
		b.Fatal(err)
	}
	legacyID := int64(1234)
	info := &requestInfo{
		id: "0af7651916cd43dd8448eb211c80319c", peer: netip.MustParseAddr("203.0.113.7"), clientIP: netip.MustParseAddr("203.0.113.7"),
		identity: &Identity{UserID: "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab", Email: "analyst@example.test",
			Roles: []string{"analyst"}, LegacyID: &legacyID, Via: "cookie"},
		assertion: "eyJhbGciOiJIUzI1NiIsImtpZCI6IjEiLCJ0eXAiOiJKV1QifQ.eyJzdWIiOiI2ZjFjMmQzZSJ9.c2lnbmF0dXJl",
	}
	in := httptest.NewRequest(http.MethodGet, "http://portero.example/api/samples/1234?page=2", nil)
	in.Header = benchClientHeaders()
	in = in.WithContext(withInfo(context.Background(), info))
	b.ReportAllocs()
	for b.Loop() {
		out := in.Clone(in.Context())
		f.rewrite(&httputil.ProxyRequest{In: in, Out: out})
	}
}
