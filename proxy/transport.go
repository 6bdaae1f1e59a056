package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// directTransport makes the plain exchanges of a proxy (a request without
// a body, to a plain-HTTP upstream) on the calling goroutine: it writes the
// request and reads the answer itself, over a pooled keep-alive
// connection. http.Transport gives every connection two goroutines and
// hands each request and response between them; on a busy two-core machine
// those hand-offs were about a tenth of the proxy's CPU, and the
// goroutines' stacks much of its memory with a thousand clients. The HTTP
// itself is still the standard library's (Request.Write, ReadResponse).
// Everything else (request bodies, upgrades, CONNECT) goes to fallback.
type directTransport struct {
	fallback        http.RoundTripper
	dial            func(ctx context.Context, network, addr string) (net.Conn, error)
	host            string // the upstream's host:port, as in the outbound URL
	addr            string // what is dialled: host with the scheme's port
	responseTimeout time.Duration
	idleTimeout     time.Duration
	sweepEvery      time.Duration // how often idle connections are checked
	maxIdle         int

	mu       sync.Mutex
	idle     []*directConn // most recently used last
	sweeping bool
}

// directConn is one keep-alive connection to the upstream. lr limits what
// the reader may take from the connection while response headers are read.
type directConn struct {
	conn      net.Conn
	peek      *livenessPeek // nil if the connection cannot be peeked at
	lr        io.LimitedReader
	br        *bufio.Reader
	idleSince time.Time
}

// errStaleConn marks a failure on a reused connection before the upstream
// sent a byte: the upstream had closed it while it was idle, and the
// request (bodiless and idempotent) may be sent again on a new one.
var errStaleConn = errors.New("upstream closed an idle connection")

// maxInformational bounds the 1xx responses read before the final one.
const maxInformational = 5

func newDirectTransport(opts ForwarderOptions, dial func(ctx context.Context, network, addr string) (net.Conn, error), fallback http.RoundTripper) *directTransport {
	u := opts.Upstream
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	maxIdle := opts.MaxIdleConns
	if maxIdle <= 0 {
		maxIdle = defaultMaxIdleConns
	}
	return &directTransport{
		fallback:        fallback,
		dial:            dial,
		host:            u.Host,
		addr:            addr,
		responseTimeout: opts.ResponseTimeout,
		idleTimeout:     opts.IdleConnTimeout,
		sweepEvery:      min(opts.IdleConnTimeout, 5*time.Second),
		maxIdle:         maxIdle,
	}
}

// direct reports whether r is an exchange this transport makes itself: one
// that can be sent again if a pooled connection turns out to be dead, that
// has nothing to stream upstream while the answer comes back, and that
// cannot turn the connection into something else.
func (t *directTransport) direct(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		return false
	}
	return r.URL.Scheme == "http" && r.URL.Host == t.host &&
		(r.Body == nil || r.Body == http.NoBody) && r.ContentLength == 0 &&
		len(r.TransferEncoding) == 0 && len(r.Trailer) == 0 &&
		r.Header.Get("Upgrade") == "" && r.Header.Get("Expect") == ""
}

func (t *directTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !t.direct(r) {
		return t.fallback.RoundTrip(r)
	}
	if !validHeaders(r.Header) {
		// The standard transport refuses such a request with its own
		// error; Request.Write would send some of it mangled.
		return t.fallback.RoundTrip(r)
	}
	ctx := r.Context()
	for retried := false; ; retried = true {
		// The resend dials: the next pooled connection may have died in
		// the same moment (an upstream closing a burst's connections).
		pc, reused, err := t.get(ctx, retried)
		if err != nil {
			return nil, err
		}
		res, err := t.exchange(ctx, r, pc, reused)
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, errStaleConn) || retried || ctx.Err() != nil {
			return nil, err
		}
	}
}

// exchange sends r on pc and reads the response headers. On success the
// connection belongs to the response's body, which gives it back to the
// pool once read to the end; on failure it is closed.
func (t *directTransport) exchange(ctx context.Context, r *http.Request, pc *directConn, reused bool) (*http.Response, error) {
	// A client that goes away aborts the exchange, headers or body, by
	// closing the connection (a deadline could be cleared again by the
	// exchange itself). A connection whose stop came too late is never
	// pooled.
	stop := context.AfterFunc(ctx, func() { _ = pc.conn.Close() })
	fail := func(err error, nothingReceived bool) (*http.Response, error) {
		stop()
		_ = pc.conn.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("%w: %w", cerr, err)
		}
		// A wait that timed out is the upstream being slow, not a dead
		// connection: sent again it would wait as long a second time.
		if reused && nothingReceived && !isTimeout(err) {
			return nil, fmt.Errorf("%w: %w", errStaleConn, err)
		}
		return nil, err
	}

	bw := bufWriters.Get().(*bufio.Writer)
	bw.Reset(pc.conn)
	err := r.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	bufWriters.Put(bw)
	if err != nil {
		return fail(err, true)
	}

	pc.lr.N = maxResponseHeaderBytes
	var res *http.Response
	for informational := 0; ; informational++ {
		res, err = http.ReadResponse(pc.br, r)
		if err != nil {
			if pc.lr.N <= 0 {
				err = fmt.Errorf("upstream response headers exceed %d bytes", maxResponseHeaderBytes)
			}
			return fail(err, pc.lr.N == maxResponseHeaderBytes)
		}
		code := res.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			break
		}
		if informational == maxInformational {
			return fail(errors.New("upstream sent too many 1xx responses"), false)
		}
		if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(res.Header)); err != nil {
				return fail(err, false)
			}
		}
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("upstream switched protocols unasked"), false)
	}
	pc.lr.N = math.MaxInt64
	// The body may take as long as it takes. A body already in the
	// buffer needs nothing more from the connection, and the next exchange
	// sets a deadline of its own before anything reads: one call saved.
	if t.responseTimeout > 0 && !(res.ContentLength >= 0 && int64(pc.br.Buffered()) >= res.ContentLength) {
		_ = pc.conn.SetReadDeadline(time.Time{})
	}

	body := &directBody{t: t, ctx: ctx, pc: pc, body: res.Body, stop: stop, keep: !res.Close}
	if res.Body == http.NoBody {
		body.release(true)
		return res, nil
	}
	res.Body = body
	return res, nil
}

// directBody hands its connection back to the pool when the body has been
// read to the end, and closes it when the body is closed before that (a
// client that went away mid-stream must not cost a drain of the rest).
type directBody struct {
	t        *directTransport
	ctx      context.Context
	pc       *directConn
	body     io.ReadCloser
	stop     func() bool
	keep     bool
	released atomic.Bool
	sawEOF   atomic.Bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.released.Load() {
		if b.sawEOF.Load() {
			return 0, io.EOF
		}
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.sawEOF.Store(true)
		b.release(true)
	} else if err != nil {
		b.release(false)
		if cerr := b.ctx.Err(); cerr != nil {
			// As http.Transport says it: ReverseProxy logs any other
			// error as an upstream failure.
			return n, cerr
		}
	}
	return n, err
}

func (b *directBody) Close() error {
	b.release(false)
	return nil
}

// release ends the exchange: the connection goes back to the pool if the
// body was read cleanly to its end with nothing after it, the upstream did
// not ask to close, and the cancellation hook had not fired; otherwise it
// is closed.
func (b *directBody) release(clean bool) {
	if !b.released.CompareAndSwap(false, true) {
		return
	}
	if b.stop() && clean && b.keep && b.pc.br.Buffered() == 0 {
		b.t.put(b.pc)
		return
	}
	_ = b.pc.conn.Close()
}

// get takes the most recently used live connection, or dials a new one
// (always when dial is set), with the response timeout set as its read
// deadline (it runs from before the request is written: a bodiless
// request's write takes no time).
func (t *directTransport) get(ctx context.Context, dial bool) (pc *directConn, reused bool, err error) {
	now := time.Now()
	var deadline time.Time
	if t.responseTimeout > 0 {
		deadline = now.Add(t.responseTimeout)
	}
	for !dial {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		pc = t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		// A connection the upstream closed, or wrote to unasked, while it
		// sat in the pool must not carry a request: its next response
		// would be someone else's bytes. The deadline goes first: one left
		// from an earlier exchange may have passed, failing the peek.
		if (t.idleTimeout <= 0 || now.Sub(pc.idleSince) < t.idleTimeout) &&
			(deadline.IsZero() || pc.conn.SetReadDeadline(deadline) == nil) && pc.peek.idleConnClean() {
			pc.br = bufReaders.Get().(*bufio.Reader)
			pc.br.Reset(&pc.lr)
			return pc, true, nil
		}
		_ = pc.conn.Close()
	}
	conn, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	if t.responseTimeout > 0 {
		_ = conn.SetReadDeadline(time.Now().Add(t.responseTimeout))
	}
	pc = &directConn{conn: conn}
	pc.peek = newLivenessPeek(conn)
	pc.lr.R = conn
	pc.br = bufReaders.Get().(*bufio.Reader)
	pc.br.Reset(&pc.lr)
	return pc, false, nil
}

// put pools a connection whose reader holds nothing; the reader itself
// goes back to its own pool meanwhile (a thousand idle connections would
// otherwise keep 4 MiB of empty buffers).
func (t *directTransport) put(pc *directConn) {
	pc.idleSince = time.Now()
	pc.br.Reset(nil)
	bufReaders.Put(pc.br)
	pc.br = nil
	t.mu.Lock()
	if len(t.idle) >= t.maxIdle {
		t.mu.Unlock()
		_ = pc.conn.Close()
		return
	}
	t.idle = append(t.idle, pc)
	startSweep := t.idleTimeout > 0 && !t.sweeping
	t.sweeping = t.sweeping || startSweep
	t.mu.Unlock()
	if startSweep {
		time.AfterFunc(t.sweepEvery, t.sweep)
	}
}

// sweep closes the pooled connections idle for longer than idleTimeout,
// and those idle for a sweep period that the upstream has closed (or
// written to) meanwhile: an upstream with a short keep-alive timeout
// (uvicorn's is five seconds) would otherwise leave them half-closed until
// popped or expired. It comes back while any are left.
func (t *directTransport) sweep() {
	now := time.Now()
	expired, checked := now.Add(-t.idleTimeout), now.Add(-t.sweepEvery)
	t.mu.Lock()
	var dead []*directConn
	kept := t.idle[:0]
	for _, pc := range t.idle {
		if pc.idleSince.Before(checked) {
			// A deadline left from its last exchange may have passed and
			// would fail the peek; the next exchange sets its own.
			_ = pc.conn.SetReadDeadline(time.Time{})
		}
		if pc.idleSince.Before(expired) || (pc.idleSince.Before(checked) && !pc.peek.idleConnClean()) {
			dead = append(dead, pc)
			continue
		}
		kept = append(kept, pc)
	}
	clear(t.idle[len(kept):])
	t.idle = kept
	again := len(t.idle) > 0
	t.sweeping = again
	t.mu.Unlock()
	for _, pc := range dead {
		_ = pc.conn.Close()
	}
	if again {
		time.AfterFunc(t.sweepEvery, t.sweep)
	}
}

// CloseIdleConnections closes the pooled connections of both transports.
func (t *directTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, pc := range idle {
		_ = pc.conn.Close()
	}
	if c, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// validHeaders applies http.Transport's check of header names and values.
func validHeaders(h http.Header) bool {
	for name, values := range h {
		if !httpguts.ValidHeaderFieldName(name) {
			return false
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
	}
	return true
}

var (
	bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
	bufReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
)
