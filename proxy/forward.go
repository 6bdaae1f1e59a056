package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ForwarderOptions configures the upstream side of the proxy.
type ForwarderOptions struct {
	Upstream        *url.URL
	HostMode        string // "preserve", "upstream" or a literal host
	DialTimeout     time.Duration
	ResponseTimeout time.Duration // upstream response headers must arrive within this
	IdleConnTimeout time.Duration
	MaxIdleConns    int

	// Identity header names; an empty name is not sent (it is still stripped).
	Headers IdentityHeaders
	// CookieNames are Portero's own cookies (the session, the sign-in
	// form's), never forwarded upstream.
	CookieNames []string
	// OwnToken reports whether a bearer token is Portero's own; such a
	// token is removed from Authorization before forwarding.
	OwnToken func(token string) bool
}

// IdentityHeaders names the headers that carry the identity upstream.
type IdentityHeaders struct {
	UserID, Email, Roles, LegacyID, Assertion string
}

// Forwarder sends requests to the upstream, transparently: the request target
// is forwarded byte for byte, bodies stream both ways, trailers and protocol
// upgrades pass, and failures become 502 or 504.
type Forwarder struct {
	opts     ForwarderOptions
	rp       *httputil.ReverseProxy
	upstream *url.URL
	hostMode string
	strip    *HeaderStripper
	log      *zap.Logger
	onError  func(w http.ResponseWriter, r *http.Request, err error)
}

// NewForwarder builds the reverse proxy with a transport of its own: no
// proxy settings from the environment, bounded dial and header waits, and a
// connection pool sized for one busy upstream.
func NewForwarder(opts ForwarderOptions, strip *HeaderStripper, log *zap.Logger, onError func(http.ResponseWriter, *http.Request, error)) (*Forwarder, error) {
	u := opts.Upstream
	if u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, ErrInvalidUpstream
	}
	switch opts.HostMode {
	case "", "preserve", "upstream":
	default:
		if strings.ContainsAny(opts.HostMode, "/ ?#@") {
			return nil, fmt.Errorf("%w: %q", ErrInvalidHostSetting, opts.HostMode)
		}
	}
	// headerSetter writes names as given: the canonical form is the one
	// Header.Get and every reader of the map expect.
	for _, name := range []*string{&opts.Headers.UserID, &opts.Headers.Email, &opts.Headers.Roles, &opts.Headers.LegacyID, &opts.Headers.Assertion} {
		*name = textproto.CanonicalMIMEHeaderKey(*name)
	}
	f := &Forwarder{opts: opts, upstream: u, hostMode: opts.HostMode, strip: strip, log: log, onError: onError}
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	var rt http.RoundTripper = newTransport(opts, dialer)
	if u.Scheme == "http" && canPeek {
		rt = newDirectTransport(opts, dialer.DialContext, rt)
	}
	f.rp = &httputil.ReverseProxy{
		Rewrite:      f.rewrite,
		Transport:    &timedTransport{rt: rt},
		ErrorHandler: f.handleError,
		ErrorLog:     zap.NewStdLog(log.With(zap.String("component", "reverseproxy"))),
		BufferPool:   newBufferPool(),
	}
	return f, nil
}

// Transport limits, for both transports.
const (
	defaultMaxIdleConns    = 512
	maxResponseHeaderBytes = 1 << 20
)

func newTransport(opts ForwarderOptions, dialer *net.Dialer) *http.Transport {
	maxIdle := opts.MaxIdleConns
	if maxIdle <= 0 {
		maxIdle = defaultMaxIdleConns
	}
	return &http.Transport{
		Proxy:                  nil, // never HTTP_PROXY from the environment
		DialContext:            dialer.DialContext,
		ResponseHeaderTimeout:  opts.ResponseTimeout,
		IdleConnTimeout:        opts.IdleConnTimeout,
		MaxIdleConns:           maxIdle,
		MaxIdleConnsPerHost:    maxIdle,
		TLSHandshakeTimeout:    opts.DialTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// The upstream sees what the client sent; letting the transport add
		// gzip would change the body the client receives.
		DisableCompression: true,
	}
}

// ServeHTTP forwards r.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Trailer != nil && r.Body != nil && r.Body != http.NoBody {
		r.Body = &trailerRelay{ReadCloser: r.Body, in: r.Trailer, strip: f.strip}
	}
	f.rp.ServeHTTP(w, r)
}

func (f *Forwarder) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	info := infoFrom(in.Context())

	out.URL.Scheme = f.upstream.Scheme
	out.URL.Host = f.upstream.Host
	setTargetPath(out.URL, f.upstream, in)
	// Forward the query exactly as sent; Portero decides nothing on it.
	out.URL.RawQuery = in.URL.RawQuery

	switch f.hostMode {
	case "", "preserve":
		out.Host = in.Host
	case "upstream":
		out.Host = ""
	default:
		out.Host = f.hostMode
	}

	peerTrusted := info != nil && info.peerTrusted
	f.strip.Strip(out.Header, peerTrusted)
	if relay, ok := in.Body.(*trailerRelay); ok && out.Trailer != nil {
		f.strip.Strip(out.Trailer, false)
		relay.out = out.Trailer
	}
	h := headerSetter{h: out.Header, vals: make([]string, 0, 12)}
	setForwarded(&h, in, info)
	f.dropOwnCredentials(out.Header, info)
	if info != nil {
		h.set("X-Request-Id", info.id)
		if ip := info.clientIPText(); ip != "" {
			h.set("X-Real-Ip", ip)
		}
		f.setIdentity(&h, info)
	}
}

// headerSetter sets single-valued headers from one backing array: a Set
// per header was a third of the allocations of a proxied request. Names
// must be in canonical form.
type headerSetter struct {
	h    http.Header
	vals []string
}

func (s *headerSetter) set(name, value string) {
	s.vals = append(s.vals, value)
	n := len(s.vals)
	// The capacity is cut to one so that an Add elsewhere copies rather
	// than writes into the next header's value.
	s.h[name] = s.vals[n-1 : n : n]
}

// dropOwnCredentials keeps Portero's session cookie and bearer token from
// the upstream, which has no business holding them.
func (f *Forwarder) dropOwnCredentials(h http.Header, info *requestInfo) {
	if cookies := h.Values("Cookie"); len(cookies) > 0 && len(f.opts.CookieNames) > 0 {
		kept := cookies[:0:0]
		for _, line := range cookies {
			for _, name := range f.opts.CookieNames {
				line = removeCookie(line, name)
			}
			if line != "" {
				kept = append(kept, line)
			}
		}
		if len(kept) == 0 {
			h.Del("Cookie")
		} else {
			h["Cookie"] = kept
		}
	}
	authz := h.Values("Authorization")
	if len(authz) == 0 {
		return
	}
	if info != nil && info.identity != nil && info.identity.Via == "bearer" {
		h.Del("Authorization")
		return
	}
	// Every value, not just the first: a client may repeat the header.
	own := func(v string) bool {
		tok, ok := bearerToken(v)
		return ok && f.opts.OwnToken != nil && f.opts.OwnToken(tok)
	}
	if slices.ContainsFunc(authz, own) {
		// h is the outbound request's own copy of the headers.
		if kept := slices.DeleteFunc(authz, own); len(kept) > 0 {
			h["Authorization"] = kept
		} else {
			h.Del("Authorization")
		}
	}
}

func (f *Forwarder) setIdentity(h *headerSetter, info *requestInfo) {
	if r := info.routeRef; r != nil && r.LegacyToken && info.identity != nil {
		// On a legacy_token route Authorization is Portero's to set: a user
		// without a legacy id gets none, never whatever the client sent
		// (another user's legacy JWT would speak for that user upstream).
		h.h.Del("Authorization")
	}
	if info.legacyToken != "" {
		h.set("Authorization", "Bearer "+info.legacyToken)
	}
	id := info.identity
	if id == nil {
		return
	}
	names := f.opts.Headers
	set := func(name, value string) {
		if name != "" {
			h.set(name, value)
		}
	}
	set(names.UserID, id.UserID)
	set(names.Email, id.Email)
	set(names.Roles, strings.Join(id.Roles, ","))
	if id.LegacyID != nil {
		set(names.LegacyID, strconv.FormatInt(*id.LegacyID, 10))
	}
	if info.assertion != "" {
		set(names.Assertion, info.assertion)
	}
}

// bearerToken extracts the token of an "Authorization: Bearer …" value.
func bearerToken(v string) (string, bool) {
	const prefix = "bearer "
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(v[len(prefix):]), true
}

// removeCookie drops every cookie called name from one Cookie header line.
func removeCookie(line, name string) string {
	if !strings.Contains(line, name) {
		return line
	}
	var kept strings.Builder // allocates only when some other cookie stays
	for rest := line; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, ";")
		part = strings.TrimSpace(part)
		if n, _, _ := strings.Cut(part, "="); n == name || part == "" {
			continue
		}
		if kept.Len() > 0 {
			kept.WriteString("; ")
		}
		kept.WriteString(part)
	}
	return kept.String()
}

// setTargetPath sends the request target as the client wrote it. Go would
// re-escape some bytes (e.g. '{', '|'), so the raw form from the request line
// goes out as an opaque URL whenever it is an origin-form path.
func setTargetPath(out *url.URL, upstream *url.URL, in *http.Request) {
	raw := in.RequestURI
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	base := strings.TrimSuffix(upstream.EscapedPath(), "/")
	if raw == "*" && base == "" {
		out.Opaque, out.Path, out.RawPath = "*", "", ""
		return
	}
	if !strings.HasPrefix(raw, "/") {
		// Absolute-form target (GET http://host/path): use its parsed path.
		raw = in.URL.EscapedPath()
	}
	target := base + raw
	if target == "" {
		target = "/"
	}
	if strings.HasPrefix(target, "//") {
		// An opaque "//x" would be read as an authority; fall back to the
		// parsed form, which the route layer normalises anyway.
		out.Opaque = ""
		out.Path = strings.TrimSuffix(upstream.Path, "/") + in.URL.Path
		out.RawPath = ""
		return
	}
	out.Opaque = target
	out.Path, out.RawPath = "", ""
}

func setForwarded(out *headerSetter, in *http.Request, info *requestInfo) {
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	peerTrusted := info != nil && info.peerTrusted
	peer := ""
	if info != nil {
		peer = info.peerText()
	}

	xff, fwd := "", ""
	xfProto, xfHost := proto, in.Host
	if peerTrusted {
		xff = strings.Join(in.Header.Values("X-Forwarded-For"), ", ")
		fwd = strings.Join(in.Header.Values("Forwarded"), ", ")
		if p := in.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			xfProto = p
		}
		if h := in.Header.Get("X-Forwarded-Host"); h != "" && validHost(h) {
			xfHost = h
		}
	}
	if peer != "" {
		if xff != "" {
			xff += ", "
		}
		xff += peer
	}
	if xff != "" {
		out.set("X-Forwarded-For", xff)
	}
	out.set("X-Forwarded-Proto", xfProto)
	if xfHost != "" {
		out.set("X-Forwarded-Host", xfHost)
	}
	out.set("Forwarded", forwardedElement(fwd, peer, in.Host, proto))
}

// forwardedElement renders one RFC 7239 element after the ones a trusted
// proxy sent (prior); IPv6 nodes and hosts with unusual bytes are quoted.
func forwardedElement(prior, peer, host, proto string) string {
	var b strings.Builder
	b.Grow(len(prior) + len(peer) + len(host) + 32)
	if prior != "" {
		b.WriteString(prior)
		b.WriteString(", ")
	}
	if peer != "" {
		b.WriteString("for=")
		if strings.Contains(peer, ":") {
			b.WriteString(`"[` + peer + `]"`)
		} else {
			b.WriteString(peer)
		}
		b.WriteByte(';')
	}
	if host != "" && validHost(host) {
		b.WriteString("host=")
		if strings.ContainsAny(host, ":[]") {
			b.WriteString(`"` + host + `"`)
		} else {
			b.WriteString(host)
		}
		b.WriteByte(';')
	}
	b.WriteString("proto=")
	b.WriteString(proto)
	return b.String()
}

// validHost accepts the bytes a Host header may carry, so a hostile value
// cannot break out of a Forwarded element.
func validHost(h string) bool {
	if len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}

func (f *Forwarder) handleError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody is left to answer.
		if info := infoFrom(r.Context()); info != nil {
			info.clientGone = true
		}
		return
	case isTimeout(err):
		f.onError(w, r, fmt.Errorf("%w: %w", ErrUpstreamTimeout, err))
	default:
		f.onError(w, r, fmt.Errorf("%w: %w", ErrUpstreamUnavailable, err))
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// timedTransport records how long the upstream took to send its headers.
type timedTransport struct{ rt http.RoundTripper }

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	res, err := t.rt.RoundTrip(r)
	if info := infoFrom(r.Context()); info != nil {
		info.upstreamDur = time.Since(start)
	}
	return res, err
}

// trailerRelay forwards request trailers. net/http fills the inbound
// request's Trailer map at body EOF, but the outbound request holds a clone
// taken before that, so the values are copied across here, after identity
// headers a client sent as trailers are removed.
type trailerRelay struct {
	io.ReadCloser
	in, out http.Header
	strip   *HeaderStripper
}

func (t *trailerRelay) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF && t.out != nil {
		t.strip.Strip(t.in, false)
		clear(t.out)
		for k, v := range t.in {
			t.out[k] = v
		}
	}
	return n, err
}

// bufferPool reuses 32 KiB copy buffers across requests.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (p *bufferPool) Get() []byte  { return *(p.pool.Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }
