package proxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Front is the public listener's handler. Every request gets an id, a client
// IP and one access-log line; /-/ and Portero's own endpoints are served
// here and never forwarded; everything else goes to the proxy handler.
type Front struct {
	own         http.Handler
	ownPrefixes []string
	ownTimeout  time.Duration
	health      http.Handler
	forward     http.Handler
	ips         *IPResolver
	log         *zap.Logger
	metrics     *Metrics

	accessFields sync.Pool // *[]zap.Field, one access-log line's
}

// FrontOptions wires the front door.
type FrontOptions struct {
	Own         http.Handler // Portero's own endpoints; nil answers 404
	OwnPrefixes []string     // path prefixes Own serves, e.g. "/auth", "/users"
	// OwnTimeout is the deadline of each request to Own (0: none). Own
	// endpoints wait on the stores, and a database that stops answering
	// mid-query would otherwise hold the request forever.
	OwnTimeout time.Duration
	Health     http.Handler // serves /-/healthz and /-/readyz
	Forward    http.Handler // the route layer in front of the upstream
	IPs        *IPResolver
	Log        *zap.Logger
	Metrics    *Metrics // nil records none
}

// NewFront builds the front door.
func NewFront(o FrontOptions) *Front {
	return &Front{own: o.Own, ownPrefixes: o.OwnPrefixes, ownTimeout: o.OwnTimeout, health: o.Health, forward: o.Forward, ips: o.IPs, log: o.Log, metrics: o.Metrics}
}

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := &requestInfo{id: requestID(r.Header.Get("X-Request-Id"))}
	info.peer, info.peerTrusted, info.clientIP = f.ips.Resolve(r)
	r = r.WithContext(withInfo(r.Context(), info))
	sw := &statusWriter{ResponseWriter: w}
	sw.Header().Set("X-Request-Id", info.id)

	defer func() {
		rec := recover()
		if rec != nil && rec != http.ErrAbortHandler {
			f.log.Error("panic serving request", zap.String("request_id", info.id), zap.Any("panic", rec), zap.ByteString("stack", debug.Stack()))
			if !sw.wroteHeader {
				WriteError(sw, r, http.StatusInternalServerError, "INTERNAL_ERROR")
			}
		}
		f.logAccess(r, sw, info, start)
		if rec == http.ErrAbortHandler {
			panic(rec) // let net/http abort the connection, as ReverseProxy intends
		}
	}()

	switch r.Method {
	case http.MethodTrace, http.MethodConnect:
		sw.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		WriteError(sw, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		return
	}

	path := r.URL.Path
	switch {
	case path == "/-" || strings.HasPrefix(path, "/-/"):
		info.route, info.mode = "/-/", "ops"
		f.health.ServeHTTP(sw, r)
	case f.isOwn(path):
		info.route, info.mode = "own", "own"
		if f.own == nil {
			WriteError(sw, r, http.StatusNotFound, "NOT_FOUND")
			return
		}
		if f.ownTimeout > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), f.ownTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		f.own.ServeHTTP(sw, r)
	default:
		f.forward.ServeHTTP(sw, r)
	}
}

func (f *Front) isOwn(path string) bool {
	for _, p := range f.ownPrefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

func (f *Front) logAccess(r *http.Request, sw *statusWriter, info *requestInfo, start time.Time) {
	status := sw.status
	if info.clientGone && !sw.wroteHeader {
		status = 499 // client closed the request before an answer
	} else if status == 0 {
		status = http.StatusOK
	}
	// The fields are copied out by the time Info returns (encoded, or
	// copied by a test's observer), so one slice per request is enough,
	// taken from a pool: it was the access log's largest allocation.
	held, _ := f.accessFields.Get().(*[]zap.Field)
	if held == nil {
		held = new([]zap.Field)
	}
	fields := append((*held)[:0],
		zap.String("request_id", info.id),
		zap.String("method", r.Method),
		zap.String("path", truncate(r.URL.EscapedPath(), 1024)),
		zap.String("route", info.route),
		zap.String("mode", info.mode),
		zap.Int("status", status),
		zap.Int64("bytes", sw.bytes),
		zap.Duration("duration", time.Since(start)),
		zap.String("client_ip", info.clientIPText()),
	)
	if info.upstreamDur > 0 {
		fields = append(fields, zap.Duration("upstream_duration", info.upstreamDur))
	}
	if info.userID != "" {
		fields = append(fields, zap.String("user_id", info.userID))
	}
	f.log.Info("request", fields...)
	clear(fields) // drop the references the strings hold until reuse
	*held = fields[:0]
	f.accessFields.Put(held)
	f.metrics.observe(info, status, time.Since(start))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// requestID keeps a client's id when it is short and plain (so it can be
// logged and forwarded safely), and makes a new one otherwise.
func requestID(in string) string {
	if n := len(in); n > 0 && n <= 128 {
		ok := true
		for i := 0; i < n && ok; i++ {
			c := in[i]
			ok = ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
				c == '-' || c == '_' || c == '.' || c == ':'
		}
		if ok {
			return in
		}
	}
	var b [16]byte
	var text [32]byte
	_, _ = rand.Read(b[:])
	hex.Encode(text[:], b[:])
	return string(text[:])
}

// statusWriter records the status and size of the answer; it passes Flush
// and Hijack through so streams and WebSocket upgrades keep working.
type statusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusSwitchingProtocols, true
	}
	return conn, brw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ErrorResponder maps errors from the proxy path to statuses; upstream
// causes go to the log, never to the client.
func ErrorResponder(log *zap.Logger) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		status, code, kind := http.StatusInternalServerError, "INTERNAL_ERROR", ""
		switch {
		case errors.Is(err, ErrUpstreamTimeout):
			status, code, kind = http.StatusGatewayTimeout, "UPSTREAM_TIMEOUT", "timeout"
		case errors.Is(err, ErrUpstreamUnavailable):
			status, code, kind = http.StatusBadGateway, "UPSTREAM_UNAVAILABLE", "unavailable"
		}
		if info := infoFrom(r.Context()); info != nil {
			info.upstreamErr = kind
		}
		log.Warn("proxy error", zap.String("request_id", RequestID(r.Context())), zap.Int("status", status), zap.Error(err))
		WriteError(w, r, status, code)
	}
}
