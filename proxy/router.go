package proxy

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/portero/portero/audit"
)

// Identity is who made a request, as Portero forwards it upstream.
type Identity struct {
	UserID      string
	Email       string
	Roles       []string
	Permissions []string
	LegacyID    *int64
	// Via says how the request authenticated: "cookie", "bearer" or "legacy_jwt".
	Via string
}

// Errors an Authenticator reports, which the router answers as 401 or 503.
var (
	// ErrNoCredentials: the request carries no session and no legacy token.
	ErrNoCredentials = errors.New("proxy: no credentials")
	// ErrInvalidCredentials: a session or token was presented but is dead,
	// expired, revoked or forged.
	ErrInvalidCredentials = errors.New("proxy: invalid or expired credentials")
	// ErrAuthUnavailable: the session store or user store cannot answer.
	ErrAuthUnavailable = errors.New("proxy: authentication backend unavailable")
)

// Authenticator is what gateway and dual routes need from authn.
type Authenticator interface {
	// Session authenticates a Portero session (cookie or bearer); slide
	// extends its idle timeout.
	Session(ctx context.Context, r *http.Request, slide bool) (Identity, error)
	// Legacy authenticates a legacy-app JWT from the Authorization header.
	Legacy(ctx context.Context, r *http.Request) (Identity, error)
}

// Minter makes the tokens sent upstream for an identity.
type Minter interface {
	// Assertion is the short-lived X-Auth-Assertion JWT for audience.
	Assertion(id Identity, audience string) (string, error)
	// LegacyToken is a JWT in the legacy app's own format.
	LegacyToken(id Identity) (string, error)
}

// Auditor takes access and denial events without blocking the request.
type Auditor interface {
	Enqueue(ev audit.Event) error
	// Healthy fails when events cannot be kept (the spool is full under
	// fail_closed); audited routes then refuse rather than go unrecorded.
	Healthy() error
}

// Router decides each proxied request by the route table: it authenticates
// where the route's mode asks for it, checks roles and permissions, and hands
// the request to the forwarder with the identity to send upstream.
type Router struct {
	table   atomic.Pointer[Table]
	auth    Authenticator
	minter  Minter
	audit   Auditor
	forward http.Handler
	opts    RouterOptions
	log     *zap.Logger

	anonymousShadow shadowTally
}

// RouterOptions are the router's settings.
type RouterOptions struct {
	LoginURL string // where browsers without a session go; "" answers 401
	// Assertion: mint X-Auth-Assertion for this audience ("" sends none).
	AssertionAudience string
	// Metrics counts shadow decisions and credential kinds per route (the
	// same *Metrics the Front observes with); nil counts none.
	Metrics *Metrics
	// Progress keeps this instance's per-route credential counts for
	// GET /auth/stats/migration; nil keeps none.
	Progress *Progress
	// SessionCookie and OwnToken tell a Portero credential from a legacy
	// one by inspection alone, on routes that do not authenticate.
	SessionCookie string
	OwnToken      func(token string) bool
}

// ActionShadowDenied is the audit action of a request a shadow route let
// through that gateway mode would have refused.
const ActionShadowDenied = "proxy.shadow.denied"

// NewRouter builds a router over an initial table.
func NewRouter(t *Table, auth Authenticator, minter Minter, aud Auditor, forward http.Handler, opts RouterOptions, log *zap.Logger) *Router {
	rt := &Router{auth: auth, minter: minter, audit: aud, forward: forward, opts: opts, log: log}
	rt.table.Store(t)
	return rt
}

// Swap installs a new table atomically; requests in flight keep theirs.
func (rt *Router) Swap(t *Table) { rt.table.Store(t) }

// Table returns the table in force.
func (rt *Router) Table() *Table { return rt.table.Load() }

var methodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := infoFrom(r.Context())
	var overrides []string
	for _, h := range methodOverrideHeaders {
		if v := r.Header.Get(h); v != "" {
			overrides = append(overrides, strings.ToUpper(strings.TrimSpace(v)))
		}
	}
	route, err := rt.table.Load().Decide(r.Method, requestPath(r), overrides...)
	if err != nil {
		if info != nil {
			info.route, info.mode, info.denial = "invalid", "refused", "invalid_path"
		}
		WriteError(w, r, http.StatusBadRequest, "INVALID_PATH")
		return
	}
	if info != nil {
		info.route, info.mode, info.routeRef = route.Name, string(route.Mode), route
	}

	var id *Identity
	switch {
	case route.Mode == ModeShadow:
		// Forwarded as legacy: the rehearsal's identity never goes upstream.
		rt.countCredential(r, route, rt.rehearse(r, route, start))
	case !route.Mode.Authenticated():
		rt.countCredential(r, route, nil)
	}
	if route.Mode.Authenticated() {
		got, err := rt.authenticate(r, route)
		if err != nil {
			rt.countCredential(r, route, nil)
			rt.refuse(w, r, route, err, start)
			return
		}
		rt.countCredential(r, route, &got)
		if reason := authorize(got, route); reason != "" {
			rt.deny(w, r, route, got, reason, start)
			return
		}
		id = &got
		if info != nil {
			info.identity, info.userID = id, got.UserID
			if err := rt.mint(info, route); err != nil {
				rt.log.Error("minting upstream tokens", zap.String("request_id", info.id), zap.Error(err))
				WriteError(w, r, http.StatusInternalServerError, "INTERNAL_ERROR")
				return
			}
		}
	}
	if !route.Audit {
		rt.forward.ServeHTTP(w, r)
		return
	}
	if rt.audit != nil {
		if err := rt.audit.Healthy(); err != nil {
			setDenial(r, "audit_unavailable")
			rt.log.Error("audited route refused: audit trail cannot keep events", zap.String("route", route.Name), zap.Error(err))
			w.Header().Set("Retry-After", "30")
			WriteError(w, r, http.StatusServiceUnavailable, "AUDIT_UNAVAILABLE")
			return
		}
	}
	sw, _ := w.(*statusWriter)
	rt.forward.ServeHTTP(w, r)
	status := http.StatusOK
	if sw != nil && sw.status != 0 {
		status = sw.status
	}
	rt.record(r, route, id, audit.ActionProxyAccess, status, "", start, nil)
}

// mint prepares the tokens the forwarder sends upstream for this identity.
func (rt *Router) mint(info *requestInfo, route *Route) error {
	if rt.minter == nil {
		return nil
	}
	if rt.opts.AssertionAudience != "" {
		tok, err := rt.minter.Assertion(*info.identity, rt.opts.AssertionAudience)
		if err != nil {
			return err
		}
		info.assertion = tok
	}
	if route.LegacyToken {
		tok, err := rt.minter.LegacyToken(*info.identity)
		if err != nil {
			return err
		}
		info.legacyToken = tok
	}
	return nil
}

func (rt *Router) authenticate(r *http.Request, route *Route) (Identity, error) {
	id, err := rt.auth.Session(r.Context(), r, route.Slide)
	if err == nil || route.Mode != ModeDual || errors.Is(err, ErrAuthUnavailable) {
		return id, err
	}
	legacy, lerr := rt.auth.Legacy(r.Context(), r)
	if lerr == nil || !errors.Is(lerr, ErrNoCredentials) {
		return legacy, lerr
	}
	return id, err // no legacy token either: report the session's problem
}

// rehearse works out what gateway mode would decide for a shadow route,
// without sliding the session and without touching the response: it counts
// the decision and audits a would-be denial. A session store that cannot
// answer is counted as auth_unavailable; the request goes on regardless.
// It returns the identity found, if any, for credential counting only.
func (rt *Router) rehearse(r *http.Request, route *Route, start time.Time) *Identity {
	if rt.auth == nil {
		return nil
	}
	// A rehearsal must not slow the legacy traffic it watches: a store that
	// hangs counts as auth_unavailable after a moment.
	ctx, cancel := context.WithTimeout(r.Context(), rehearsalTimeout)
	got, err := rt.auth.Session(ctx, r.WithContext(ctx), false)
	cancel()
	decision, status := "allow", http.StatusOK
	switch {
	case err != nil:
		decision, status = denialReason(err), http.StatusUnauthorized
		if errors.Is(err, ErrAuthUnavailable) {
			status = http.StatusServiceUnavailable
		}
	default:
		if reason := authorize(got, route); reason != "" {
			decision, status = reason, http.StatusForbidden
		}
	}
	rt.opts.Metrics.shadowDecision(route.Name, decision)
	switch {
	case decision == "allow":
	case err == nil:
		// A known user gateway would refuse (role, permission): one row
		// each, since who they are is what the operator needs to see.
		// status is what gateway would have answered, not what was sent.
		rt.record(r, route, &got, ActionShadowDenied, status, decision, start, nil)
	default:
		// Anonymous would-be denials are most of a rehearsal's traffic and
		// anyone can make more: a row per route and reason per
		// shadowSummaryEvery, with the count since the last one, so the
		// trail cannot be flooded through a route that refuses nobody. The
		// metric has every one.
		if n := rt.anonymousShadow.add(route.Name+" "+decision, start); n > 0 {
			rt.record(r, route, nil, ActionShadowDenied, status, decision, start, map[string]any{"count": n, "summary": true})
		}
	}
	if err != nil {
		return nil
	}
	return &got
}

// rehearsalTimeout bounds a shadow route's session lookup.
const rehearsalTimeout = 100 * time.Millisecond

// shadowSummaryEvery is how often an anonymous shadow denial of one route
// and reason is audited, with the count since the last row.
const shadowSummaryEvery = time.Minute

// shadowTally counts events per key and says when a summary is due.
type shadowTally struct {
	mu     sync.Mutex
	counts map[string]*tallyEntry
}

type tallyEntry struct {
	n    int
	last time.Time
}

// add counts one event under key at now and returns the count to report
// if a summary is due (the first event, then one per shadowSummaryEvery),
// else 0.
func (t *shadowTally) add(key string, now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = make(map[string]*tallyEntry)
	}
	e := t.counts[key]
	if e == nil {
		e = &tallyEntry{}
		t.counts[key] = e
	}
	e.n++
	if !e.last.IsZero() && now.Sub(e.last) < shadowSummaryEvery {
		return 0
	}
	n := e.n
	e.n, e.last = 0, now
	return n
}

// countCredential counts the credential kind of a request for migration
// progress: the authentication result where there is one, else a cheap
// inspection of the headers.
func (rt *Router) countCredential(r *http.Request, route *Route, id *Identity) {
	if rt.opts.Metrics == nil && rt.opts.Progress == nil {
		return
	}
	var kind string
	if id != nil {
		kind = kindOf(*id)
	} else {
		kind = credentialKind(r, rt.opts.SessionCookie, rt.opts.OwnToken)
	}
	rt.opts.Metrics.credential(route.Name, kind)
	rt.opts.Progress.add(route.Name, kind)
}

// Authorize returns why gateway mode would refuse id on this route ("role"
// or "permission"), or "" when it would let id through.
func (r *Route) Authorize(id Identity) string { return authorize(id, r) }

// authorize returns why the identity may not use the route, or "".
func authorize(id Identity, route *Route) string {
	if len(route.Roles) > 0 && !slices.ContainsFunc(route.Roles, func(role string) bool { return slices.Contains(id.Roles, role) }) {
		return "role"
	}
	for _, p := range route.Permissions {
		if !slices.Contains(id.Permissions, p) && !slices.Contains(id.Permissions, "*") {
			return "permission"
		}
	}
	return ""
}

// refuse answers a request without a usable identity: a browser goes to
// the sign-in page, an API client gets 401 with WWW-Authenticate.
func (rt *Router) refuse(w http.ResponseWriter, r *http.Request, route *Route, err error, start time.Time) {
	setDenial(r, denialReason(err))
	if errors.Is(err, ErrAuthUnavailable) {
		rt.log.Warn("authentication unavailable", zap.String("request_id", RequestID(r.Context())), zap.Error(err))
		w.Header().Set("Retry-After", "5")
		WriteError(w, r, http.StatusServiceUnavailable, "AUTH_UNAVAILABLE")
		return
	}
	code, bearerErr := "SESSION_REQUIRED", ""
	if errors.Is(err, ErrInvalidCredentials) {
		code, bearerErr = "SESSION_EXPIRED", `, error="invalid_token"`
	}
	if route.Audit {
		rt.record(r, route, nil, audit.ActionProxyDenied, http.StatusUnauthorized, strings.ToLower(code), start, nil)
	}
	if rt.wantsRedirect(r, route) {
		w.Header().Set("Cache-Control", "no-store")
		target := rt.opts.LoginURL + sep(rt.opts.LoginURL) + "next=" + url.QueryEscape(ReturnPath(r))
		if errors.Is(err, ErrInvalidCredentials) {
			target += "&reason=expired" // the sign-in page says why
		}
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="portero"`+bearerErr)
	if route.Unauthenticated == "json" {
		// The route promised JSON whatever Accept says (a nil request
		// makes WriteError answer JSON).
		WriteError(w, nil, http.StatusUnauthorized, code)
		return
	}
	WriteError(w, r, http.StatusUnauthorized, code)
}

func (rt *Router) wantsRedirect(r *http.Request, route *Route) bool {
	if rt.opts.LoginURL == "" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	switch route.Unauthenticated {
	case "redirect":
		return true
	case "json":
		return false
	}
	return WantsHTML(r)
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

// ReturnPath is where a browser goes back after signing in: this request's
// own path and query, which Decide has already vetted as a plain same-origin
// path (no "//", no backslash), so it cannot name another host.
func ReturnPath(r *http.Request) string {
	p := requestPath(r)
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n") {
		return "/"
	}
	if r.URL.RawQuery != "" {
		p += "?" + r.URL.RawQuery
	}
	return p
}

func (rt *Router) deny(w http.ResponseWriter, r *http.Request, route *Route, id Identity, reason string, start time.Time) {
	if info := infoFrom(r.Context()); info != nil {
		info.userID, info.denial = id.UserID, reason
	}
	rt.record(r, route, &id, audit.ActionProxyDenied, http.StatusForbidden, reason, start, nil)
	WriteError(w, r, http.StatusForbidden, "FORBIDDEN")
}

// record writes an access or denial row; the queue never blocks the request.
func (rt *Router) record(r *http.Request, route *Route, id *Identity, action string, status int, reason string, start time.Time, extra map[string]any) {
	if rt.audit == nil {
		return
	}
	access := &audit.AccessDetails{
		Method: r.Method, Path: truncate(requestPath(r), 1024), Route: route.Name, Mode: string(route.Mode),
		Status: status, DurationMs: float64(time.Since(start).Microseconds()) / 1000,
		RequestID: RequestID(r.Context()), Reason: reason,
	}
	ev := audit.Event{Action: action, Resource: "route", ResourceID: route.Name, UserAgent: r.UserAgent()}
	if extra != nil {
		ev.Details = access.Map()
		maps.Copy(ev.Details, extra)
	} else {
		ev.Access = access
	}
	if info := infoFrom(r.Context()); info != nil {
		ev.IP = info.clientIPText()
	}
	if id != nil {
		ev.UserID = id.UserID
	}
	if err := rt.audit.Enqueue(ev); err != nil {
		rt.log.Warn("audit event not queued", zap.String("action", action), zap.Error(err))
	}
}

// requestPath is the path exactly as the upstream will receive it.
func requestPath(r *http.Request) string {
	raw := r.RequestURI
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if raw == "*" || strings.HasPrefix(raw, "/") {
		return raw
	}
	return r.URL.EscapedPath()
}

func setDenial(r *http.Request, reason string) {
	if info := infoFrom(r.Context()); info != nil {
		info.denial = reason
	}
}

// denialReason names an authentication failure for metrics.
func denialReason(err error) string {
	switch {
	case errors.Is(err, ErrAuthUnavailable):
		return "auth_unavailable"
	case errors.Is(err, ErrInvalidCredentials):
		return "invalid_credentials"
	default:
		return "no_credentials"
	}
}
