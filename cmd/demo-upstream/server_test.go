package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// newTestServer starts the handler behind a real HTTP stack.
func newTestServer(tb testing.TB) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(NewHandler())
	tb.Cleanup(srv.Close)
	return srv
}

// testContext gives each test its own deadline, well inside go test's.
func testContext(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// do sends a request and returns the response with its body read.
func do(tb testing.TB, req *http.Request) (*http.Response, []byte) {
	tb.Helper()
	client := &http.Client{
		// /status/3xx must be seen as sent, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// get sends a GET with its own deadline and returns the response with its
// body read.
func get(tb testing.TB, url string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequestWithContext(testContext(tb, 10*time.Second), http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return do(tb, req)
}

func decodeEcho(tb testing.TB, body []byte) echo {
	tb.Helper()
	var e echo
	if err := json.Unmarshal(body, &e); err != nil {
		tb.Fatalf("decoding echo %q: %v", body, err)
	}
	return e
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// rawRoundTrip writes a hand-made HTTP/1.1 request and parses the answer, for
// request targets and header spellings net/http's client would tidy up.
func rawRoundTrip(tb testing.TB, addr, request string) (*http.Response, []byte) {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, body
}

// patternReader yields the /bytes pattern (byte i is i mod 251) without end,
// copying from one precomputed block so that gigabytes cost no allocation.
type patternReader struct {
	block []byte
	off   uint64
}

func newPatternReader() *patternReader {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return &patternReader{block: b}
}

func (p *patternReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := copy(b[n:], p.block[p.off%251:])
		n += c
		p.off += uint64(c)
	}
	return n, nil
}

func TestAnythingEchoesRequest(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	tests := []struct {
		method, path, query string
		body                string
	}{
		{method: http.MethodGet, path: "/anything"},
		{method: http.MethodGet, path: "/anything/a/b", query: "x=1&y=%20z"},
		{method: http.MethodPost, path: "/anything/upload", body: `{"k":"v"}`},
		{method: http.MethodPut, path: "/anything/put", body: "put body"},
		{method: http.MethodPatch, path: "/anything/", body: "patch"},
		{method: http.MethodDelete, path: "/anything/item/7"},
		{method: http.MethodOptions, path: "/anything"},
		{method: "PURGE", path: "/anything/cache"},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 10*time.Second)
			target := srv.URL + tt.path
			if tt.query != "" {
				target += "?" + tt.query
			}
			req, err := http.NewRequestWithContext(ctx, tt.method, target, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body == "" {
				req.Body, req.ContentLength = nil, 0
			}
			req.Header.Add("X-Multi", "one")
			req.Header.Add("X-Multi", "two")
			req.Header.Set("Authorization", "Bearer legacy")
			resp, body := do(t, req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			e := decodeEcho(t, body)
			wantURI := tt.path
			if tt.query != "" {
				wantURI += "?" + tt.query
			}
			checks := []struct{ name, got, want string }{
				{"method", e.Method, tt.method},
				{"request_uri", e.RequestURI, wantURI},
				{"path", e.Path, tt.path},
				{"raw_query", e.RawQuery, tt.query},
				{"host", e.Host, strings.TrimPrefix(srv.URL, "http://")},
				{"body_sha256", e.BodySHA256, sha256Hex([]byte(tt.body))},
				{"X-Multi", strings.Join(e.Headers["X-Multi"], "|"), "one|two"},
				{"Authorization", strings.Join(e.Headers["Authorization"], "|"), "Bearer legacy"},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
				}
			}
			if e.BodyBytes != int64(len(tt.body)) {
				t.Errorf("body_bytes = %d, want %d", e.BodyBytes, len(tt.body))
			}
			if e.RemoteAddr == "" {
				t.Error("remote_addr is empty")
			}
			if e.Headers == nil || e.Trailers == nil || e.TransferEncoding == nil {
				t.Errorf("empty collections must be {} or [], got %s", body)
			}
		})
	}
}

// TestAnythingShowsTheRawTarget checks that the echo shows the request
// exactly as it arrived: encoded characters, dot segments, doubled slashes and
// header spellings are what a transparent proxy's tests look at.
func TestAnythingShowsTheRawTarget(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	addr := srv.Listener.Addr().String()
	target := "/anything/a%2Fb//c/../%7Euser?q=%20x&q=y&flag"
	resp, body := rawRoundTrip(t, addr, "GET "+target+" HTTP/1.1\r\n"+
		"Host: legacy.example:8443\r\n"+
		"x-auth-user-id: lower\r\n"+
		"X-AUTH-USER-ID: upper\r\n"+
		"X_Auth_User_Id: underscore\r\n"+
		"Connection: close\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	e := decodeEcho(t, body)
	if e.RequestURI != target {
		t.Errorf("request_uri = %q, want %q", e.RequestURI, target)
	}
	if want := "/anything/a/b//c/../~user"; e.Path != want {
		t.Errorf("path = %q, want %q", e.Path, want)
	}
	if want := "/anything/a%2Fb//c/../%7Euser"; e.RawPath != want {
		t.Errorf("raw_path = %q, want %q", e.RawPath, want)
	}
	if want := "q=%20x&q=y&flag"; e.RawQuery != want {
		t.Errorf("raw_query = %q, want %q", e.RawQuery, want)
	}
	if e.Host != "legacy.example:8443" {
		t.Errorf("host = %q", e.Host)
	}
	if got := e.Headers["X-Auth-User-Id"]; len(got) != 2 || got[0] != "lower" || got[1] != "upper" {
		t.Errorf("X-Auth-User-Id = %q, want both spellings merged in order", got)
	}
	if got := e.Headers["X_auth_user_id"]; len(got) != 1 || got[0] != "underscore" {
		t.Errorf("underscore spelling = %q (headers %v)", got, e.Headers)
	}
}

func TestAnythingReportsRequestTrailers(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	resp, body := rawRoundTrip(t, srv.Listener.Addr().String(), "POST /anything/t HTTP/1.1\r\n"+
		"Host: x\r\n"+
		"Transfer-Encoding: chunked\r\n"+
		"Trailer: X-Checksum\r\n"+
		"Connection: close\r\n\r\n"+
		"5\r\nhello\r\n6\r\n world\r\n0\r\n"+
		"X-Checksum: abc\r\n\r\n")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	e := decodeEcho(t, body)
	if e.BodyBytes != 11 || e.BodySHA256 != sha256Hex([]byte("hello world")) {
		t.Errorf("body %d bytes, sha256 %s", e.BodyBytes, e.BodySHA256)
	}
	if got := e.Trailers.Get("X-Checksum"); got != "abc" {
		t.Errorf("trailers = %v", e.Trailers)
	}
	if len(e.TransferEncoding) != 1 || e.TransferEncoding[0] != "chunked" || e.ContentLength != -1 {
		t.Errorf("transfer_encoding %q, content_length %d", e.TransferEncoding, e.ContentLength)
	}
}

func TestAnythingRejectsBrokenBody(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	resp, body := rawRoundTrip(t, srv.Listener.Addr().String(), "POST /anything HTTP/1.1\r\n"+
		"Host: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"+
		"zz\r\nhello\r\n0\r\n\r\n")
	checkDetail(t, resp, body, http.StatusBadRequest)
}

func TestBytes(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	for _, n := range []int{0, 1, 250, 251, 252, patternBlock - 1, patternBlock, patternBlock + 1, 1_000_003} {
		for _, chunked := range []bool{false, true} {
			prefix := "/bytes/"
			if chunked {
				prefix = "/chunked/"
			}
			t.Run(prefix+strconv.Itoa(n), func(t *testing.T) {
				t.Parallel()
				resp, body := get(t, srv.URL+prefix+strconv.Itoa(n))
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				if len(body) != n {
					t.Fatalf("got %d bytes, want %d", len(body), n)
				}
				for i, b := range body {
					if b != byte(i%251) {
						t.Fatalf("byte %d = %d, want %d", i, b, i%251)
					}
				}
				if chunked {
					if resp.ContentLength != -1 || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
						t.Errorf("want chunked without length; Content-Length %d, Transfer-Encoding %q", resp.ContentLength, resp.TransferEncoding)
					}
				} else if resp.ContentLength != int64(n) || len(resp.TransferEncoding) != 0 {
					t.Errorf("Content-Length %d, Transfer-Encoding %q", resp.ContentLength, resp.TransferEncoding)
				}
			})
		}
	}
}

func TestBytesHEADSendsOnlyHeaders(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	req, err := http.NewRequestWithContext(testContext(t, 10*time.Second), http.MethodHead, srv.URL+"/bytes/8589934592", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 8<<30 || len(body) != 0 {
		t.Errorf("status %d, Content-Length %d, %d body bytes", resp.StatusCode, resp.ContentLength, len(body))
	}
}

// checkDetail checks a FastAPI-style JSON error.
func checkDetail(tb testing.TB, resp *http.Response, body []byte, code int) {
	tb.Helper()
	if resp.StatusCode != code {
		tb.Errorf("status %d, want %d (body %s)", resp.StatusCode, code, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("Content-Type %q", ct)
	}
	var e struct{ Detail string }
	if err := json.Unmarshal(body, &e); err != nil || e.Detail == "" {
		tb.Errorf("body %q is not {\"detail\": ...} (%v)", body, err)
	}
}

func TestInvalidInputs(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	tests := []struct {
		path string
		code int
	}{
		{"/bytes/", http.StatusBadRequest},
		{"/bytes/abc", http.StatusBadRequest},
		{"/bytes/-1", http.StatusBadRequest},
		{"/bytes/+5", http.StatusBadRequest},
		{"/bytes/0x10", http.StatusBadRequest},
		{"/bytes/1.5", http.StatusBadRequest},
		{"/bytes/5/extra", http.StatusBadRequest},
		{"/bytes/8589934593", http.StatusBadRequest}, // 8 GiB + 1
		{"/bytes/99999999999999999999999", http.StatusBadRequest},
		{"/chunked/x", http.StatusBadRequest},
		{"/status/", http.StatusBadRequest},
		{"/status/abc", http.StatusBadRequest},
		{"/status/99", http.StatusBadRequest},
		{"/status/100", http.StatusBadRequest},
		{"/status/103", http.StatusBadRequest},
		{"/status/199", http.StatusBadRequest},
		{"/status/600", http.StatusBadRequest},
		{"/status/-200", http.StatusBadRequest},
		{"/stream?n=x", http.StatusBadRequest},
		{"/stream?n=100001", http.StatusBadRequest},
		{"/stream?interval_ms=60001", http.StatusBadRequest},
		{"/stream?n=%zz", http.StatusBadRequest},
		{"/slow?ms=-1", http.StatusBadRequest},
		{"/slow?ms=1e3", http.StatusBadRequest},
		{"/slow?ms=", http.StatusBadRequest},
		{"/slow?ms=600001", http.StatusBadRequest},
		{"/nope", http.StatusNotFound},
		{"/anythingelse", http.StatusNotFound},
		{"/", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv.URL+tt.path)
			checkDetail(t, resp, body, tt.code)
		})
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	for _, code := range []int{200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 418, 422, 500, 502, 503, 504, 599} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv.URL+"/status/"+strconv.Itoa(code))
			if resp.StatusCode != code {
				t.Fatalf("status %d, want %d", resp.StatusCode, code)
			}
			if code == 204 || code == 304 {
				if len(body) != 0 {
					t.Errorf("body %q, want none", body)
				}
				return
			}
			var got struct{ Status int }
			if err := json.Unmarshal(body, &got); err != nil || got.Status != code {
				t.Errorf("body %q (%v)", body, err)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	resp, body := get(t, srv.URL+"/healthz")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"ok"`)) {
		t.Errorf("status %d, body %s", resp.StatusCode, body)
	}
}

func TestTrailers(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	resp, body := get(t, srv.URL+"/trailers")
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Trailer"); got != "" {
		// net/http moves the declaration into resp.Trailer.
		t.Errorf("Trailer header left in place: %q", got)
	}
	if got := resp.Trailer.Get("X-Trailer-Check"); got != "ok" {
		t.Errorf("trailer X-Trailer-Check = %q, trailers %v", got, resp.Trailer)
	}
}

// readEvents reads server-sent events and when each arrived.
func readEvents(tb testing.TB, body io.Reader) (events []string, arrived []time.Time) {
	tb.Helper()
	br := bufio.NewReader(body)
	for {
		line, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) && line == "" {
			return events, arrived
		}
		if err != nil {
			tb.Fatalf("reading events: %v (line %q)", err, line)
		}
		switch {
		case strings.HasPrefix(line, "data: "):
			events = append(events, strings.TrimSuffix(strings.TrimPrefix(line, "data: "), "\n"))
			arrived = append(arrived, time.Now())
		case line == "\n":
		default:
			tb.Fatalf("unexpected line %q", line)
		}
	}
}

func TestStreamDefaults(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	req, err := http.NewRequestWithContext(testContext(t, 10*time.Second), http.MethodGet, srv.URL+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	events, _ := readEvents(t, resp.Body)
	if len(events) != 10 {
		t.Fatalf("got %d events, want 10: %q", len(events), events)
	}
	for i, ev := range events {
		if want := fmt.Sprintf(`{"n":%d}`, i); ev != want {
			t.Errorf("event %d = %q, want %q", i, ev, want)
		}
	}
	// Nine pauses of 100 ms; a timer never fires early.
	if elapsed := time.Since(start); elapsed < 900*time.Millisecond {
		t.Errorf("10 events took %s, want at least 900ms", elapsed)
	}
}

// TestStreamFlushesEachEvent checks that events arrive as they are sent, not
// all at once at the end: the spread between the first and last arrival must
// reflect the pauses between them. Scheduling delays can only late-shift the
// first arrival by so much, so half the nominal spread is a safe bound.
func TestStreamFlushesEachEvent(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	const n, interval = 4, 150 * time.Millisecond
	req, err := http.NewRequestWithContext(testContext(t, 10*time.Second), http.MethodGet,
		fmt.Sprintf("%s/stream?n=%d&interval_ms=%d", srv.URL, n, interval.Milliseconds()), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events, arrived := readEvents(t, resp.Body)
	if len(events) != n {
		t.Fatalf("got %d events, want %d", len(events), n)
	}
	if spread := arrived[n-1].Sub(arrived[0]); spread < (n-1)*interval/2 {
		t.Errorf("first and last event arrived %s apart; want about %s (were events buffered?)", spread, (n-1)*interval)
	}
}

func TestStreamStopsWhenClientLeaves(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(NewHandler())
	ctx, cancel := context.WithCancel(testContext(t, 10*time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/stream?n=100000&interval_ms=60000", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	// httptest.Server.Close waits for handlers; a handler that ignored the
	// client leaving would hold it for a minute.
	start := time.Now()
	srv.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("server took %s to close", d)
	}
}

func TestSlow(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	for _, ms := range []int{0, 200} {
		t.Run(strconv.Itoa(ms), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			resp, body := get(t, fmt.Sprintf("%s/slow?ms=%d", srv.URL, ms))
			if d := time.Since(start); d < time.Duration(ms)*time.Millisecond {
				t.Errorf("answered after %s, want at least %dms", d, ms)
			}
			var got struct {
				SleptMS int `json:"slept_ms"`
			}
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.SleptMS != ms {
				t.Errorf("status %d, body %s", resp.StatusCode, body)
			}
		})
	}
}

func TestSlowStopsWhenClientLeaves(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(NewHandler())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow?ms=600000", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("got %d before the client gave up", resp.StatusCode)
	}
	start := time.Now()
	srv.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("server took %s to close", d)
	}
}

func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	ctx := testContext(t, 10*time.Second)
	c, resp, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{
		Subprotocols: []string{"echo.v2", "echo.v1"},
		// Any origin is accepted: the proxy's tests choose their own.
		HTTPHeader: http.Header{"Origin": {"https://elsewhere.example"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("status %d", resp.StatusCode)
	}
	if c.Subprotocol() != "echo.v2" {
		t.Errorf("subprotocol %q, want the client's first choice", c.Subprotocol())
	}
	c.SetReadLimit(-1)

	big := make([]byte, 4<<20) // well past coder/websocket's 32 KiB default read limit
	if _, err := io.ReadFull(newPatternReader(), big); err != nil {
		t.Fatal(err)
	}
	messages := []struct {
		typ  websocket.MessageType
		data []byte
	}{
		{websocket.MessageText, []byte("hello")},
		{websocket.MessageBinary, []byte{0, 1, 2, 0xff}},
		{websocket.MessageText, []byte("")},
		{websocket.MessageBinary, big},
		{websocket.MessageText, []byte("after the big one")},
	}
	for i, m := range messages {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("message %d: write: %v", i, err)
		}
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("message %d: read: %v", i, err)
		}
		if typ != m.typ || !bytes.Equal(data, m.data) {
			t.Errorf("message %d: got %v of %d bytes, want %v of %d bytes", i, typ, len(data), m.typ, len(m.data))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestWebSocketWithoutSubprotocol(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	ctx := testContext(t, 10*time.Second)
	c, _, err := websocket.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "" {
		t.Errorf("subprotocol %q, want none", c.Subprotocol())
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, data, err := c.Read(ctx); err != nil || string(data) != "x" {
		t.Errorf("read %q, %v", data, err)
	}
}

func TestWebSocketRefusesPlainRequest(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	resp, _ := get(t, srv.URL+"/ws")
	if resp.StatusCode < 400 || resp.StatusCode > 499 {
		t.Errorf("status %d, want a 4xx", resp.StatusCode)
	}
}

// heapPeak samples HeapInuse until stop is called and returns the highest
// value seen. Sampling beats reading once at the end: memory that a buffering
// handler allocated may already be freed by then.
func heapPeak(tb testing.TB) (stop func() uint64) {
	tb.Helper()
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapInuse)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestLargeBodiesFlatMemory moves 128 MiB up through /anything and down
// through /bytes and /chunked and checks that the heap stays flat: the body
// is streamed, never held. It does not run in parallel, so other tests'
// allocations cannot blur the measurement (parallel tests wait until
// sequential ones finish).
func TestLargeBodiesFlatMemory(t *testing.T) {
	const (
		size      = 256 << 20
		maxGrowth = 16 << 20 // buffering the body would be 128 MiB or more
	)
	srv := newTestServer(t)
	ctx := testContext(t, 60*time.Second)

	want := sha256.New()
	if _, err := io.CopyN(want, newPatternReader(), size); err != nil {
		t.Fatal(err)
	}
	wantSum := hex.EncodeToString(want.Sum(nil))

	t.Run("upload", func(t *testing.T) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/anything/upload",
			io.LimitReader(newPatternReader(), size))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = size
		base := heapInuse()
		stop := heapPeak(t)
		resp, body := do(t, req)
		peak := stop()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, body %s", resp.StatusCode, body)
		}
		e := decodeEcho(t, body)
		if e.BodyBytes != size || e.BodySHA256 != wantSum {
			t.Errorf("server saw %d bytes with sha256 %s, want %d bytes with %s", e.BodyBytes, e.BodySHA256, size, wantSum)
		}
		checkGrowth(t, base, peak, maxGrowth)
	})

	for _, prefix := range []string{"/bytes/", "/chunked/"} {
		t.Run(strings.Trim(prefix, "/"), func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+prefix+strconv.Itoa(size), nil)
			if err != nil {
				t.Fatal(err)
			}
			base := heapInuse()
			stop := heapPeak(t)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := sha256.New()
			n, err := io.Copy(got, resp.Body)
			peak := stop()
			if err != nil {
				t.Fatal(err)
			}
			if n != size || hex.EncodeToString(got.Sum(nil)) != wantSum {
				t.Errorf("got %d bytes with sha256 %x, want %d bytes with %s", n, got.Sum(nil), size, wantSum)
			}
			checkGrowth(t, base, peak, maxGrowth)
		})
	}
}

func checkGrowth(tb testing.TB, base, peak, limit uint64) {
	tb.Helper()
	var growth uint64
	if peak > base {
		growth = peak - base
	}
	tb.Logf("heap in use: %d KiB before, %d KiB at peak", base>>10, peak>>10)
	if growth > limit {
		tb.Errorf("heap grew by %d MiB, want at most %d MiB", growth>>20, limit>>20)
	}
}

func TestParseCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw   string
		limit uint64
		want  uint64
		err   error
	}{
		{"0", 10, 0, nil},
		{"10", 10, 10, nil},
		{"007", 10, 7, nil},
		{"11", 10, 0, errOutOfRange},
		{"18446744073709551615", 1<<64 - 1, 1<<64 - 1, nil},
		{"18446744073709551616", 1<<64 - 1, 0, errOutOfRange},
		{"", 10, 0, errNotNumber},
		{"-1", 10, 0, errNotNumber},
		{"+1", 10, 0, errNotNumber},
		{" 1", 10, 0, errNotNumber},
		{"1_0", 10, 0, errNotNumber},
		{"0x1", 10, 0, errNotNumber},
		{"١", 10, 0, errNotNumber}, // an Arabic-Indic digit is not ASCII
	}
	for _, tt := range tests {
		got, err := parseCount(tt.raw, tt.limit)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("parseCount(%q, %d) = %d, %v; want %d, %v", tt.raw, tt.limit, got, err, tt.want, tt.err)
		}
	}
}

// FuzzParseCount checks that whatever a client puts in a path or query
// parameter, parseCount either refuses it or returns the number that the
// string spells, within the limit.
func FuzzParseCount(f *testing.F) {
	for _, s := range []string{"0", "42", "8589934592", "8589934593", "", "-1", "+1", "1e3", "0x10", "99999999999999999999999", " 1", "١"} {
		f.Add(s, uint64(maxBytes))
	}
	f.Fuzz(func(t *testing.T, raw string, limit uint64) {
		n, err := parseCount(raw, limit)
		if err != nil {
			if n != 0 {
				t.Errorf("parseCount(%q) = %d with error %v", raw, n, err)
			}
			return
		}
		if n > limit {
			t.Errorf("parseCount(%q, %d) = %d, above the limit", raw, limit, n)
		}
		if strings.TrimLeft(raw, "0") != strings.TrimLeft(strconv.FormatUint(n, 10), "0") {
			t.Errorf("parseCount(%q) = %d", raw, n)
		}
	})
}
