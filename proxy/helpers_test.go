package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// seen is what the test upstream received.
type seen struct {
	Method     string              `json:"method"`
	RequestURI string              `json:"request_uri"`
	Host       string              `json:"host"`
	Headers    map[string][]string `json:"headers"`
	Trailers   map[string][]string `json:"trailers"`
	BodyBytes  int64               `json:"body_bytes"`
	BodySHA256 string              `json:"body_sha256"`
}

// echoUpstream answers every request with what it received, streaming the
// body through a hash.
func echoUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seen{
			Method: r.Method, RequestURI: r.RequestURI, Host: r.Host,
			Headers: r.Header, Trailers: r.Trailer, BodyBytes: n,
			BodySHA256: hex.EncodeToString(h.Sum(nil)),
		})
	})
}

type gatewayOpts struct {
	trusted  []netip.Prefix
	hostMode string
	timeout  time.Duration
}

// newGateway puts a Front and Forwarder in front of upstream and serves them
// on a real listener.
func newGateway(t testing.TB, upstream string, o gatewayOpts) (*httptest.Server, *Health) {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	log := zap.NewNop()
	strip := NewHeaderStripper("X-Auth-User-Id", "X-Auth-User-Email", "X-Auth-User-Roles", "X-Auth-Legacy-User-Id", "X-Auth-Assertion")
	fwd, err := NewForwarder(ForwarderOptions{
		Upstream: u, HostMode: o.hostMode, DialTimeout: time.Second,
		ResponseTimeout: o.timeout, IdleConnTimeout: time.Minute,
	}, strip, log, ErrorResponder(log))
	if err != nil {
		t.Fatal(err)
	}
	health := NewHealth(time.Second, UpstreamCheck(u))
	front := NewFront(FrontOptions{
		OwnPrefixes: []string{"/auth", "/users"},
		Health:      health,
		Forward:     fwd,
		IPs:         NewIPResolver(o.trusted),
		Log:         log,
	})
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	return srv, health
}

// rawDo sends a request exactly as written (Go's client would re-escape the
// target) and returns the parsed response.
func rawDo(t testing.TB, addr, raw string) *http.Response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func decodeSeen(t testing.TB, res *http.Response) seen {
	t.Helper()
	defer res.Body.Close()
	var s seen
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatalf("decode upstream echo (status %d): %v", res.StatusCode, err)
	}
	return s
}

func hostOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }
