package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Limits on what a client may ask for. They keep a mistyped test from tying
// the process up for hours; they are far above what any test needs.
const (
	maxBytes      = 8 << 30 // /bytes and /chunked: a 1 GiB transfer test fits eight times over
	maxEvents     = 100_000 // /stream?n=
	maxIntervalMS = 60_000  // /stream?interval_ms=
	maxSlowMS     = 600_000 // /slow?ms=: longer than any upstream timeout worth testing

	defaultEvents     = 10
	defaultIntervalMS = 100

	// patternPeriod is the period of the /bytes and /chunked body: the byte at
	// offset i is byte(i % patternPeriod). A prime period never lines up with
	// power-of-two buffer sizes, so a proxy that drops, repeats or reorders a
	// buffer's worth of bytes changes the body's hash.
	patternPeriod = 251
	// patternBlock is the size of one write; a whole number of periods, so
	// consecutive writes of the same block continue the pattern seamlessly.
	patternBlock = patternPeriod * 256
)

// Errors of the numeric parameters, returned by parseCount.
var (
	errNotNumber  = errors.New("not a decimal number")
	errOutOfRange = errors.New("out of range")
)

// server is the demo upstream. It is unexported so that main can reach the
// WebSocket bookkeeping that graceful shutdown needs; NewHandler hands out
// only the http.Handler.
type server struct {
	// shutdown is done when the process begins to shut down.
	// http.Server.Shutdown neither waits for nor closes hijacked connections,
	// so open WebSockets watch this context and close themselves.
	shutdown context.Context
	// sockets counts open WebSockets so that shutdown can wait for them.
	sockets sync.WaitGroup
	// pattern is one patternBlock of the /bytes body, built once.
	pattern []byte
}

// NewHandler returns the demo upstream's handler: a stand-in for the legacy
// app that echoes what it receives and offers streaming, WebSocket, status,
// delay and trailer endpoints for the proxy's tests. See ServeHTTP.
func NewHandler() http.Handler {
	return newServer(context.Background())
}

func newServer(shutdown context.Context) *server {
	p := make([]byte, patternBlock)
	for i := range p {
		p[i] = byte(i % patternPeriod)
	}
	return &server{shutdown: shutdown, pattern: p}
}

// ServeHTTP dispatches on r.URL.Path by hand rather than through
// http.ServeMux: the mux cleans paths and redirects unclean ones (`//`,
// `/../`), and this upstream exists to show the proxy's tests exactly which
// path arrived, unclean or not.
//
//	/anything, /anything/...  any method: JSON echo of the request
//	/bytes/{n}                n pattern bytes with Content-Length
//	/chunked/{n}              n pattern bytes, chunked, flushed per block
//	/stream                   server-sent events (?n=10&interval_ms=100)
//	/ws                       WebSocket echo, text and binary
//	/status/{code}            answers code (200-599)
//	/slow?ms=N                answers after N ms
//	/trailers                 a body followed by the trailer X-Trailer-Check: ok
//	/healthz                  200
//
// Errors are JSON `{"detail": "..."}`, the shape FastAPI (the legacy app's
// framework) uses.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/anything" || strings.HasPrefix(p, "/anything/"):
		s.anything(w, r)
	case strings.HasPrefix(p, "/bytes/"):
		s.bytes(w, r, strings.TrimPrefix(p, "/bytes/"), true)
	case strings.HasPrefix(p, "/chunked/"):
		s.bytes(w, r, strings.TrimPrefix(p, "/chunked/"), false)
	case p == "/stream":
		s.stream(w, r)
	case p == "/ws":
		s.webSocket(w, r)
	case strings.HasPrefix(p, "/status/"):
		s.status(w, strings.TrimPrefix(p, "/status/"))
	case p == "/slow":
		s.slow(w, r)
	case p == "/trailers":
		s.trailers(w)
	case p == "/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	default:
		writeDetail(w, http.StatusNotFound, "Not Found")
	}
}

// echo is the /anything answer.
type echo struct {
	Method string `json:"method"`
	// RequestURI is the request target exactly as it arrived on the wire,
	// still encoded.
	RequestURI string `json:"request_uri"`
	Path       string `json:"path"`
	RawPath    string `json:"raw_path"`
	RawQuery   string `json:"raw_query"`
	Host       string `json:"host"`
	Proto      string `json:"proto"`
	RemoteAddr string `json:"remote_addr"`
	// Headers holds every request header with all its values, under the
	// names net/http canonicalised them to. Host is not among them (see
	// Host); net/http also moves Transfer-Encoding out (see TransferEncoding).
	Headers          http.Header `json:"headers"`
	TransferEncoding []string    `json:"transfer_encoding"`
	// ContentLength is -1 when the length was not declared (chunked).
	ContentLength int64  `json:"content_length"`
	BodyBytes     int64  `json:"body_bytes"`
	BodySHA256    string `json:"body_sha256"`
	// Trailers are the request trailers, known only once the body is read.
	Trailers http.Header `json:"trailers"`
}

// anything echoes the request. The body is streamed through SHA-256 and
// never held, so a gigabyte upload costs no more memory than a small one.
func (s *server) anything(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	e := echo{
		Method:           r.Method,
		RequestURI:       r.RequestURI,
		Path:             r.URL.Path,
		RawPath:          r.URL.RawPath,
		RawQuery:         r.URL.RawQuery,
		Host:             r.Host,
		Proto:            r.Proto,
		RemoteAddr:       r.RemoteAddr,
		Headers:          r.Header,
		TransferEncoding: r.TransferEncoding,
		ContentLength:    r.ContentLength,
		BodyBytes:        n,
		BodySHA256:       hex.EncodeToString(h.Sum(nil)),
		Trailers:         r.Trailer,
	}
	// Empty collections are {} and [], never null, so clients can index them.
	if e.Headers == nil {
		e.Headers = http.Header{}
	}
	if e.Trailers == nil {
		e.Trailers = http.Header{}
	}
	if e.TransferEncoding == nil {
		e.TransferEncoding = []string{}
	}
	writeJSON(w, http.StatusOK, e)
}

// bytes writes n bytes of the pattern (see patternPeriod), with a
// Content-Length when withLength is set and chunked otherwise.
func (s *server) bytes(w http.ResponseWriter, r *http.Request, raw string, withLength bool) {
	n, err := parseCount(raw, maxBytes)
	if err != nil {
		writeDetail(w, http.StatusBadRequest, fmt.Sprintf("byte count %q: %v (0 to %d)", raw, err, uint64(maxBytes)))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if withLength {
		w.Header().Set("Content-Length", strconv.FormatUint(n, 10))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return // net/http would discard the body anyway; do not generate gigabytes for nothing
	}
	rc := http.NewResponseController(w)
	if !withLength {
		// Committing the header before the body is complete is what makes
		// net/http chunk the response; otherwise a small body would get a
		// Content-Length computed for it.
		if err := rc.Flush(); err != nil {
			return
		}
	}
	for n > 0 {
		block := s.pattern
		if n < uint64(len(block)) {
			block = block[:n]
		}
		if _, err := w.Write(block); err != nil {
			return // the client went away
		}
		n -= uint64(len(block))
		if !withLength {
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// stream sends server-sent events `data: {"n":i}` for i = 0 … n-1, flushing
// each one and pausing interval_ms between them.
func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "query: "+err.Error())
		return
	}
	n, err := queryCount(q, "n", defaultEvents, maxEvents)
	if err != nil {
		writeDetail(w, http.StatusBadRequest, err.Error())
		return
	}
	ms, err := queryCount(q, "interval_ms", defaultIntervalMS, maxIntervalMS)
	if err != nil {
		writeDetail(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	tick := time.NewTicker(time.Duration(max(ms, 1)) * time.Millisecond)
	defer tick.Stop()
	for i := range n {
		if i > 0 && ms > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
		if _, err := fmt.Fprintf(w, "data: {\"n\":%d}\n\n", i); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// webSocket echoes every message back with its type, streaming it through so
// that message size does not matter. Any origin is accepted and any offered
// subprotocol is agreed to: this is a test double, and the proxy's tests need
// to see that Origin and Sec-WebSocket-Protocol pass through unchanged.
func (s *server) webSocket(w http.ResponseWriter, r *http.Request) {
	// Counted before Accept hijacks the connection: until then http.Server
	// tracks the connection, so Shutdown cannot return before this Add, and
	// waitWebSockets never races with it.
	s.sockets.Add(1)
	defer s.sockets.Done()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		Subprotocols:       offeredSubprotocols(r.Header),
	})
	if err != nil {
		return // Accept has already answered the client
	}
	c.SetReadLimit(-1)

	closing := make(chan struct{})
	stop := context.AfterFunc(s.shutdown, func() {
		defer close(closing)
		_ = c.Close(websocket.StatusGoingAway, "server shutting down")
	})
	defer func() {
		if stop() {
			_ = c.CloseNow()
		} else {
			<-closing // let the close handshake finish
		}
	}()

	ctx := r.Context()
	for {
		typ, rd, err := c.Reader(ctx)
		if err != nil {
			return // the peer closed, or the connection broke
		}
		wr, err := c.Writer(ctx, typ)
		if err != nil {
			return
		}
		if _, err := io.Copy(wr, rd); err != nil {
			return
		}
		if err := wr.Close(); err != nil {
			return
		}
	}
}

// waitWebSockets waits until every WebSocket handler has returned, or ctx
// ends.
func (s *server) waitWebSockets(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.sockets.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for WebSockets to close: %w", ctx.Err())
	}
}

// offeredSubprotocols lists the subprotocols the client offered, in order.
func offeredSubprotocols(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// status answers with the code named in the path. 1xx codes are refused: an
// informational response cannot end a request.
func (s *server) status(w http.ResponseWriter, raw string) {
	code, err := parseCount(raw, 599)
	if err == nil && code < 200 {
		err = errOutOfRange
	}
	if err != nil {
		writeDetail(w, http.StatusBadRequest, fmt.Sprintf("status code %q: %v (200 to 599)", raw, err))
		return
	}
	writeJSON(w, int(code), map[string]any{"status": code, "description": http.StatusText(int(code))})
}

// slow answers after ms milliseconds, and gives up silently if the client
// leaves first. Nothing is written before the wait, so a proxy's
// response-header timeout fires as it would against a stuck upstream.
func (s *server) slow(w http.ResponseWriter, r *http.Request) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "query: "+err.Error())
		return
	}
	ms, err := queryCount(q, "ms", 0, maxSlowMS)
	if err != nil {
		writeDetail(w, http.StatusBadRequest, err.Error())
		return
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return
	case <-t.C:
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"slept_ms": ms})
}

// trailers answers with a body followed by the trailer X-Trailer-Check: ok,
// declared up front in the Trailer header as RFC 9110 asks.
func (s *server) trailers(w http.ResponseWriter) {
	w.Header().Set("Trailer", "X-Trailer-Check")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"trailers":["X-Trailer-Check"]}`+"\n")
	w.Header().Set("X-Trailer-Check", "ok")
}

// queryCount reads the first value of the query parameter key as a count
// no larger than limit; def when the parameter is absent.
func queryCount(q url.Values, key string, def, limit uint64) (uint64, error) {
	if !q.Has(key) {
		return def, nil
	}
	raw := q.Get(key)
	n, err := parseCount(raw, limit)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w (0 to %d)", key, raw, err, limit)
	}
	return n, nil
}

// parseCount parses a non-negative decimal number no larger than limit.
// Unlike strconv.ParseUint alone it refuses signs, and it refuses an empty
// string or one with anything but ASCII digits before trying, so `+5`, `5 `
// and `0x10` are errors rather than surprises.
func parseCount(raw string, limit uint64) (uint64, error) {
	if raw == "" {
		return 0, errNotNumber
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] < '0' || raw[i] > '9' {
			return 0, errNotNumber
		}
	}
	n, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || n > limit {
		return 0, errOutOfRange // only overflow is left for ParseUint to refuse
	}
	return n, nil
}

// writeDetail writes a FastAPI-style error body.
func writeDetail(w http.ResponseWriter, code int, detail string) {
	writeJSON(w, code, map[string]string{"detail": detail})
}

// writeJSON writes v as JSON with the given status; statuses that forbid a
// body (204, 304) get none.
func writeJSON(w http.ResponseWriter, code int, v any) {
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	// Echoed values are shown as sent; `<` stays `<` rather than `\u003c`.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a failed write means the client left; nothing to tell it
}
