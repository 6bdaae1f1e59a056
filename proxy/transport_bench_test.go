package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// BenchmarkUpstreamExchange is one bodiless GET to a local upstream and its
// 64-byte answer read to the end, by the transport Portero uses for it and
// by a tuned http.Transport (what the bare proxy of the load harness uses):
//
//	go test -run '^$' -bench UpstreamExchange -benchmem ./proxy
//
// Both include the upstream's own work (same process), so the difference
// is the transport's; "parallel" runs 16 exchanges at a time.
func BenchmarkUpstreamExchange(b *testing.B) {
	body := make([]byte, 64)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "64")
		_, _ = w.Write(body)
	}))
	b.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	dialer := &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
	opts := ForwarderOptions{Upstream: u, ResponseTimeout: 10 * time.Second, IdleConnTimeout: time.Minute}
	standard := newTransport(opts, dialer)
	b.Cleanup(standard.CloseIdleConnections)
	direct := newDirectTransport(opts, dialer.DialContext, standard)
	b.Cleanup(direct.CloseIdleConnections)
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{{"direct", direct}, {"http.Transport", standard}} {
		req, _ := http.NewRequest(http.MethodGet, up.URL+"/bytes/64", nil)
		exchange := func(b *testing.B) {
			res, err := tc.rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, res.Body); err != nil {
				b.Fatal(err)
			}
			res.Body.Close()
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				exchange(b)
			}
		})
		// Many at once, as under load: where the hand-offs between the
		// standard transport's goroutines cost.
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					exchange(b)
				}
			})
		})
	}
}
