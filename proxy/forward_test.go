package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestForwardsTargetExactlyAsSent(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(echoUpstream())
	t.Cleanup(up.Close)
	gw, _ := newGateway(t, up.URL, gatewayOpts{})

	targets := []string{
		"/plain",
		"/a%2Fb/c",
		"/a%2fb",
		"/%41%42c",
		"/a%20b?x=%20y",
		"/curly{x}|pipe^caret`tick",
		"/semi;param=1/x",
		"/q?a=1;b=2&c=%zz&&d",
		"/trailing/",
		"/%E2%82%AC/euro",
		"/apostrophe's!$&'()*+,=:@",
		"/?",
		"/x?a=1&a=2",
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			res := rawDo(t, hostOf(gw), "GET "+target+" HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
			s := decodeSeen(t, res)
			if s.RequestURI != target {
				t.Errorf("upstream saw %q, want %q", s.RequestURI, target)
			}
		})
	}
}

func TestForwardsEveryMethodButTraceAndConnect(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(echoUpstream())
	t.Cleanup(up.Close)
	gw, _ := newGateway(t, up.URL, gatewayOpts{})

	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "MKCOL", "PURGE", "REPORT"} {
		req, _ := http.NewRequest(m, gw.URL+"/m", strings.NewReader("body"))
		res, err := gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if m == "HEAD" {
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Errorf("HEAD: status %d", res.StatusCode)
			}
			continue
		}
		if s := decodeSeen(t, res); s.Method != m || s.BodyBytes != 4 {
			t.Errorf("%s: upstream saw method %q with %d body bytes", m, s.Method, s.BodyBytes)
		}
	}
	for _, m := range []string{"TRACE", "CONNECT"} {
		raw := m + " /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
		if m == "CONNECT" {
			raw = "CONNECT upstream.test:443 HTTP/1.1\r\nHost: upstream.test:443\r\n\r\n"
		}
		res := rawDo(t, hostOf(gw), raw)
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", m, res.StatusCode)
		}
	}
}

func TestStripsIdentityHeadersInEverySpelling(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(echoUpstream())
	t.Cleanup(up.Close)
	gw, _ := newGateway(t, up.URL, gatewayOpts{})

	raw := "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close, X-Request-Id, X-Forwarded-For\r\n" +
		"X-Auth-User-Id: 1\r\n" +
		"x-auth-user-email: evil@example.com\r\n" +
		"X_Auth_User_Roles: admin\r\n" +
		"x_auth_legacy_user_id: 1\r\n" +
		"X-AUTH-ASSERTION: forged\r\n" +
		"X-Auth.User-Id: 2\r\n" +
		"X-Auth-Something-New: 3\r\n" +
		"X-Original-URL: /admin\r\n" +
		"X-Rewrite-Url: /admin\r\n" +
		"X-Real-IP: 6.6.6.6\r\n" +
		"X-Forwarded-For: 6.6.6.6\r\n" +
		"X-Forwarded-Prefix: /evil\r\n" +
		"X-Keep-Me: yes\r\n\r\n"
	s := decodeSeen(t, rawDo(t, hostOf(gw), raw))
	for name := range s.Headers {
		if normalizeHeaderName(name) != "x-keep-me" && strings.HasPrefix(normalizeHeaderName(name), "x-auth") {
			t.Errorf("identity header %q reached the upstream", name)
		}
	}
	for _, h := range []string{"X-Original-Url", "X-Rewrite-Url", "X-Forwarded-Prefix"} {
		if _, ok := s.Headers[h]; ok {
			t.Errorf("%s reached the upstream", h)
		}
	}
	if got := s.Headers["X-Real-Ip"]; len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("X-Real-Ip = %q, want the socket peer", got)
	}
	if got := s.Headers["X-Forwarded-For"]; len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want only the socket peer (untrusted)", got)
	}
	if len(s.Headers["X-Request-Id"]) != 1 {
		t.Errorf("Connection: X-Request-Id removed Portero's request id: %v", s.Headers["X-Request-Id"])
	}
	if s.Headers["X-Keep-Me"] == nil {
		t.Error("an ordinary header was dropped")
	}
}

func TestForwardingHeadersTrustedAndUntrusted(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(echoUpstream())
	t.Cleanup(up.Close)
	untrusted, _ := newGateway(t, up.URL, gatewayOpts{})
	trusted, _ := newGateway(t, up.URL, gatewayOpts{trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})

	raw := "GET /x HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n" +
		"X-Forwarded-For: 203.0.113.9, 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\n" +
		"Forwarded: for=203.0.113.9;proto=https\r\n\r\n"

	s := decodeSeen(t, rawDo(t, hostOf(untrusted), raw))
	expectHeader(t, s, "X-Forwarded-For", "127.0.0.1")
	expectHeader(t, s, "X-Forwarded-Proto", "http")
	expectHeader(t, s, "X-Forwarded-Host", "app.example")
	expectHeader(t, s, "Forwarded", "for=127.0.0.1;host=app.example;proto=http")
	expectHeader(t, s, "X-Real-Ip", "127.0.0.1")

	s = decodeSeen(t, rawDo(t, hostOf(trusted), raw))
	expectHeader(t, s, "X-Forwarded-For", "203.0.113.9, 10.0.0.1, 127.0.0.1")
	expectHeader(t, s, "X-Forwarded-Proto", "https")
	expectHeader(t, s, "X-Forwarded-Host", "public.example")
	expectHeader(t, s, "Forwarded", "for=203.0.113.9;proto=https, for=127.0.0.1;host=app.example;proto=http")
	// 10.0.0.1 is not trusted, so it is the client; 203.0.113.9 is its claim.
	expectHeader(t, s, "X-Real-Ip", "10.0.0.1")
}

func expectHeader(t *testing.T, s seen, name, want string) {
	t.Helper()
	if got := strings.Join(s.Headers[name], " | "); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

func TestHostPreservedOrRewritten(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(echoUpstream())
	t.Cleanup(up.Close)
	for _, tc := range []struct{ mode, want string }{
		{"preserve", "client.example"},
		{"upstream", hostOf(up)},
		{"legacy.internal:8443", "legacy.internal:8443"},
	} {
		gw, _ := newGateway(t, up.URL, gatewayOpts{hostMode: tc.mode})
		s := decodeSeen(t, rawDo(t, hostOf(gw), "GET / HTTP/1.1\r\nHost: client.example\r\nConnection: close\r\n\r\n"))
		if s.Host != tc.want {
			t.Errorf("host mode %q: upstream saw Host %q, want %q", tc.mode, s.Host, tc.want)
		}
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(echoUpstream())
	t.Cleanup(up.Close)
	gw, _ := newGateway(t, up.URL, gatewayOpts{})
	for _, tc := range []struct {
		in   string
		keep bool
	}{
		{"abc-123_X.y:z", true},
		{"", false},
		{"has space", false},
		{strings.Repeat("a", 129), false},
		{"<script>", false},
	} {
		req, _ := http.NewRequest("GET", gw.URL+"/id", nil)
		if tc.in != "" {
			req.Header.Set("X-Request-Id", tc.in)
		}
		res, err := gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := res.Header.Get("X-Request-Id")
		s := decodeSeen(t, res)
		if up := strings.Join(s.Headers["X-Request-Id"], ","); up != got {
			t.Errorf("upstream saw request id %q, client got %q", up, got)
		}
		if tc.keep && got != tc.in {
			t.Errorf("well-formed id %q replaced by %q", tc.in, got)
		}
		if !tc.keep && (got == tc.in || len(got) != 32) {
			t.Errorf("id %q: got %q, want a fresh 32-hex id", tc.in, got)
		}
	}
}

func TestUpstreamFailures(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	}))
	t.Cleanup(reset.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := http.NewResponseController(w).Hijack()
		_, _ = io.WriteString(conn, "NOT HTTP AT ALL\r\n\r\n")
		conn.Close()
	}))
	t.Cleanup(garbage.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	for _, tc := range []struct {
		name, upstream string
		status         int
		code           string
	}{
		{"refused", closedURL, 502, "UPSTREAM_UNAVAILABLE"},
		{"reset", reset.URL, 502, "UPSTREAM_UNAVAILABLE"},
		{"garbage", garbage.URL, 502, "UPSTREAM_UNAVAILABLE"},
		{"slow", slow.URL, 504, "UPSTREAM_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gw, _ := newGateway(t, tc.upstream, gatewayOpts{timeout: 200 * time.Millisecond})
			for _, accept := range []string{"application/json", "text/html,application/xhtml+xml"} {
				req, _ := http.NewRequest("GET", gw.URL+"/x", nil)
				req.Header.Set("Accept", accept)
				start := time.Now()
				res, err := gw.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
				}
				if time.Since(start) > 3*time.Second {
					t.Errorf("took %v", time.Since(start))
				}
				ct := res.Header.Get("Content-Type")
				if strings.HasPrefix(accept, "text/html") {
					if !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(body), tc.code) {
						t.Errorf("browser got %q: %s", ct, body)
					}
				} else if ct != "application/json" || string(body) != fmt.Sprintf(`{"detail":%q}`+"\n", tc.code) {
					t.Errorf("API client got %q: %s", ct, body)
				}
			}
		})
	}
}

func TestStreamsServerSentEventsAsTheyArrive(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		<-release
		_, _ = io.WriteString(w, "data: last\n\n")
	}))
	t.Cleanup(up.Close)
	gw, _ := newGateway(t, up.URL, gatewayOpts{})

	res, err := gw.Client().Get(gw.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	got := make(chan string, 1)
	go func() { line, _ := br.ReadString('\n'); got <- line }()
	select {
	case line := <-got:
		if line != "data: first\n" {
			t.Fatalf("first line %q", line)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("first event did not arrive while the upstream was still streaming")
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: last") {
		t.Errorf("rest of stream: %q", rest)
	}
}

func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	gw, _ := newGateway(t, up.URL, gatewayOpts{})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(gw.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	for _, msg := range []string{"hello", "wörld", strings.Repeat("x", 70000)} {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != msg {
			t.Fatalf("echo mismatch: %d bytes back for %d sent", len(got), len(msg))
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
}

func TestTrailersPassBothWays(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "X-Resp-Check")
		w.Header().Set("X-Got-Req-Trailer", r.Trailer.Get("X-Req-Check"))
		w.Header().Set("X-Got-Identity-Trailer", r.Trailer.Get("X-Auth-User-Id"))
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Resp-Check", "ok")
	}))
	t.Cleanup(up.Close)
	gw, _ := newGateway(t, up.URL, gatewayOpts{})

	raw := "POST /t HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nTrailer: X-Req-Check, X-Auth-User-Id\r\n\r\n" +
		"4\r\ndata\r\n0\r\nX-Req-Check: yes\r\nX-Auth-User-Id: forged\r\n\r\n"
	res := rawDo(t, hostOf(gw), raw)
	_, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if got := res.Header.Get("X-Got-Req-Trailer"); got != "yes" {
		t.Errorf("request trailer reached upstream as %q", got)
	}
	if got := res.Header.Get("X-Got-Identity-Trailer"); got != "" {
		t.Errorf("identity trailer reached upstream: %q", got)
	}
	if got := res.Trailer.Get("X-Resp-Check"); got != "ok" {
		t.Errorf("response trailer = %q", got)
	}
}

func TestOwnAndOpsPathsAreNeverForwarded(t *testing.T) {
	t.Parallel()
	forwarded := make(chan string, 10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forwarded <- r.RequestURI
	}))
	t.Cleanup(up.Close)
	gw, _ := newGateway(t, up.URL, gatewayOpts{})
	for _, p := range []string{"/-/healthz", "/-/readyz", "/-/metrics", "/-/", "/%2D/healthz", "/auth/login", "/users/me"} {
		res := rawDo(t, hostOf(gw), "GET "+p+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		res.Body.Close()
	}
	select {
	case uri := <-forwarded:
		t.Errorf("%s was forwarded upstream", uri)
	default:
	}
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(echoUpstream())
	gw, health := newGateway(t, up.URL, gatewayOpts{})
	health.cacheFor = 0 // this test changes the world between probes

	get := func(path string) (int, string) {
		res, err := gw.Client().Get(gw.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/-/readyz"); code != 200 || !strings.Contains(body, `"upstream":"ok"`) {
		t.Errorf("ready with upstream up: %d %s", code, body)
	}
	up.Close()
	if code, body := get("/-/readyz"); code != 503 || !strings.Contains(body, `"upstream":"unavailable"`) {
		t.Errorf("ready with upstream down: %d %s", code, body)
	}
	if code, _ := get("/-/healthz"); code != 200 {
		t.Errorf("healthz with upstream down: %d", code)
	}
	health.StartDraining()
	if code, body := get("/-/readyz"); code != 503 || !strings.Contains(body, "shutting_down") {
		t.Errorf("ready while draining: %d %s", code, body)
	}
}

func TestLargeBodiesStreamWithFlatMemory(t *testing.T) {
	t.Parallel()
	size := int64(1 << 30) // the 1 GiB each way
	if raceEnabled || testing.Short() {
		size = 64 << 20
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		_, _ = io.Copy(w, io.LimitReader(patternReader{}, size))
	}))
	t.Cleanup(up.Close)
	gw, _ := newGateway(t, up.URL, gatewayOpts{})

	peak := trackHeap(t)
	// Upload: the body is generated on the fly, never held in memory.
	want := sha256.New()
	_, _ = io.Copy(want, io.LimitReader(patternReader{}, size))
	res, err := gw.Client().Post(gw.URL+"/up", "application/octet-stream", io.LimitReader(patternReader{}, size))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(got) != fmt.Sprintf("%d %s", size, hex.EncodeToString(want.Sum(nil))) {
		t.Errorf("upload arrived as %q", got)
	}
	res, err = gw.Client().Get(gw.URL + "/down")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if n != size {
		t.Errorf("download: %d bytes, want %d", n, size)
	}
	if p := peak(); p > 64<<20 {
		t.Errorf("heap grew by %d MiB while streaming %d MiB each way", p>>20, size>>20)
	}
}

func TestReadinessProbesShareOneCheckPerSecond(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	h := NewHealth(time.Second, Check{Name: "db", Fn: func(context.Context) error { calls.Add(1); return nil }})
	for range 50 {
		if res := h.Ready(context.Background()); res.Status != "ok" {
			t.Fatalf("status %q", res.Status)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("50 probes within a second ran the check %d times, want 1", n)
	}
	h.StartDraining()
	if res := h.Ready(context.Background()); res.Status != "shutting_down" {
		t.Errorf("draining answered from the cache: %q", res.Status)
	}
}
