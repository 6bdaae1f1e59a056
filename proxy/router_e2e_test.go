package proxy_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/authn"
	"github.com/portero/portero/configs"
	"github.com/portero/portero/proxy"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/sessionstest"
	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// The settings every stack shares, as an operator would write them.
const (
	e2eCookie       = "__Host-portero_session"
	e2eLoginURL     = "/login"
	e2eAudience     = "http://legacy.internal"
	e2eSecret       = "portero-e2e-secret-key-0123456789abcdef"
	e2eLegacySecret = "the-legacy-apps-own-secret"
	e2ePassword     = "Correct-Horse-9!battery"
	e2eIdle         = 10 * time.Minute
	e2eAbsolute     = 12 * time.Hour
)

// backend is one pairing of session store and relational store.
type backend struct {
	name     string
	redis    bool // sessions in Redis, else in memory
	postgres bool // users and audit_logs in PostgreSQL, else SQLite
}

// The two deployments of DESIGN.md: the embedded default and the shared one.
var (
	embedded = backend{name: "memory+sqlite"}
	shared   = backend{name: "redis+postgres", redis: true, postgres: true}
)

// stackOptions configure newStack.
type stackOptions struct {
	backend     backend
	defaultMode string
	routes      []configs.Route
	// upstream is the legacy app; nil serves echoUpstream.
	upstream http.Handler
	// upstreamURL, when set, is used instead of starting upstream.
	upstreamURL string
	log         *zap.Logger
}

// stack is Portero wired as cmd/portero wires it (authn.Credentials as the
// proxy's Authenticator, authn.Minter, the audit writer) in front of a test
// upstream, with a fake clock deciding session expiry.
type stack struct {
	url   string // Portero's public base URL
	addr  string // host:port of the same
	front http.Handler

	router     *proxy.Router
	svc        *authn.Service
	users      authn.UserStore
	hasher     *authn.Hasher
	sessions   sessions.Store
	tokens     *authn.SessionTokens
	assertions *authn.Assertions
	legacy     *authn.LegacyTokens
	audit      audit.Store
	clock      *sessionstest.FakeClock
	client     *http.Client
}

func newStack(tb testing.TB, o stackOptions) *stack {
	tb.Helper()
	if o.log == nil {
		o.log = zap.NewNop()
	}
	if o.defaultMode == "" {
		o.defaultMode = "legacy"
	}
	st := &stack{clock: sessionstest.NewFakeClock(time.Now().UTC().Truncate(time.Millisecond))}

	var db *storage.DB
	if o.backend.postgres {
		db = storagetest.NewPostgres(tb)
	} else {
		db = storagetest.NewSQLite(tb)
	}
	st.users = authn.NewUserStore(db)
	st.audit = audit.NewStore(db)

	// The production touch throttle (15s), so the benchmark measures what
	// operators run; the tests move the clock by minutes.
	sessOpts := []sessions.Option{sessions.WithClock(st.clock.Now), sessions.WithTouchThrottle(15 * time.Second)}
	var counters sessions.CounterStore
	var err error
	if o.backend.redis {
		rdb, prefix := testRedis(tb)
		sessOpts = append(sessOpts, sessions.WithKeyPrefix(prefix+"sess:"))
		redisStore, err := sessions.NewRedisStore(rdb, e2eIdle, e2eAbsolute, sessOpts...)
		if err != nil {
			tb.Fatal(err)
		}
		// In front of it the session cache, as cmd/portero puts it.
		if st.sessions, err = sessions.NewCachedRedisStore(redisStore, rdb, 2*time.Second); err != nil {
			tb.Fatal(err)
		}
		if counters, err = sessions.NewRedisCounters(rdb, sessions.WithCounterKeyPrefix(prefix+"cnt:")); err != nil {
			tb.Fatal(err)
		}
	} else {
		if st.sessions, err = sessions.NewMemoryStore(e2eIdle, e2eAbsolute, sessOpts...); err != nil {
			tb.Fatal(err)
		}
		if counters, err = sessions.NewMemoryCounters(); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		_ = st.sessions.Close(context.Background())
		_ = counters.Close(context.Background())
	})

	lockout, err := authn.NewLockout(counters, authn.DefaultLockoutPolicy())
	if err != nil {
		tb.Fatal(err)
	}
	cheap := authn.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	if st.hasher, err = authn.NewHasher(cheap, 0, 64, authn.DefaultHasherMaxWait); err != nil {
		tb.Fatal(err)
	}
	ring, err := authn.NewKeyring([]byte(e2eSecret))
	if err != nil {
		tb.Fatal(err)
	}
	if st.tokens, err = authn.NewSessionTokens(ring, nil); err != nil {
		tb.Fatal(err)
	}
	if st.assertions, err = authn.NewAssertions(ring, authn.AssertionConfig{}); err != nil {
		tb.Fatal(err)
	}
	if st.legacy, err = authn.NewLegacyTokens(authn.LegacyConfig{Secret: []byte(e2eLegacySecret), Algorithm: "HS256", Subject: authn.LegacySubjectID}); err != nil {
		tb.Fatal(err)
	}
	minter := authn.NewMinter(st.assertions, st.legacy, authn.LegacySubjectID, time.Minute, nil)

	writer, err := audit.NewWriter(st.audit, audit.WriterConfig{SpoolDir: tb.TempDir(), FlushInterval: 10 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	// Registered after the database's cleanup, so it runs first: the writer
	// flushes into a database that is still open.
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := writer.Close(ctx); err != nil {
			tb.Errorf("audit writer close: %v", err)
		}
	})

	st.svc = authn.NewService(authn.ServiceDeps{
		Users: st.users, Sessions: st.sessions, Hasher: st.hasher, Lockout: lockout,
		Tokens: st.tokens, Audit: writer, Now: st.clock.Now, Log: o.log,
	}, authn.ServiceConfig{
		Registration: "closed", IdleTimeout: e2eIdle, AbsoluteTimeout: e2eAbsolute, Policy: authn.DefaultPasswordPolicy(),
	})
	creds := authn.NewCredentials(st.svc, e2eCookie, st.legacy)

	upstreamURL := o.upstreamURL
	if upstreamURL == "" {
		h := o.upstream
		if h == nil {
			h = echoUpstream()
		}
		up := httptest.NewServer(h)
		tb.Cleanup(up.Close)
		upstreamURL = up.URL
	}
	u, err := url.Parse(upstreamURL)
	if err != nil {
		tb.Fatal(err)
	}
	names := proxy.IdentityHeaders{
		UserID: "X-Auth-User-Id", Email: "X-Auth-User-Email", Roles: "X-Auth-User-Roles",
		LegacyID: "X-Auth-Legacy-User-Id", Assertion: "X-Auth-Assertion",
	}
	strip := proxy.NewHeaderStripper(names.UserID, names.Email, names.Roles, names.LegacyID, names.Assertion)
	fwd, err := proxy.NewForwarder(proxy.ForwarderOptions{
		Upstream: u, HostMode: "preserve", DialTimeout: time.Second, ResponseTimeout: 10 * time.Second,
		IdleConnTimeout: time.Minute, Headers: names, CookieNames: []string{e2eCookie}, OwnToken: creds.OwnToken,
	}, strip, o.log, proxy.ErrorResponder(o.log))
	if err != nil {
		tb.Fatal(err)
	}
	table, err := proxy.NewTable(o.defaultMode, o.routes)
	if err != nil {
		tb.Fatal(err)
	}
	st.router = proxy.NewRouter(table, creds, minter, writer, fwd,
		proxy.RouterOptions{LoginURL: e2eLoginURL, AssertionAudience: e2eAudience}, o.log)
	own := authn.NewHandlers(st.svc, creds, authn.HandlerConfig{CookieName: e2eCookie, CookieSecure: true}, o.log).Echo()
	st.front = proxy.NewFront(proxy.FrontOptions{
		Own:         own,
		OwnPrefixes: []string{"/auth", "/users"},
		Health:      proxy.NewHealth(time.Second),
		Forward:     (&proxy.UpgradeTracker{}).Track(st.router),
		IPs:         proxy.NewIPResolver(nil),
		Log:         o.log,
	})
	srv := httptest.NewServer(st.front)
	tb.Cleanup(srv.Close)
	st.url, st.addr = srv.URL, srv.Listener.Addr().String()
	st.client = &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return st
}

// testRedis is a Redis client and key prefix of the test's own.
func testRedis(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	return sessionstest.RedisClient(tb, "proxy-e2e")
}

// received is what the echo upstream saw.
type received struct {
	Method string      `json:"method"`
	URI    string      `json:"uri"`
	Header http.Header `json:"header"`
}

// echoUpstream answers every request with the method, target and headers it
// received, so a test sees exactly what Portero forwarded.
func echoUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo", "1")
		_ = json.NewEncoder(w).Encode(received{Method: r.Method, URI: r.RequestURI, Header: r.Header})
	})
}

// testUser is an account with a live session.
type testUser struct {
	authn.User
	login authn.LoginResult
}

func (u *testUser) cookie() string { return e2eCookie + "=" + u.login.Token.Secret() }

// roles is X-Auth-User-Roles as Portero writes it for this user.
func (u *testUser) roles() string {
	r := u.Role
	if u.IsSuperuser {
		r += ",superuser"
	}
	return r
}

// addUser creates an active user; legacyID 0 means none.
func (st *stack) addUser(tb testing.TB, email string, roleID int, legacyID int64, superuser bool) *testUser {
	tb.Helper()
	ctx := testCtx(tb)
	hash, err := st.hasher.Hash(ctx, e2ePassword)
	if err != nil {
		tb.Fatal(err)
	}
	u := authn.User{Email: email, HashedPassword: hash, RoleID: roleID, IsActive: true, IsVerified: true, IsSuperuser: superuser}
	if legacyID != 0 {
		u.LegacyID = &legacyID
	}
	created, err := st.users.CreateUser(ctx, u)
	if err != nil {
		tb.Fatalf("create %s: %v", email, err)
	}
	return &testUser{User: created}
}

// login opens a new session for u through the login service.
func (st *stack) login(tb testing.TB, u *testUser) *testUser {
	tb.Helper()
	res, err := st.svc.Login(testCtx(tb), u.Email, e2ePassword, authn.ClientMeta{IP: "127.0.0.1", UserAgent: "proxy-e2e"})
	if err != nil {
		tb.Fatalf("login %s: %v", u.Email, err)
	}
	return &testUser{User: u.User, login: res}
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// legacyJWT signs claims as the legacy app does (python-jose, HS256).
func legacyJWT(tb testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	tb.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func validLegacyClaims(legacyID int64) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": strconv.FormatInt(legacyID, 10), "iat": now.Unix(), "exp": now.Add(30 * time.Minute).Unix()}
}

// result is one answer and, when the request reached the upstream, what the
// upstream received.
type result struct {
	status int
	header http.Header
	body   []byte
	seen   *received
}

// do sends a request with the Go client (targets it can express).
func (st *stack) do(tb testing.TB, method, target string, hdr http.Header) result {
	tb.Helper()
	r, err := st.send(method, target, hdr)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// send is do for goroutines other than the test's: it returns the error.
func (st *stack) send(method, target string, hdr http.Header) (result, error) {
	req, err := http.NewRequest(method, st.url+target, nil)
	if err != nil {
		return result{}, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	res, err := st.client.Do(req)
	if err != nil {
		return result{}, fmt.Errorf("%s %s: %w", method, target, err)
	}
	return parseResult(res)
}

// raw sends a request exactly as written: target and header lines byte for
// byte (Go's client would re-escape the one and canonicalise the other).
func (st *stack) raw(tb testing.TB, method, target string, lines ...string) result {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", st.addr, 2*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, st.addr)
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		tb.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		tb.Fatalf("%s %q: %v", method, target, err)
	}
	return readResult(tb, res)
}

func readResult(tb testing.TB, res *http.Response) result {
	tb.Helper()
	r, err := parseResult(res)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func parseResult(res *http.Response) (result, error) {
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return result{}, err
	}
	r := result{status: res.StatusCode, header: res.Header, body: body}
	if res.Header.Get("X-Echo") == "1" {
		var s received
		if err := json.Unmarshal(body, &s); err != nil {
			return result{}, fmt.Errorf("upstream echo: %w", err)
		}
		r.seen = &s
	}
	return r, nil
}

// foldName is how upstreams compare header names: lower case, '_' and '.'
// read as '-'.
func foldName(n string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '.' {
			return '-'
		}
		return r
	}, strings.ToLower(n))
}

// identityHeaders returns every header the upstream could read as an X-Auth-*
// identity header, keyed by folded name, every value of every spelling.
func identityHeaders(h http.Header) map[string][]string {
	out := map[string][]string{}
	for k, v := range h {
		if f := foldName(k); strings.HasPrefix(f, "x-auth-") {
			out[f] = append(out[f], v...)
		}
	}
	return out
}

// wantIdentity checks the identity headers the upstream received: exactly
// Portero's values for u, or none at all when u is nil.
func (st *stack) wantIdentity(tb testing.TB, seen *received, u *testUser) {
	tb.Helper()
	got := identityHeaders(seen.Header)
	if u == nil {
		if len(got) > 0 {
			tb.Errorf("upstream received identity headers on an unauthenticated route: %v", got)
		}
		return
	}
	want := map[string][]string{
		"x-auth-user-id":    {u.ID},
		"x-auth-user-email": {u.Email},
		"x-auth-user-roles": {u.roles()},
	}
	if u.LegacyID != nil {
		want["x-auth-legacy-user-id"] = []string{strconv.FormatInt(*u.LegacyID, 10)}
	}
	assertion := got["x-auth-assertion"]
	if len(assertion) != 1 {
		tb.Errorf("upstream received %d X-Auth-Assertion values, want 1", len(assertion))
	} else {
		want["x-auth-assertion"] = assertion
		st.wantAssertion(tb, assertion[0], u)
	}
	if !equalHeaders(got, want) {
		tb.Errorf("upstream identity headers:\n got %v\nwant %v", got, want)
	}
}

func equalHeaders(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// wantAssertion verifies X-Auth-Assertion as an upstream would.
func (st *stack) wantAssertion(tb testing.TB, tok string, u *testUser) {
	tb.Helper()
	c, err := st.assertions.Verify(tok, e2eAudience)
	if err != nil {
		tb.Errorf("X-Auth-Assertion does not verify for audience %q: %v", e2eAudience, err)
		return
	}
	if c.Audience != e2eAudience || c.UserID != u.ID || c.Email != u.Email || strings.Join(c.Roles, ",") != u.roles() {
		tb.Errorf("X-Auth-Assertion claims %+v, want user %s %s roles %s aud %s", c, u.ID, u.Email, u.roles(), e2eAudience)
	}
	if (c.LegacyID == nil) != (u.LegacyID == nil) || (c.LegacyID != nil && *c.LegacyID != *u.LegacyID) {
		tb.Errorf("X-Auth-Assertion legacy_id %v, want %v", c.LegacyID, u.LegacyID)
	}
	if life := c.ExpiresAt.Sub(c.IssuedAt); life <= 0 || life > 60*time.Second {
		tb.Errorf("X-Auth-Assertion lives %v, want at most 60s", life)
	}
	if c.ExpiresAt.After(time.Now().Add(61 * time.Second)) {
		tb.Errorf("X-Auth-Assertion expires at %v, more than 60s from now", c.ExpiresAt)
	}
}

// wantLegacyToken checks that Authorization carries a legacy JWT that the
// legacy app's own verification accepts, naming u, short-lived.
func (st *stack) wantLegacyToken(tb testing.TB, seen *received, u *testUser) {
	tb.Helper()
	authz := seen.Header.Values("Authorization")
	if len(authz) != 1 || !strings.HasPrefix(authz[0], "Bearer ") {
		tb.Errorf("upstream Authorization %q, want one minted legacy bearer token", authz)
		return
	}
	tok := strings.TrimPrefix(authz[0], "Bearer ")
	subj, err := st.legacy.Verify(tok)
	if err != nil {
		tb.Errorf("minted legacy token does not verify: %v", err)
		return
	}
	if subj.LegacyID == nil || *subj.LegacyID != *u.LegacyID {
		tb.Errorf("minted legacy token names %v, want legacy id %d", subj.LegacyID, *u.LegacyID)
	}
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil || claims.ExpiresAt == nil || claims.IssuedAt == nil {
		tb.Errorf("minted legacy token claims: %v", err)
		return
	}
	if life := claims.ExpiresAt.Sub(claims.IssuedAt.Time); life > time.Minute {
		tb.Errorf("minted legacy token lives %v, want at most a minute", life)
	}
}

// wantNoOwnCredentials checks that Portero's cookie and bearer token did not
// reach the upstream, and that other cookies did.
func wantNoOwnCredentials(tb testing.TB, seen *received, st *stack, otherCookie string) {
	tb.Helper()
	for _, c := range seen.Header.Values("Cookie") {
		if strings.Contains(c, e2eCookie) {
			tb.Errorf("upstream received Portero's session cookie: %q", c)
		}
	}
	if otherCookie != "" && !slices.Contains(seen.Header.Values("Cookie"), otherCookie) {
		tb.Errorf("upstream Cookie %q, want the client's other cookie %q kept", seen.Header.Values("Cookie"), otherCookie)
	}
	for _, a := range seen.Header.Values("Authorization") {
		if tok, ok := strings.CutPrefix(a, "Bearer "); ok && st.tokens.Signed(tok) {
			tb.Errorf("upstream received Portero's own bearer token")
		}
	}
}

// wantDenied waits for the proxy.denied audit row of request rid.
func (st *stack) wantDenied(tb testing.TB, userID, rid, reason string) {
	tb.Helper()
	ctx := testCtx(tb)
	deadline := time.Now().Add(10 * time.Second)
	for {
		events, _, err := st.audit.Query(ctx, audit.Filter{Action: audit.ActionProxyDenied, UserID: userID, Limit: audit.MaxLimit})
		if err != nil {
			tb.Fatalf("audit query: %v", err)
		}
		for _, ev := range events {
			if ev.Details["request_id"] == rid {
				if ev.Details["reason"] != reason || ev.UserID != userID {
					tb.Errorf("proxy.denied row %+v, want user %q reason %q", ev, userID, reason)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Errorf("no proxy.denied audit row for request %s", rid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newRequestID() string { return "e2e-" + rand.Text() }

// e2eRoutes is the route table of the end-to-end tests.
func e2eRoutes() []configs.Route {
	no := false
	return []configs.Route{
		{Path: "/pub", Mode: "public"},
		{Path: "/leg", Mode: "legacy"},
		{Path: "/gw", Mode: "gateway"},
		{Path: "/gw/admin", Mode: "gateway", Roles: []string{"admin"}},
		{Path: "/gw/write", Mode: "gateway", Permissions: []string{"samples:write"}},
		{Path: "/gw/read", Mode: "gateway", Permissions: []string{"samples:read"}},
		{Path: "/gw/lt", Mode: "gateway", LegacyToken: true},
		{Path: "/gw/json", Mode: "gateway", Unauthenticated: "json"},
		{Path: "/gw/redirect", Mode: "gateway", Unauthenticated: "redirect"},
		{Path: "/gw/poll", Mode: "gateway", Slide: &no},
		{Path: "/gw/audited", Mode: "gateway", Audit: true},
		{Path: "/dual", Mode: "dual"},
		{Path: "/dual/lt", Mode: "dual", LegacyToken: true},
		{Path: "/dual/admin", Mode: "dual", Roles: []string{"admin"}},
		// A gateway route under a public parent, and one under a legacy parent.
		{Path: "/api", Mode: "public"},
		{Path: "/api/samples", Mode: "gateway"},
		{Path: "/app", Mode: "legacy"},
		{Path: "/app/admin", Mode: "gateway", Roles: []string{"admin"}},
	}
}

// cast is the set of users and credentials of the end-to-end table.
type cast struct {
	alice, admin, analyst, carol, bob, dave, mallory *testUser
	creds                                            []credential
}

// credential is one way a client presents itself.
type credential struct {
	name string
	// who is the identity Portero must forward when it accepts the
	// credential; nil for credentials no route may accept.
	who *testUser
	// viaLegacy marks a legacy JWT (accepted on dual routes only).
	viaLegacy bool
	// header is what the client sends; cookie the whole Cookie header.
	header http.Header
	cookie string
}

// otherCookie rides along on every request; the upstream must receive it.
const otherCookie = "theme=dark"

// newCast creates the users and their credentials. The expired sessions are
// opened first and the clock moved past the idle timeout, so every later
// session is live.
func newCast(tb testing.TB, st *stack) *cast {
	tb.Helper()
	ctx := testCtx(tb)
	analystRole, err := st.users.CreateRole(ctx, authn.Role{Name: "analyst", Permissions: []string{"samples:read"}})
	if err != nil {
		tb.Fatal(err)
	}
	c := &cast{}
	c.bob = st.login(tb, st.addUser(tb, "bob@example.com", 2, 303, false))
	st.clock.Advance(e2eIdle + time.Minute)

	c.alice = st.login(tb, st.addUser(tb, "alice@example.com", 2, 101, false))
	c.admin = st.login(tb, st.addUser(tb, "root@example.com", 1, 1, true))
	c.analyst = st.login(tb, st.addUser(tb, "ana@example.com", analystRole.ID, 202, false))
	c.carol = st.login(tb, st.addUser(tb, "carol@example.com", 2, 0, false))
	c.dave = st.login(tb, st.addUser(tb, "dave@example.com", 2, 404, false))
	c.mallory = st.login(tb, st.addUser(tb, "mallory@example.com", 2, 505, false))
	if err := st.svc.RevokeSession(ctx, authn.Principal{Session: c.dave.login.Session}, c.dave.login.Session.ID, authn.ClientMeta{}); err != nil {
		tb.Fatal(err)
	}
	// A token Portero signed naming alice, carrying mallory's session: the
	// session must belong to the user the token names.
	mixed, err := st.tokens.Issue(c.mallory.login.Token.Secret(), c.alice.ID, c.mallory.login.Session.AbsoluteExpiresAt)
	if err != nil {
		tb.Fatal(err)
	}

	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	cookie := func(u *testUser) string { return otherCookie + "; " + u.cookie() }
	c.creds = []credential{
		{name: "none"},
		{name: "cookie", who: c.alice, cookie: cookie(c.alice)},
		{name: "bearer", who: c.alice, header: bearer(c.alice.login.Bearer)},
		{name: "legacy_jwt", who: c.alice, viaLegacy: true, header: bearer(legacyJWT(tb, jwt.SigningMethodHS256, []byte(e2eLegacySecret), validLegacyClaims(101)))},
		{name: "expired_cookie", cookie: cookie(c.bob)},
		{name: "expired_bearer", header: bearer(c.bob.login.Bearer)},
		{name: "revoked_cookie", cookie: cookie(c.dave)},
		{name: "revoked_bearer", header: bearer(c.dave.login.Bearer)},
		{name: "other_users_session", header: bearer(mixed)},
		{name: "admin_cookie", who: c.admin, cookie: cookie(c.admin)},
		{name: "analyst_cookie", who: c.analyst, cookie: cookie(c.analyst)},
		{name: "no_legacy_id_cookie", who: c.carol, cookie: cookie(c.carol)},
	}
	return c
}

// e2eCase is one route of the table and what each credential gets there.
type e2eCase struct {
	path string
	mode proxy.Mode
	// allow: credentials answered 200; forbid: 403. Authenticated routes
	// answer every other credential 401; public and legacy routes answer
	// everything 200.
	allow, forbid []string
	legacyToken   bool
}

var liveSessions = []string{"cookie", "bearer", "admin_cookie", "analyst_cookie", "no_legacy_id_cookie"}

func e2eCases() []e2eCase {
	with := func(a []string, more ...string) []string { return append(slices.Clone(a), more...) }
	return []e2eCase{
		{path: "/pub/x", mode: proxy.ModePublic},
		{path: "/leg/x", mode: proxy.ModeLegacy},
		{path: "/elsewhere", mode: proxy.ModeLegacy}, // default_mode
		{path: "/gw/x", mode: proxy.ModeGateway, allow: liveSessions},
		{path: "/gw/admin/x", mode: proxy.ModeGateway, allow: []string{"admin_cookie"},
			forbid: []string{"cookie", "bearer", "analyst_cookie", "no_legacy_id_cookie"}},
		{path: "/gw/write", mode: proxy.ModeGateway, allow: []string{"admin_cookie"},
			forbid: []string{"cookie", "bearer", "analyst_cookie", "no_legacy_id_cookie"}},
		{path: "/gw/read", mode: proxy.ModeGateway, allow: []string{"admin_cookie", "analyst_cookie"},
			forbid: []string{"cookie", "bearer", "no_legacy_id_cookie"}},
		{path: "/gw/lt/x", mode: proxy.ModeGateway, allow: liveSessions, legacyToken: true},
		{path: "/dual/x", mode: proxy.ModeDual, allow: with(liveSessions, "legacy_jwt")},
		{path: "/dual/lt/x", mode: proxy.ModeDual, allow: with(liveSessions, "legacy_jwt"), legacyToken: true},
		{path: "/dual/admin", mode: proxy.ModeDual, allow: []string{"admin_cookie"},
			forbid: []string{"cookie", "bearer", "analyst_cookie", "no_legacy_id_cookie", "legacy_jwt"}},
	}
}

// TestRouterEndToEnd is route × mode × credential against both backends:
// the status, and the headers the upstream actually received.
func TestRouterEndToEnd(t *testing.T) {
	t.Parallel()
	for _, be := range []backend{embedded, shared} {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			st := newStack(t, stackOptions{backend: be, routes: e2eRoutes()})
			c := newCast(t, st)
			t.Run("table", func(t *testing.T) {
				for _, tc := range e2eCases() {
					for _, cr := range c.creds {
						t.Run(strings.TrimPrefix(tc.path, "/")+"/"+cr.name, func(t *testing.T) {
							t.Parallel()
							st.checkCase(t, tc, cr)
						})
					}
				}
			})
			t.Run("unauthenticated", func(t *testing.T) { testUnauthenticated(t, st, c) })
			// Moves the clock: runs after the parallel groups above.
			t.Run("slide", func(t *testing.T) { testSlide(t, st, c) })
		})
	}
}

func (st *stack) checkCase(t *testing.T, tc e2eCase, cr credential) {
	want := http.StatusOK
	if tc.mode.Authenticated() {
		want = http.StatusUnauthorized
		if slices.Contains(tc.allow, cr.name) {
			want = http.StatusOK
		} else if slices.Contains(tc.forbid, cr.name) {
			want = http.StatusForbidden
		}
	}
	rid := newRequestID()
	h := http.Header{"X-Request-Id": {rid}}
	copyHeader(h, cr.header)
	if cr.cookie != "" {
		h.Set("Cookie", cr.cookie)
	} else {
		h.Set("Cookie", otherCookie)
	}
	res := st.do(t, http.MethodGet, tc.path, h)
	if res.status != want {
		t.Fatalf("GET %s with %s: status %d, want %d (%s)", tc.path, cr.name, res.status, want, res.body)
	}
	switch want {
	case http.StatusForbidden:
		st.wantDenied(t, cr.who.ID, rid, wantReason(tc))
		return
	case http.StatusUnauthorized:
		if res.seen != nil {
			t.Fatal("a refused request reached the upstream")
		}
		if res.header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		return
	}
	if res.seen == nil {
		t.Fatalf("answer did not come from the upstream: %s", res.body)
	}
	if res.seen.URI != tc.path {
		t.Errorf("upstream request target %q, want %q", res.seen.URI, tc.path)
	}
	var who *testUser
	if tc.mode.Authenticated() {
		who = cr.who
	}
	st.wantIdentity(t, res.seen, who)
	wantNoOwnCredentials(t, res.seen, st, otherCookie)

	authz := res.seen.Header.Values("Authorization")
	switch {
	case tc.legacyToken && who.LegacyID != nil:
		st.wantLegacyToken(t, res.seen, who)
	case tc.legacyToken:
		// A user the legacy app never knew gets no legacy token, and no
		// Authorization the client chose either.
		if len(authz) > 0 {
			t.Errorf("legacy_token route, user without legacy id: upstream Authorization %q, want none", authz)
		}
	case cr.viaLegacy:
		// The legacy app's own token passes unchanged where the legacy app
		// still authenticates (and where Portero verified it).
		if !slices.Equal(authz, cr.header.Values("Authorization")) {
			t.Errorf("upstream Authorization %q, want the client's legacy token unchanged", authz)
		}
	default:
		if len(authz) > 0 {
			t.Errorf("upstream Authorization %q, want none", authz)
		}
	}
}

func wantReason(tc e2eCase) string {
	if strings.Contains(tc.path, "admin") {
		return "role"
	}
	return "permission"
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = slices.Clone(v)
	}
}

// testUnauthenticated checks how a request without a usable session is
// answered: browsers go to login_url with a same-origin return path; API
// clients and XHR get 401 JSON with WWW-Authenticate; routes can override.
func testUnauthenticated(t *testing.T, st *stack, c *cast) {
	const html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	expired := otherCookie + "; " + c.bob.cookie()
	for _, tc := range []struct {
		name, method, target string
		header               http.Header
		status               int
		next                 string // for 302
		code                 string // for 401
	}{
		{"browser", "GET", "/gw/x", http.Header{"Accept": {html}}, 302, "/gw/x", ""},
		{"browser keeps the query", "GET", "/gw/x?y=1&z=%2F", http.Header{"Accept": {html}}, 302, "/gw/x?y=1&z=%2F", ""},
		{"browser HEAD", "HEAD", "/gw/x", http.Header{"Accept": {html}}, 302, "/gw/x", ""},
		{"browser on dual", "GET", "/dual/x", http.Header{"Accept": {html}}, 302, "/dual/x", ""},
		{"browser expired session", "GET", "/gw/x", http.Header{"Accept": {html}, "Cookie": {expired}}, 302, "/gw/x", ""},
		{"xhr", "GET", "/gw/x", http.Header{"Accept": {html}, "X-Requested-With": {"XMLHttpRequest"}}, 401, "", "SESSION_REQUIRED"},
		{"api client", "GET", "/gw/x", http.Header{"Accept": {"application/json"}}, 401, "", "SESSION_REQUIRED"},
		{"no accept", "GET", "/gw/x", nil, 401, "", "SESSION_REQUIRED"},
		{"api client expired session", "GET", "/gw/x", http.Header{"Cookie": {expired}}, 401, "", "SESSION_EXPIRED"},
		{"xhr expired session", "GET", "/gw/x", http.Header{"X-Requested-With": {"fetch"}, "Cookie": {expired}}, 401, "", "SESSION_EXPIRED"},
		// Not redirected (the body would be lost); a browser gets the
		// HTML error page.
		{"browser POST", "POST", "/gw/x", http.Header{"Accept": {html}}, 401, "", "html"},
		{"json override, browser", "GET", "/gw/json", http.Header{"Accept": {html}}, 401, "", "SESSION_REQUIRED"},
		{"redirect override, api client", "GET", "/gw/redirect/x", http.Header{"Accept": {"application/json"}}, 302, "/gw/redirect/x", ""},
		{"redirect override, xhr", "GET", "/gw/redirect", http.Header{"X-Requested-With": {"XMLHttpRequest"}}, 302, "/gw/redirect", ""},
		{"redirect override, POST", "POST", "/gw/redirect", nil, 401, "", "SESSION_REQUIRED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := st.do(t, tc.method, tc.target, tc.header)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.status, tc.status, res.body)
			}
			if res.seen != nil {
				t.Fatal("reached the upstream")
			}
			if tc.status == http.StatusFound {
				if next := wantLoginRedirect(t, res); next != tc.next {
					t.Errorf("next = %q, want %q", next, tc.next)
				}
				return
			}
			if tc.code == "html" {
				if !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") || res.header.Get("WWW-Authenticate") == "" {
					t.Errorf("headers %v, want an HTML 401 with WWW-Authenticate", res.header)
				}
				return
			}
			wantJSON401(t, res, tc.code, tc.method)
		})
	}
	t.Run("audited route records the refusal", func(t *testing.T) {
		t.Parallel()
		rid := newRequestID()
		res := st.do(t, "GET", "/gw/audited", http.Header{"X-Request-Id": {rid}})
		if res.status != http.StatusUnauthorized {
			t.Fatalf("status %d", res.status)
		}
		st.wantDenied(t, "", rid, "session_required")
	})
}

// wantLoginRedirect checks a 302 to login_url and returns its next, which
// must be a same-origin path.
func wantLoginRedirect(tb testing.TB, res result) string {
	tb.Helper()
	loc, err := url.Parse(res.header.Get("Location"))
	if err != nil {
		tb.Fatalf("Location %q: %v", res.header.Get("Location"), err)
	}
	if loc.Scheme != "" || loc.Host != "" || loc.Path != e2eLoginURL {
		tb.Errorf("Location %q, want %s?next=…", loc, e2eLoginURL)
	}
	if !strings.Contains(res.header.Get("Cache-Control"), "no-store") {
		tb.Errorf("redirect Cache-Control %q, want no-store", res.header.Get("Cache-Control"))
	}
	next := loc.Query().Get("next")
	wantSameOrigin(tb, next)
	return next
}

// wantSameOrigin fails unless next, followed by a browser from
// https://portero.example/, stays on that origin.
func wantSameOrigin(tb testing.TB, next string) {
	tb.Helper()
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\\\t\r\n") {
		tb.Errorf("next %q is not a plain same-origin path", next)
		return
	}
	base, _ := url.Parse("https://portero.example/login")
	ref, err := url.Parse(next)
	if err != nil {
		tb.Errorf("next %q does not parse: %v", next, err)
		return
	}
	if got := base.ResolveReference(ref); got.Host != "portero.example" || got.Scheme != "https" {
		tb.Errorf("next %q leads to %s", next, got)
	}
}

func wantJSON401(tb testing.TB, res result, code, method string) {
	tb.Helper()
	www := res.header.Get("WWW-Authenticate")
	if !strings.HasPrefix(www, "Bearer ") {
		tb.Errorf("WWW-Authenticate %q, want a Bearer challenge", www)
	}
	if code == "SESSION_EXPIRED" && !strings.Contains(www, `error="invalid_token"`) {
		tb.Errorf("WWW-Authenticate %q does not say the token is invalid", www)
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("Content-Type %q, want application/json", ct)
	}
	if method == http.MethodHead {
		return
	}
	var body struct{ Detail string }
	if err := json.Unmarshal(res.body, &body); err != nil || body.Detail != code {
		tb.Errorf("body %q, want detail %q", res.body, code)
	}
}

// testSlide checks that requests slide the idle timeout except on slide:
// false routes. The clock is the stores' and the service's fake clock.
func testSlide(t *testing.T, st *stack, c *cast) {
	step := e2eIdle*6/10 + time.Second // two steps exceed the idle timeout
	get := func(path string, u *testUser) int {
		return st.do(t, "GET", path, http.Header{"Cookie": {u.cookie()}}).status
	}

	// Only polling: the session dies one idle timeout after login.
	poller := st.login(t, c.carol)
	st.clock.Advance(step)
	if s := get("/gw/poll", poller); s != http.StatusOK {
		t.Fatalf("poll within the idle timeout: %d", s)
	}
	st.clock.Advance(step)
	if s := get("/gw/poll", poller); s != http.StatusUnauthorized {
		t.Fatalf("poll after an idle timeout with only polling: %d, want 401 (polling slid the session)", s)
	}

	// A real request in between keeps it alive; polls still do not.
	user := st.login(t, c.carol)
	st.clock.Advance(step)
	if s := get("/gw/x", user); s != http.StatusOK {
		t.Fatalf("request within the idle timeout: %d", s)
	}
	st.clock.Advance(step)
	if s := get("/gw/poll", user); s != http.StatusOK {
		t.Fatalf("poll within the idle timeout of the last real request: %d, want 200", s)
	}
	st.clock.Advance(step)
	if s := get("/gw/poll", user); s != http.StatusUnauthorized {
		t.Fatalf("poll an idle timeout after the last real request: %d, want 401", s)
	}
}

// TestAttackSpoofedIdentityHeaders sends identity headers in every spelling
// an upstream might read, duplicated, and listed in Connection to try to
// remove Portero's own, on every mode: the upstream must see exactly
// Portero's values (gateway, dual) or none (public, legacy).
func TestAttackSpoofedIdentityHeaders(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{backend: embedded, routes: e2eRoutes()})
	alice := st.login(t, st.addUser(t, "alice@example.com", 2, 101, false))
	carol := st.login(t, st.addUser(t, "carol@example.com", 2, 0, false))
	legacyTok := legacyJWT(t, jwt.SigningMethodHS256, []byte(e2eLegacySecret), validLegacyClaims(101))

	spellings := []string{
		"X-Auth-User-Id: evil", "x-auth-user-id: evil", "X-AUTH-USER-ID: evil", "X_Auth_User_Id: evil",
		"x_auth_user_id: evil", "X.Auth.User.Id: evil", "X-Auth_User.Id: evil",
		"X-Auth-User-Email: evil@example.com", "X_AUTH_USER_EMAIL: evil@example.com",
		"X-Auth-User-Roles: admin", "x_auth_user_roles: admin,superuser",
		"X-Auth-Legacy-User-Id: 1", "X_Auth_Legacy_User_Id: 1",
		"X-Auth-Assertion: forged", "X_Auth_Assertion: forged",
		"X-Auth-Something-Else: evil",
	}
	duplicated := []string{
		"X-Auth-User-Id: evil", "X-Auth-User-Id: evil2", "X-Auth-User-Roles: admin", "X-Auth-User-Roles: superuser",
		"X-Auth-Legacy-User-Id: 1", "X-Auth-Legacy-User-Id: 2",
	}
	connection := []string{
		"Connection: keep-alive, X-Auth-User-Id, X-Auth-User-Email, X-Auth-User-Roles, X-Auth-Legacy-User-Id, X-Auth-Assertion, Authorization, X-Request-Id",
		"Connection: x_auth_user_id",
	}
	connectionAndSpoof := append(slices.Clone(connection), "X-Auth-User-Id: evil", "X-Auth-User-Roles: admin")

	for _, rc := range []struct {
		path        string
		who         *testUser
		creds       []string
		legacyToken bool
	}{
		{"/pub/x", nil, []string{"Cookie: " + alice.cookie()}, false},
		{"/leg/x", nil, []string{"Cookie: " + alice.cookie()}, false},
		{"/elsewhere", nil, nil, false},
		{"/gw/x", alice, []string{"Cookie: " + alice.cookie()}, false},
		{"/gw/x", alice, []string{"Authorization: Bearer " + alice.login.Bearer}, false},
		{"/gw/x", carol, []string{"Cookie: " + carol.cookie()}, false},
		{"/gw/lt/x", alice, []string{"Cookie: " + alice.cookie()}, true},
		{"/dual/x", alice, []string{"Cookie: " + alice.cookie()}, false},
		{"/dual/x", alice, []string{"Authorization: Bearer " + legacyTok}, false},
		{"/dual/lt/x", alice, []string{"Authorization: Bearer " + legacyTok}, true},
	} {
		for name, attack := range map[string][]string{
			"spellings": spellings, "duplicated": duplicated, "connection": connection, "connection+spoof": connectionAndSpoof,
		} {
			via := "anonymous"
			if len(rc.creds) > 0 {
				via, _, _ = strings.Cut(rc.creds[0], ":")
			}
			if rc.who != nil {
				via += "/" + rc.who.Email
			}
			t.Run(rc.path+"/"+name+"/"+via, func(t *testing.T) {
				t.Parallel()
				res := st.raw(t, "GET", rc.path, append(slices.Clone(rc.creds), attack...)...)
				if res.status != http.StatusOK || res.seen == nil {
					t.Fatalf("status %d: %s", res.status, res.body)
				}
				st.wantIdentity(t, res.seen, rc.who)
				if rc.legacyToken {
					st.wantLegacyToken(t, res.seen, rc.who)
				}
				if ids := res.seen.Header.Values("X-Request-Id"); len(ids) != 1 || ids[0] == "" {
					t.Errorf("upstream X-Request-Id %q, want Portero's one", ids)
				}
			})
		}
	}
}

// TestAttackAuthorizationOnLegacyTokenRoutes: on a legacy_token route
// Authorization is Portero's alone. A client's own Authorization (here
// another user's valid legacy JWT) is replaced by the minted token, or
// removed for a user the legacy app never knew.
func TestAttackAuthorizationOnLegacyTokenRoutes(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{backend: embedded, routes: e2eRoutes()})
	alice := st.login(t, st.addUser(t, "alice@example.com", 2, 101, false))
	carol := st.login(t, st.addUser(t, "carol@example.com", 2, 0, false))
	st.addUser(t, "admin@example.com", 1, 1, true)
	adminsToken := "Bearer " + legacyJWT(t, jwt.SigningMethodHS256, []byte(e2eLegacySecret), validLegacyClaims(1))
	for _, path := range []string{"/gw/lt/x", "/dual/lt/x"} {
		for _, u := range []*testUser{alice, carol} {
			t.Run(path+"/"+u.Email, func(t *testing.T) {
				t.Parallel()
				res := st.do(t, "GET", path, http.Header{"Cookie": {u.cookie()}, "Authorization": {adminsToken}})
				if res.status != http.StatusOK || res.seen == nil {
					t.Fatalf("status %d: %s", res.status, res.body)
				}
				st.wantIdentity(t, res.seen, u)
				if u.LegacyID != nil {
					st.wantLegacyToken(t, res.seen, u)
				} else if authz := res.seen.Header.Values("Authorization"); len(authz) > 0 {
					t.Errorf("upstream Authorization %q for a user without legacy id, want none", authz)
				}
			})
		}
	}
}

// TestAttackOwnCredentialsNeverForwarded sends Portero's session cookie and
// bearer token in the odd shapes a client can give them, on every mode: the
// upstream never receives them, and receives the client's other cookies and
// the legacy app's own token.
func TestAttackOwnCredentialsNeverForwarded(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{backend: embedded, routes: e2eRoutes()})
	alice := st.login(t, st.addUser(t, "alice@example.com", 2, 101, false))
	dead := st.login(t, st.addUser(t, "dave@example.com", 2, 404, false))
	if err := st.sessions.Delete(testCtx(t), dead.login.Token.Key()); err != nil {
		t.Fatal(err)
	}
	legacyTok := legacyJWT(t, jwt.SigningMethodHS256, []byte(e2eLegacySecret), validLegacyClaims(101))
	for _, attack := range []struct {
		name  string
		lines []string
	}{
		{"cookie among others", []string{"Cookie: a=1; " + alice.cookie() + "; b=2"}},
		{"cookie twice", []string{"Cookie: " + alice.cookie() + "; " + alice.cookie()}},
		{"cookie lines", []string{"Cookie: a=1", "Cookie: " + alice.cookie(), "Cookie: b=2"}},
		{"dead session cookie", []string{"Cookie: " + dead.cookie()}},
		{"bearer", []string{"Authorization: Bearer " + alice.login.Bearer}},
		{"bearer, lower-case scheme", []string{"Authorization: bearer " + alice.login.Bearer}},
		{"bearer, extra spaces", []string{"Authorization: Bearer    " + alice.login.Bearer + "  "}},
		{"dead session bearer", []string{"Authorization: Bearer " + dead.login.Bearer}},
		{"bearer after a legacy token", []string{"Authorization: Bearer " + legacyTok, "Authorization: Bearer " + alice.login.Bearer}},
		{"bearer after a cookie", []string{"Cookie: " + alice.cookie(), "Authorization: Bearer " + alice.login.Bearer}},
	} {
		for _, path := range []string{"/pub/x", "/leg/x", "/gw/x", "/gw/lt/x", "/dual/x"} {
			t.Run(attack.name+path, func(t *testing.T) {
				t.Parallel()
				res := st.raw(t, "GET", path, attack.lines...)
				if res.seen == nil {
					if res.status == http.StatusUnauthorized {
						return // refused: nothing forwarded
					}
					t.Fatalf("status %d: %s", res.status, res.body)
				}
				wantNoOwnCredentials(t, res.seen, st, "")
				for _, c := range res.seen.Header.Values("Cookie") {
					if strings.Contains(c, alice.login.Token.Secret()) || strings.Contains(c, dead.login.Token.Secret()) {
						t.Errorf("upstream received a session token in Cookie %q", c)
					}
				}
				for _, a := range res.seen.Header.Values("Authorization") {
					if strings.Contains(a, alice.login.Bearer) || strings.Contains(a, dead.login.Bearer) {
						t.Error("upstream received Portero's bearer token in Authorization")
					}
				}
				if strings.Contains(attack.name, "among others") || strings.Contains(attack.name, "lines") {
					if got := strings.Join(res.seen.Header.Values("Cookie"), "; "); got != "a=1; b=2" {
						t.Errorf("upstream Cookie %q, want the other cookies a=1; b=2", got)
					}
				}
			})
		}
	}
}

// TestAttackPathTricks tries to reach a gateway route through a public or
// legacy parent with paths Portero and an upstream might read differently.
// Each must be refused (400) or decided by the gateway route (401 without a
// session, 403 for a user without the role) — never forwarded.
func TestAttackPathTricks(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{backend: embedded, routes: e2eRoutes()})
	alice := st.login(t, st.addUser(t, "alice@example.com", 2, 101, false))

	// Positive controls first: the parents do forward, the children do not.
	for target, want := range map[string]int{
		"/api/other": 200, "/api/samplesX": 200, "/api/samples": 401, "/api/samples/1": 401,
		"/app/x": 200, "/app/adminx": 200, "/app/admin": 401,
	} {
		if res := st.raw(t, "GET", target); res.status != want {
			t.Errorf("control %s: %d, want %d", target, res.status, want)
		}
	}

	tricks := func(child string) []string {
		parent, leaf := path.Split(child) // "/api/", "samples"
		enc := func(s string) string {
			var b strings.Builder
			for i := 0; i < len(s); i++ {
				fmt.Fprintf(&b, "%%%02X", s[i])
			}
			return b.String()
		}
		return []string{
			parent + "x/../" + leaf,
			parent + "./" + leaf,
			parent + "x/%2e%2e/" + leaf,
			parent + "x/%2E%2E/" + leaf,
			parent + "x/.%2e/" + leaf,
			parent + "x/%2e./" + leaf,
			parent + "x/..;/" + leaf,
			parent + "x/..%3b/" + leaf,
			parent + "x/..%3B/" + leaf,
			parent + "/" + leaf,
			"/" + child,
			parent + "x%2F..%2F" + leaf,
			parent + "x%2f%2e%2e%2f" + leaf,
			parent + "x%2F..%2F" + leaf + "/1",
			strings.TrimSuffix(parent, "/") + "%2F" + leaf,
			strings.TrimSuffix(parent, "/") + "%2f" + leaf + "/1",
			parent + "x\\..\\" + leaf,
			parent + "x%5C..%5C" + leaf,
			strings.TrimSuffix(parent, "/") + "%5C" + leaf,
			parent + enc(leaf[:1]) + leaf[1:],
			parent + enc(leaf),
			parent + strings.ToUpper(leaf),
			strings.ToUpper(child),
			parent + strings.ToUpper(leaf[:1]) + leaf[1:],
			child + ";jsessionid=1",
			child + ";x=1/1",
			strings.TrimSuffix(parent, "/") + ";x=/" + leaf,
			parent + leaf + "%3Bx",
			parent + "%252e%252e/" + leaf,
			parent + "x/..%252f" + leaf,
			parent + "x/%25%32%65%25%32%65/" + leaf,
			child + "%00.js",
			child + "%00",
			parent + leaf + "%",
			parent + leaf + "%zz",
			parent + leaf + "%0a",
			parent + leaf + "%0d%0a",
			parent + "x/./../" + leaf,
			parent + leaf + "/.",
			parent + leaf + "/..",
			parent + leaf + "/./1",
			parent + leaf + "//1",
			parent + "%2e/" + leaf,
			parent + "%u0073amples",
			parent + "%C0%AE%C0%AE/" + leaf,
			parent + "x/%c0%ae%c0%ae/" + leaf,
			"http://" + st.addr + child,
			"http://evil.example" + child,
		}
	}

	for _, child := range []string{"/api/samples", "/app/admin"} {
		for _, target := range tricks(child) {
			for _, cred := range []struct {
				name  string
				lines []string
				// deny is the gateway's decision for this client: 401, or
				// 403 for a user without the route's role.
				deny int
			}{
				{"anonymous", nil, http.StatusUnauthorized},
				{"user", []string{"Cookie: " + alice.cookie()}, http.StatusForbidden},
			} {
				if child == "/api/samples" && cred.name == "user" {
					continue // no role on /api/samples: alice is simply let in
				}
				t.Run(cred.name+" "+target, func(t *testing.T) {
					t.Parallel()
					for _, method := range []string{"GET", "POST"} {
						res := st.raw(t, method, target, cred.lines...)
						if res.seen != nil {
							t.Fatalf("%s %s was forwarded (%d) as %q", method, target, res.status, res.seen.URI)
						}
						if res.status != http.StatusBadRequest && res.status != cred.deny {
							t.Errorf("%s %s: %d, want 400 or %d (%s)", method, target, res.status, cred.deny, res.body)
						}
					}
				})
			}
		}
	}
}

// TestAttackLegacyJWTs offers forged, unsigned, expired, wrong-audience and
// otherwise bad legacy JWTs on a dual route: each is 401 and nothing reaches
// the upstream. A gateway route refuses even a valid one.
func TestAttackLegacyJWTs(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{backend: embedded, routes: e2eRoutes()})
	alice := st.addUser(t, "alice@example.com", 2, 101, false)
	inactive := st.addUser(t, "gone@example.com", 2, 606, false)
	off := false
	if _, err := st.users.UpdateUser(testCtx(t), inactive.ID, authn.UserUpdate{IsActive: &off}); err != nil {
		t.Fatal(err)
	}
	secret := []byte(e2eLegacySecret)
	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := validLegacyClaims(101)
		if mod != nil {
			mod(c)
		}
		return c
	}
	unsigned := func(c jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := legacyJWT(t, jwt.SigningMethodHS256, secret, claims(nil))
	parts := strings.Split(valid, ".")

	for _, tc := range []struct{ name, token string }{
		{"wrong secret", legacyJWT(t, jwt.SigningMethodHS256, []byte("not-the-legacy-secret"), claims(nil))},
		{"alg none", unsigned(claims(nil))},
		{"alg none, valid signature kept", strings.Join([]string{strings.Split(unsigned(claims(nil)), ".")[0], parts[1], parts[2]}, ".")},
		{"alg HS512 with the right secret", legacyJWT(t, jwt.SigningMethodHS512, secret, claims(nil))},
		{"signature stripped", parts[0] + "." + parts[1] + "."},
		{"payload swapped", parts[0] + "." + strings.Split(legacyJWT(t, jwt.SigningMethodHS256, []byte("x"), claims(func(c jwt.MapClaims) { c["sub"] = "1" })), ".")[1] + "." + parts[2]},
		{"expired", legacyJWT(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }))},
		{"no exp", legacyJWT(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"not yet valid", legacyJWT(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() }))},
		{"wrong audience", legacyJWT(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = "another-service" }))},
		{"audience list", legacyJWT(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["aud"] = []string{"another-service"} }))},
		{"unknown legacy id", legacyJWT(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "999999" }))},
		{"inactive user", legacyJWT(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "606" }))},
		{"numeric sub", legacyJWT(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = 101 }))},
		{"padded sub", legacyJWT(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["sub"] = "0101" }))},
		{"no sub", legacyJWT(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{"garbage", "not.a.jwt"},
		{"portero's signing key", legacyJWT(t, jwt.SigningMethodHS256, []byte(e2eSecret), claims(nil))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := st.do(t, "GET", "/dual/x", http.Header{"Authorization": {"Bearer " + tc.token}})
			if res.status != http.StatusUnauthorized || res.seen != nil {
				t.Fatalf("status %d, want 401 (%s)", res.status, res.body)
			}
			wantJSON401(t, res, "SESSION_EXPIRED", "GET")
		})
	}
	t.Run("control: valid token", func(t *testing.T) {
		t.Parallel()
		res := st.do(t, "GET", "/dual/x", http.Header{"Authorization": {"Bearer " + valid}})
		if res.status != http.StatusOK || res.seen == nil {
			t.Fatalf("status %d, want 200 (%s)", res.status, res.body)
		}
		st.wantIdentity(t, res.seen, alice)
	})
	t.Run("a remembered token still dies at its exp", func(t *testing.T) {
		t.Parallel()
		// exp is in the past, but within the leeway for another 1-2 s.
		exp := time.Now().Truncate(time.Second).Add(-3 * time.Second)
		deadline := exp.Add(authn.TokenLeeway)
		short := legacyJWT(t, jwt.SigningMethodHS256, secret, claims(func(c jwt.MapClaims) { c["exp"] = exp.Unix() }))
		for range 2 { // verified, then answered from the cache
			if res := st.do(t, "GET", "/dual/x", http.Header{"Authorization": {"Bearer " + short}}); res.status != http.StatusOK {
				t.Fatalf("before exp: status %d (%s)", res.status, res.body)
			}
		}
		time.Sleep(time.Until(deadline) + 10*time.Millisecond)
		if res := st.do(t, "GET", "/dual/x", http.Header{"Authorization": {"Bearer " + short}}); res.status != http.StatusUnauthorized || res.seen != nil {
			t.Fatalf("after exp: status %d, want 401", res.status)
		}
	})
	t.Run("valid token on a gateway route", func(t *testing.T) {
		t.Parallel()
		res := st.do(t, "GET", "/gw/x", http.Header{"Authorization": {"Bearer " + valid}})
		if res.status != http.StatusUnauthorized || res.seen != nil {
			t.Fatalf("status %d, want 401", res.status)
		}
	})
}

// TestAttackOpenRedirect tries to make the return path of the login
// redirect name another host: every 302's next stays on Portero's origin,
// and paths that could be read as another host are refused outright.
func TestAttackOpenRedirect(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{backend: embedded, routes: append(e2eRoutes(), configs.Route{Path: "/", Mode: "gateway"})})
	for _, target := range []string{
		"//evil.example",
		"//evil.example/gw",
		"///evil.example",
		"/\\evil.example",
		"/\\/evil.example",
		"\\\\evil.example",
		"/%2F%2Fevil.example",
		"/%2f/evil.example",
		"/%5Cevil.example",
		"/%5C%5Cevil.example",
		"/gw/..//evil.example",
		"/gw/%2e%2e//evil.example",
		"/%09/evil.example",
		"/%0d%0aLocation:%20https://evil.example",
		"/gw;//evil.example",
		"/.//evil.example",
		"/gw?next=//evil.example",
		"/gw?x=%0d%0aLocation:%20https://evil.example",
		"/?//evil.example",
		"/@evil.example",
		"/gw/@evil.example",
		"http://evil.example/gw",
		"https://evil.example//evil.example",
		"/https://evil.example",
		"/https:%2F%2Fevil.example",
		"/%68ttps://evil.example",
		"/gw/\u3002evil.example",
	} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			res := st.raw(t, "GET", target, "Accept: text/html")
			switch res.status {
			case http.StatusBadRequest:
			case http.StatusFound:
				wantLoginRedirect(t, res)
			default:
				t.Errorf("status %d, want 302 to the login page or 400", res.status)
			}
			if res.seen != nil {
				t.Error("reached the upstream")
			}
		})
	}
}

// TestOwnEndpointsNotShadowed: a catch-all gateway route does not hide
// Portero's own endpoints or /-/.
func TestOwnEndpointsNotShadowed(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{backend: embedded, defaultMode: "gateway", routes: []configs.Route{{Path: "/", Mode: "gateway"}}})
	u := st.addUser(t, "alice@example.com", 2, 101, false)
	if res := st.do(t, "GET", "/-/healthz", nil); res.status != http.StatusOK {
		t.Errorf("/-/healthz: %d", res.status)
	}
	body := strings.NewReader(`{"username":"alice@example.com","password":"` + e2ePassword + `"}`)
	res, err := st.client.Post(st.url+"/auth/login", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	r := readResult(t, res)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("/auth/login behind a catch-all gateway route: %d %s", r.status, r.body)
	}
	got := st.do(t, "GET", "/anything", http.Header{"Authorization": {"Bearer " + tok.AccessToken}})
	if got.status != http.StatusOK || got.seen == nil {
		t.Fatalf("token from /auth/login on the catch-all route: %d", got.status)
	}
	st.wantIdentity(t, got.seen, u)
}

// FuzzRequestPath sends arbitrary request targets through the whole front
// door (as a browser, without a session) and checks what the normaliser and
// router let through: a request the upstream receives is one no reading
// places under the gateway route, and a login redirect never leaves the
// origin. FuzzDecide covers Decide alone; this covers the path the upstream
// actually receives.
func FuzzRequestPath(f *testing.F) {
	for _, s := range []string{
		"/", "/api/samples", "/api/other", "/api/x/%2e%2e/samples", "/api;x=/samples", "/API/Samples",
		"//evil.example", "/\\evil", "/api%2Fsamples", "/api/%2573amples", "http://h/api/samples", "*",
		"/api/samples?next=//evil", "/gw/x?y=1",
	} {
		f.Add(s)
	}
	st := newStack(f, stackOptions{backend: embedded, routes: e2eRoutes()})
	f.Fuzz(func(t *testing.T, target string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: portero.example\r\nAccept: text/html\r\n\r\n")))
		if err != nil {
			return // not a request a server would accept
		}
		req.RemoteAddr = "127.0.0.1:1234"
		rec := httptest.NewRecorder()
		st.front.ServeHTTP(rec, req)
		res := rec.Result()
		if res.StatusCode >= 500 {
			t.Fatalf("%q: status %d", target, res.StatusCode)
		}
		if res.StatusCode == http.StatusFound {
			wantLoginRedirect(t, readResult(t, res))
			return
		}
		if res.Header.Get("X-Echo") != "1" {
			return
		}
		seen := readResult(t, res).seen
		p, _, _ := strings.Cut(seen.URI, "?")
		if r, err := st.router.Table().Decide("GET", p); err != nil || r.Mode.Authenticated() {
			t.Fatalf("%q forwarded without a session as %q, which decides to %v, %v", target, seen.URI, r, err)
		}
		for _, reading := range readings(p) {
			if reading == "/api/samples" || strings.HasPrefix(reading, "/api/samples/") ||
				reading == "/gw" || strings.HasPrefix(reading, "/gw/") {
				t.Fatalf("%q forwarded without a session as %q, which reads as %q", target, seen.URI, reading)
			}
		}
	})
}

// readings are ways common upstreams read a path: decoded once or twice,
// ';' parameters dropped, backslashes as slashes, dot segments resolved,
// case folded.
func readings(p string) []string {
	var out []string
	add := func(s string) {
		s = strings.ReplaceAll(s, "\\", "/")
		if i := strings.IndexByte(s, ';'); i >= 0 {
			segs := strings.Split(s, "/")
			for j, seg := range segs {
				seg, _, _ = strings.Cut(seg, ";")
				segs[j] = seg
			}
			s = strings.Join(segs, "/")
		}
		c := path.Clean("/" + s)
		out = append(out, c, strings.ToLower(c))
	}
	add(p)
	if d, err := url.PathUnescape(p); err == nil {
		add(d)
		if dd, err := url.PathUnescape(d); err == nil {
			add(dd)
		}
	}
	return out
}
