package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// rawUpstream serves each accepted connection with handle, for upstreams
// that misbehave in ways net/http will not.
func rawUpstream(t *testing.T, handle func(n int, conn net.Conn)) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			n := int(accepted.Add(1))
			go func() {
				defer conn.Close()
				handle(n, conn)
			}()
		}
	}()
	return "http://" + ln.Addr().String(), &accepted
}

// readRequests reads the requests of one connection, calling answer for
// each, until the client closes it or answer returns false.
func readRequests(conn net.Conn, answer func(i int, r *http.Request) bool) {
	br := bufio.NewReader(conn)
	for i := 0; ; i++ {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if !answer(i, r) {
			return
		}
	}
}

// connCounts are the connections an upstream has opened and closed.
type connCounts struct{ opened, closed atomic.Int32 }

// countingUpstream serves h and counts its connections; idleTimeout, if
// not zero, is its keep-alive timeout.
func countingUpstream(t *testing.T, idleTimeout time.Duration, h http.HandlerFunc) (*httptest.Server, *connCounts) {
	t.Helper()
	var c connCounts
	up := httptest.NewUnstartedServer(h)
	up.Config.IdleTimeout = idleTimeout
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			c.opened.Add(1)
		case http.StateClosed:
			c.closed.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	return up, &c
}

// directTransportTo is a direct transport to up on its own, with the
// standard one behind it.
func directTransportTo(t *testing.T, up string, opts ForwarderOptions) *directTransport {
	t.Helper()
	u, err := url.Parse(up)
	if err != nil {
		t.Fatal(err)
	}
	opts.Upstream = u
	d := &net.Dialer{}
	tr := newDirectTransport(opts, d.DialContext, &http.Transport{})
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func getBody(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

func TestDirectTransportKeepsOneConnectionAlive(t *testing.T) {
	t.Parallel()
	up, conns := countingUpstream(t, 0, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/not-modified":
			w.WriteHeader(http.StatusNotModified)
		case "/chunked":
			_, _ = io.WriteString(w, "part one ")
			http.NewResponseController(w).Flush()
			_, _ = io.WriteString(w, "part two")
		default:
			_, _ = io.WriteString(w, "hello")
		}
	})
	gw, _ := newGateway(t, up.URL, gatewayOpts{})

	for i := range 30 {
		path := []string{"/hello", "/empty", "/not-modified", "/chunked"}[i%4]
		method := http.MethodGet
		if i%5 == 4 {
			method = http.MethodHead
		}
		req, _ := http.NewRequest(method, gw.URL+path, nil)
		res, err := gw.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		want := map[string]string{"/hello": "hello", "/chunked": "part one part two"}[path]
		if method == http.MethodHead {
			want = ""
		}
		if string(body) != want {
			t.Fatalf("%s %s: body %q, want %q", method, path, body, want)
		}
	}
	if n := conns.opened.Load(); n != 1 {
		t.Errorf("30 requests one after another opened %d upstream connections, want 1", n)
	}
}

// A slow answer on a pooled connection is a timeout (504 after the
// configured wait), never a dead connection to try again: that would make
// the client wait twice as long.
func TestDirectTransportDoesNotResendWhatTimedOut(t *testing.T) {
	t.Parallel()
	var slowCalls atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slowCalls.Add(1)
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	gw, _ := newGateway(t, up.URL, gatewayOpts{timeout: 300 * time.Millisecond})
	if status, _ := getBody(t, gw.Client(), gw.URL+"/fast"); status != 200 {
		t.Fatalf("fast: %d", status)
	}
	start := time.Now()
	status, _ := getBody(t, gw.Client(), gw.URL+"/slow")
	took := time.Since(start)
	if status != http.StatusGatewayTimeout || took > 550*time.Millisecond {
		t.Errorf("slow answer on a pooled connection: %d after %v, want 504 after about 300ms", status, took)
	}
	if n := slowCalls.Load(); n != 1 {
		t.Errorf("the slow request reached the upstream %d times, want once", n)
	}
}

// Response trailers arrive after the body, which the direct transport
// reads itself: they must still reach the client, and the connection must
// still be reused.
func TestDirectTransportPassesResponseTrailers(t *testing.T) {
	t.Parallel()
	up, conns := countingUpstream(t, 0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, "body")
		http.NewResponseController(w).Flush()
		w.Header().Set("X-Checksum", "abc123")
	})
	gw, _ := newGateway(t, up.URL, gatewayOpts{})
	for range 3 {
		res, err := gw.Client().Get(gw.URL + "/t")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != "body" || res.Trailer.Get("X-Checksum") != "abc123" {
			t.Fatalf("body %q, trailers %v", body, res.Trailer)
		}
	}
	if n := conns.opened.Load(); n != 1 {
		t.Errorf("%d upstream connections, want 1", n)
	}
}

// A small answer leaves the response deadline set on its connection (the
// body is already read); the next exchange must replace it before using
// the connection, however long it sat idle.
func TestDirectTransportReusesAConnectionPastAnOldDeadline(t *testing.T) {
	t.Parallel()
	up, conns := countingUpstream(t, 0, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	gw, _ := newGateway(t, up.URL, gatewayOpts{timeout: 50 * time.Millisecond})
	for range 3 {
		if status, body := getBody(t, gw.Client(), gw.URL+"/"); status != 200 || body != "ok" {
			t.Fatalf("%d %q", status, body)
		}
		time.Sleep(120 * time.Millisecond)
	}
	if n := conns.opened.Load(); n != 1 {
		t.Errorf("%d upstream connections for three requests, want 1", n)
	}
}

// An upstream's keep-alive timeout can close a pooled connection just as a
// request is sent on it. The request is bodiless and idempotent, so it is
// sent again on a new connection instead of failing.
func TestDirectTransportResendsWhenAPooledConnectionDies(t *testing.T) {
	t.Parallel()
	upURL, accepted := rawUpstream(t, func(_ int, conn net.Conn) {
		readRequests(conn, func(i int, r *http.Request) bool {
			if i == 1 {
				return false // reads the second request, then hangs up without a word
			}
			_, _ = fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), r.URL.Path)
			return true
		})
	})
	gw, _ := newGateway(t, upURL, gatewayOpts{})
	for _, path := range []string{"/first", "/second", "/third"} {
		if status, body := getBody(t, gw.Client(), gw.URL+path); status != 200 || body != path {
			t.Fatalf("GET %s: %d %q", path, status, body)
		}
	}
	// Each connection answers once and dies under the next request, which
	// goes again on a new one.
	if n := accepted.Load(); n != 3 {
		t.Errorf("upstream accepted %d connections, want 3", n)
	}

	// A new connection that dies is the upstream failing, not a retry.
	deadURL, _ := rawUpstream(t, func(_ int, conn net.Conn) {
		readRequests(conn, func(int, *http.Request) bool { return false })
	})
	dead, _ := newGateway(t, deadURL, gatewayOpts{})
	if status, _ := getBody(t, dead.Client(), dead.URL+"/x"); status != http.StatusBadGateway {
		t.Errorf("upstream that hangs up on a new connection: %d, want 502", status)
	}
}

// The upstream's keep-alive timeout can close all of a burst's pooled
// connections at once: the resend must not take the next dead one.
func TestDirectTransportResendsOnANewConnection(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	upURL, accepted := rawUpstream(t, func(_ int, conn net.Conn) {
		readRequests(conn, func(i int, r *http.Request) bool {
			if i == 1 {
				return false // dies under its second request
			}
			if r.URL.Path == "/burst" {
				<-release // keeps both burst requests in flight: two connections
			}
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return true
		})
	})
	gw, _ := newGateway(t, upURL, gatewayOpts{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if status, _ := getBody(t, gw.Client(), gw.URL+"/burst"); status != 200 {
				t.Errorf("burst: %d", status)
			}
		})
	}
	for accepted.Load() < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if status, body := getBody(t, gw.Client(), gw.URL+"/after"); status != 200 || body != "ok" {
		t.Errorf("after the burst, with both pooled connections dead: %d %q, want 200", status, body)
	}
}

// Answers that end their connection (HTTP/1.0 without keep-alive,
// Connection: close, a body that ends at close) leave nothing to reuse.
func TestDirectTransportReusesNoConnectionThatEnds(t *testing.T) {
	t.Parallel()
	for _, answer := range []string{
		"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	} {
		upURL, accepted := rawUpstream(t, func(_ int, conn net.Conn) {
			readRequests(conn, func(int, *http.Request) bool {
				_, _ = io.WriteString(conn, answer)
				return true // keeps reading: a reused connection would be answered
			})
		})
		gw, _ := newGateway(t, upURL, gatewayOpts{})
		for range 3 {
			if status, body := getBody(t, gw.Client(), gw.URL+"/x"); status != 200 || body != "ok" {
				t.Fatalf("%q: %d %q", answer, status, body)
			}
		}
		if n := accepted.Load(); n != 3 {
			t.Errorf("%q: %d connections for three requests, want 3", answer, n)
		}
	}
	// A body that ends when the connection does.
	upURL, accepted := rawUpstream(t, func(_ int, conn net.Conn) {
		readRequests(conn, func(int, *http.Request) bool {
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\n\r\nuntil close")
			return false
		})
	})
	gw, _ := newGateway(t, upURL, gatewayOpts{})
	for range 2 {
		if status, body := getBody(t, gw.Client(), gw.URL+"/x"); status != 200 || body != "until close" {
			t.Fatalf("read-to-close body: %d %q", status, body)
		}
	}
	if n := accepted.Load(); n != 2 {
		t.Errorf("read-to-close bodies: %d connections for two requests, want 2", n)
	}
}

// The attack: an upstream (or something between) writes more than the
// response it declared. Those bytes must never be read as the answer to
// the next client's request on the same pooled connection.
func TestDirectTransportNeverHandsOnUnaskedBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		delay     time.Duration // before the extra bytes follow the response
		noContent bool          // the answer is a 204, which has no body at all
	}{
		{"in the same write", 0, false},
		{"after the response was read", 50 * time.Millisecond, false},
		{"after a 204, in the same write", 0, true},
		{"after a 204, later", 50 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const forged = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"
			upURL, _ := rawUpstream(t, func(_ int, conn net.Conn) {
				readRequests(conn, func(_ int, r *http.Request) bool {
					answer := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), r.URL.Path)
					if tc.noContent {
						answer = "HTTP/1.1 204 No Content\r\nX-Path: " + r.URL.Path + "\r\n\r\n"
					}
					if tc.delay == 0 {
						_, _ = io.WriteString(conn, answer+forged)
						return true
					}
					_, _ = io.WriteString(conn, answer)
					time.Sleep(tc.delay)
					_, _ = io.WriteString(conn, forged)
					return true
				})
			})
			gw, _ := newGateway(t, upURL, gatewayOpts{})
			for _, path := range []string{"/alice", "/bob", "/carol"} {
				res, err := gw.Client().Get(gw.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				want, got := fmt.Sprintf("200 %s", path), fmt.Sprintf("%d %s", res.StatusCode, body)
				if tc.noContent {
					want, got = "204 "+path, fmt.Sprintf("%d %s", res.StatusCode, res.Header.Get("X-Path"))
				}
				if got != want {
					t.Fatalf("GET %s answered %q, want %q", path, got, want)
				}
				time.Sleep(2 * tc.delay)
			}
		})
	}
}

func TestDirectTransportRefusesWhatAProxyMustNotPassOn(t *testing.T) {
	t.Parallel()
	huge := "X-Big: " + strings.Repeat("a", maxResponseHeaderBytes) + "\r\n"
	for _, tc := range []struct{ name, answer string }{
		{"oversized headers", "HTTP/1.1 200 OK\r\n" + huge + "Content-Length: 0\r\n\r\n"},
		{"endless 1xx", strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", maxInformational+1) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
		{"unasked protocol switch", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: evil\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			upURL, _ := rawUpstream(t, func(_ int, conn net.Conn) {
				readRequests(conn, func(int, *http.Request) bool {
					_, _ = io.WriteString(conn, tc.answer)
					return false
				})
			})
			gw, _ := newGateway(t, upURL, gatewayOpts{})
			if status, _ := getBody(t, gw.Client(), gw.URL+"/x"); status != http.StatusBadGateway {
				t.Errorf("status %d, want 502", status)
			}
		})
	}
}

func TestDirectTransportPassesEarlyHints(t *testing.T) {
	t.Parallel()
	upURL, _ := rawUpstream(t, func(_ int, conn net.Conn) {
		readRequests(conn, func(int, *http.Request) bool {
			_, _ = io.WriteString(conn, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return true
		})
	})
	gw, _ := newGateway(t, upURL, gatewayOpts{})
	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, gw.URL+"/", nil)
	res, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "ok" || len(hints) != 1 || hints[0] != "103 </style.css>; rel=preload" {
		t.Errorf("body %q, 1xx seen by the client %q", body, hints)
	}
}

// A client that leaves, before the answer or in the middle of it, takes
// its upstream connection with it: the upstream sees it close at once.
func TestDirectTransportLetsGoWhenTheClientLeaves(t *testing.T) {
	t.Parallel()
	for _, stage := range []string{"waiting for headers", "mid-body"} {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			upstreamSawClose := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if stage == "mid-body" {
					_, _ = io.WriteString(w, "data: one\n\n")
					http.NewResponseController(w).Flush()
				}
				select {
				case <-r.Context().Done():
					close(upstreamSawClose)
				case <-time.After(10 * time.Second):
				}
			}))
			t.Cleanup(up.Close)
			gw, _ := newGateway(t, up.URL, gatewayOpts{timeout: 20 * time.Second})
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/", nil)
			done := make(chan struct{})
			go func() {
				defer close(done)
				res, err := gw.Client().Do(req)
				if err == nil {
					_, _ = res.Body.Read(make([]byte, 64))
					cancel()
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}()
			if stage == "waiting for headers" {
				time.Sleep(100 * time.Millisecond)
				cancel()
			}
			select {
			case <-upstreamSawClose:
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream connection outlived the client")
			}
			<-done
		})
	}
}

func TestDirectTransportClosesIdleConnections(t *testing.T) {
	t.Parallel()
	up, conns := countingUpstream(t, 0, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	tr := directTransportTo(t, up.URL, ForwarderOptions{IdleConnTimeout: 100 * time.Millisecond})
	client := &http.Client{Transport: tr}
	if status, _ := getBody(t, client, up.URL+"/"); status != 200 {
		t.Fatalf("status %d", status)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		if conns.closed.Load() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an idle upstream connection was not closed after its idle timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDirectTransportTakesOnlyReplayableBodilessRequests(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("http://upstream.test:8080")
	tr := newDirectTransport(ForwarderOptions{Upstream: u}, nil, nil)
	req := func(method, target string, edit func(*http.Request)) *http.Request {
		r, _ := http.NewRequest(method, target, nil)
		if edit != nil {
			edit(r)
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		r      *http.Request
		direct bool
	}{
		{"GET", req("GET", "http://upstream.test:8080/a", nil), true},
		{"HEAD", req("HEAD", "http://upstream.test:8080/a", nil), true},
		{"OPTIONS", req("OPTIONS", "http://upstream.test:8080/a", nil), true},
		{"DELETE", req("DELETE", "http://upstream.test:8080/a", nil), false},
		{"POST without body", req("POST", "http://upstream.test:8080/a", nil), false},
		{"GET with a body", req("GET", "http://upstream.test:8080/a", func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("x")), 1
		}), false},
		{"GET with a body of unknown length", req("GET", "http://upstream.test:8080/a", func(r *http.Request) {
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("x")), -1
		}), false},
		{"upgrade", req("GET", "http://upstream.test:8080/ws", func(r *http.Request) {
			r.Header.Set("Connection", "Upgrade")
			r.Header.Set("Upgrade", "websocket")
		}), false},
		{"expect", req("GET", "http://upstream.test:8080/a", func(r *http.Request) { r.Header.Set("Expect", "100-continue") }), false},
		{"another host", req("GET", "http://elsewhere.test:8080/a", nil), false},
		{"https", req("GET", "https://upstream.test:8080/a", nil), false},
	} {
		if got := tr.direct(tc.r); got != tc.direct {
			t.Errorf("%s: direct = %v, want %v", tc.name, got, tc.direct)
		}
	}
}

// A client leaving mid-stream is the client's doing: the reverse proxy's
// error log, which reports upstream failures, stays quiet (as with the
// standard transport, which answers context.Canceled).
func TestDirectTransportClientLeavingIsNotAnUpstreamError(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			if _, err := io.WriteString(w, "data: tick\n\n"); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(up.Close)
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	u, _ := url.Parse(up.URL)
	fwd, err := NewForwarder(ForwarderOptions{Upstream: u, DialTimeout: time.Second, ResponseTimeout: 5 * time.Second, IdleConnTimeout: time.Minute},
		NewHeaderStripper("X-Auth-User-Id"), log, ErrorResponder(log))
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(fwd)
	t.Cleanup(gw.Close)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/events", nil)
	res, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = res.Body.Read(make([]byte, 64))
	cancel()
	res.Body.Close()
	time.Sleep(200 * time.Millisecond)
	for _, e := range logs.All() {
		t.Errorf("logged when the client left: %s %v", e.Message, e.ContextMap())
	}
}

// Header values the standard transport refuses (a NUL, say, in a value
// that came from a user record) are refused here too, never sent mangled.
func TestDirectTransportRefusesInvalidHeaderValues(t *testing.T) {
	t.Parallel()
	var reached atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	t.Cleanup(up.Close)
	tr := directTransportTo(t, up.URL, ForwarderOptions{})
	req, _ := http.NewRequest(http.MethodGet, up.URL+"/", nil)
	req.Header.Set("X-Auth-User-Email", "a\x00b@example.com")
	if res, err := tr.RoundTrip(req); err == nil {
		res.Body.Close()
		t.Errorf("sent with a NUL in a header value: %d", res.StatusCode)
	}
	if reached.Load() != 0 {
		t.Error("the upstream received the request")
	}
}

// An upstream with a short keep-alive timeout closes pooled connections
// long before Portero's own idle timeout; the sweep notices and closes
// them, and leaves live ones alone, expired read deadlines and all.
func TestDirectTransportSweepsConnectionsTheUpstreamClosed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		upstreamIdle    time.Duration
		wantPooledAfter int
	}{
		{"upstream closes idle connections", 100 * time.Millisecond, 0},
		{"upstream keeps them", time.Minute, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up, conns := countingUpstream(t, tc.upstreamIdle, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "ok")
			})
			// The 50ms response timeout leaves an expired read deadline on
			// the pooled connection (its small answer was read at once).
			tr := directTransportTo(t, up.URL, ForwarderOptions{IdleConnTimeout: time.Minute, ResponseTimeout: 50 * time.Millisecond})
			tr.sweepEvery = 50 * time.Millisecond
			client := &http.Client{Transport: tr}
			if status, _ := getBody(t, client, up.URL+"/"); status != 200 {
				t.Fatalf("status %d", status)
			}
			time.Sleep(500 * time.Millisecond)
			tr.mu.Lock()
			pooled := len(tr.idle)
			tr.mu.Unlock()
			if pooled != tc.wantPooledAfter {
				t.Errorf("%d connections pooled after the sweeps, want %d", pooled, tc.wantPooledAfter)
			}
			if status, _ := getBody(t, client, up.URL+"/"); status != 200 {
				t.Fatalf("status %d", status)
			}
			if want := int32(2 - tc.wantPooledAfter); conns.opened.Load() != want {
				t.Errorf("%d upstream connections, want %d", conns.opened.Load(), want)
			}
		})
	}
}
