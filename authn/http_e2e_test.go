package authn_test

// End-to-end tests of /auth and /users over real HTTP, wired as
// cmd/portero's newApp wires them: the user store on a fresh database, live
// sessions and lockout counters in Redis (or the embedded SQLite and
// in-memory stores), the durable audit writer, and proxy.Front in front so
// client addresses and request ids reach the handlers as in production.
// Every test runs the same body against both backends, as subtests, to show
// they behave identically.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/authn"
	"github.com/portero/portero/notify"
	"github.com/portero/portero/notify/notifytest"
	"github.com/portero/portero/proxy"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/sessionstest"
	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// e2eSecret is the secret_key of every test app; the JWT forgery tests
// derive the real signing key from it.
const e2eSecret = "e2e-secret-key-0123456789abcdef-0123456789"

// e2eCookie is the production default cookie name.
const e2eCookie = "__Host-portero_session"

// e2ePassword passes the default policy and is nobody's e-mail local part.
const e2ePassword = "Qu1et-Harbor-Lamp!"

// e2eEpoch starts every fake clock: a fixed instant unlike the machine's
// time, so a component that reads the real clock where it should read the
// injected one shows up as a wrong answer.
var e2eEpoch = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// cheapArgon2 keeps hashing out of the way of the tests' running time.
var cheapArgon2 = authn.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// backend is one way of storing what Portero keeps.
type backend struct {
	name  string
	db    func(testing.TB) *storage.DB
	redis bool // sessions and counters in Redis, else in memory
}

var e2eBackends = []backend{
	{name: "postgres+redis", db: storagetest.NewPostgres, redis: true},
	{name: "sqlite+memory", db: storagetest.NewSQLite, redis: false},
}

// forEachBackend runs fn once per backend, as parallel subtests.
func forEachBackend(t *testing.T, fn func(t *testing.T, be backend)) {
	t.Helper()
	for _, be := range e2eBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			fn(t, be)
		})
	}
}

// appConfig are the settings a test varies; zero values are production's.
type appConfig struct {
	Registration string // default "open"
	Reveal       bool
	Lockout      authn.LockoutPolicy
	Idle         time.Duration // default 60m
	Absolute     time.Duration // default 12h
	Argon2       *authn.Argon2Params
	// RealClock uses time.Now everywhere; otherwise every injectable clock
	// is one fake clock starting at e2eEpoch.
	RealClock bool
	// DeadRedis points sessions and counters at a Redis that is not there
	// (backends with redis only).
	DeadRedis bool
	// Pages brands the browser pages.
	Pages authn.PagesConfig
	// Mail sends the flows' messages over SMTP to a capturing server
	// (e2eApp.mail); otherwise no notifier is configured.
	Mail  bool
	Flows authn.FlowConfig
}

// e2eApp is a running Portero (own endpoints only) and its stores.
type e2eApp struct {
	be       backend
	url      string
	client   *http.Client
	db       *storage.DB
	users    authn.UserStore
	audit    audit.Store
	hasher   *authn.Hasher
	clock    *sessionstest.FakeClock // nil with RealClock
	rdb      redis.UniversalClient   // nil with memory stores
	prefix   string                  // Redis key prefix of this app
	csrf     *authn.CSRF             // makes the X-CSRF-Token of cookie requests
	accounts atomic.Int64
	ips      atomic.Int64
	mail     *notifytest.Server   // with appConfig.Mail
	metrics  *prometheus.Registry // the service's flow metrics
}

// ip returns a client address no other request of this app has used, so
// the per-address throttle of one case never reaches another.
func (a *e2eApp) ip() string {
	n := a.ips.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff)
}

func newE2EApp(t testing.TB, be backend, cfg appConfig) *e2eApp {
	t.Helper()
	if cfg.Registration == "" {
		cfg.Registration = "open"
	}
	if cfg.Idle == 0 {
		cfg.Idle = 60 * time.Minute
	}
	if cfg.Absolute == 0 {
		cfg.Absolute = 12 * time.Hour
	}
	params := cheapArgon2
	if cfg.Argon2 != nil {
		params = *cfg.Argon2
	}
	a := &e2eApp{be: be, db: be.db(t)}
	a.users = authn.NewUserStore(a.db)
	a.audit = audit.NewStore(a.db)

	now := time.Now
	var sessOpts []sessions.Option
	var cntOpts []sessions.CounterOption
	if !cfg.RealClock {
		a.clock = sessionstest.NewFakeClock(e2eEpoch)
		now = a.clock.Now
		sessOpts = append(sessOpts, sessions.WithClock(now))
		cntOpts = append(cntOpts, sessions.WithCounterClock(now))
	}

	var store sessions.Store
	var counters sessions.CounterStore
	var err error
	if be.redis {
		if cfg.DeadRedis {
			a.rdb = deadRedis(t)
		} else {
			a.rdb, a.prefix = testRedis(t)
		}
		sessOpts = append(sessOpts, sessions.WithKeyPrefix(a.prefix+"sess:"))
		cntOpts = append(cntOpts, sessions.WithCounterKeyPrefix(a.prefix+"cnt:"))
		if store, err = sessions.NewRedisStore(a.rdb, cfg.Idle, cfg.Absolute, sessOpts...); err != nil {
			t.Fatal(err)
		}
		if counters, err = sessions.NewRedisCounters(a.rdb, cntOpts...); err != nil {
			t.Fatal(err)
		}
	} else {
		if store, err = sessions.NewMemoryStore(cfg.Idle, cfg.Absolute, sessOpts...); err != nil {
			t.Fatal(err)
		}
		if counters, err = sessions.NewMemoryCounters(cntOpts...); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = store.Close(context.Background())
		_ = counters.Close(context.Background())
	})

	lockout, err := authn.NewLockout(counters, cfg.Lockout)
	if err != nil {
		t.Fatal(err)
	}
	if a.hasher, err = authn.NewHasher(params, 0, 64, authn.DefaultHasherMaxWait); err != nil {
		t.Fatal(err)
	}
	ring, err := authn.NewKeyring([]byte(e2eSecret))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := authn.NewSessionTokens(ring, now)
	if err != nil {
		t.Fatal(err)
	}
	if a.csrf, err = authn.NewCSRF(ring); err != nil {
		t.Fatal(err)
	}
	writer := newTestWriter(t, a.audit)
	log := zap.NewNop()
	var notifier authn.Notifier
	if cfg.Mail {
		a.mail = notifytest.NewServer(t)
		if notifier, err = notify.NewSMTP(a.mail.Config("Portero <no-reply@portero.test>")); err != nil {
			t.Fatal(err)
		}
	}
	a.metrics = prometheus.NewRegistry()
	sealer, err := authn.NewSecretSealer(ring)
	if err != nil {
		t.Fatal(err)
	}
	svc := authn.NewService(authn.ServiceDeps{
		Users: a.users, Sessions: store, Hasher: a.hasher, Lockout: lockout,
		Tokens: tokens, Audit: writer, Now: now, Log: log,
		AccountTokens: authn.NewAccountTokenStore(a.db), Notifier: notifier, FlowMetrics: authn.NewFlowMetrics(a.metrics),
		MFAStore: authn.NewMFAStore(a.db), MFASealer: sealer,
	}, authn.ServiceConfig{
		Registration: cfg.Registration, RevealLock: cfg.Reveal,
		IdleTimeout: cfg.Idle, AbsoluteTimeout: cfg.Absolute, Policy: authn.DefaultPasswordPolicy(),
		Flows: cfg.Flows,
	})
	t.Cleanup(func() { _ = svc.Close(context.Background()) })
	creds := authn.NewCredentials(svc, e2eCookie, nil)
	own := authn.NewHandlers(svc, creds, authn.HandlerConfig{CookieName: e2eCookie, CookieSecure: true, CSRF: a.csrf, Pages: cfg.Pages}, log).Echo()

	// The test client connects from loopback, trusted like a load balancer
	// in front of Portero, so each request can name its client address in
	// X-Forwarded-For.
	front := proxy.NewFront(proxy.FrontOptions{
		Own:         own,
		OwnPrefixes: []string{"/auth", "/users", "/roles"},
		Health:      http.NotFoundHandler(),
		Forward:     http.NotFoundHandler(),
		IPs:         proxy.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}),
		Log:         log,
	})
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	a.url = srv.URL
	a.client = srv.Client()
	a.client.Timeout = 30 * time.Second
	return a
}

// testRedis is a Redis client and key prefix of the test's own.
func testRedis(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	return sessionstest.RedisClient(t, "authn-e2e")
}

// deadRedis is a client for an address where nothing listens any more.
func deadRedis(t testing.TB) redis.UniversalClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	rdb, err := sessions.NewRedisClient("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// account is a user of a test app and the password it was made with.
type account struct {
	authn.User
	password string
}

// newAccount stores a user directly (as `portero users create` would), with
// a unique e-mail. admin gives role 1.
func (a *e2eApp) newAccount(t testing.TB, admin bool) account {
	t.Helper()
	n := a.accounts.Add(1)
	kind := "user"
	if admin {
		kind = "admin"
	}
	email := fmt.Sprintf("%s%d.%s@example.test", kind, n, randHex(3))
	hash, err := a.hasher.Hash(context.Background(), e2ePassword)
	if err != nil {
		t.Fatal(err)
	}
	u := authn.User{Email: email, HashedPassword: hash, IsActive: true, FirstName: "Ana", LastName: "Pérez"}
	if admin {
		u.RoleID = 1
	}
	created, err := a.users.CreateUser(context.Background(), u)
	if err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	return account{User: created, password: e2ePassword}
}

// req is one request to the app.
type req struct {
	method, path string
	json         any    // sent as application/json
	raw          string // sent as is, with ctype
	ctype        string
	form         url.Values // sent as a form
	cookie       string     // session cookie value
	bearer       string
	ip           string // client address, via X-Forwarded-For from the trusted loopback peer
	ua           string
	header       map[string]string
}

// resp is an answer, body read.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) String() string { return fmt.Sprintf("%d %s", r.status, r.body) }

// detail is the "detail" member of an error body.
func (r resp) detail() any {
	var v struct {
		Detail any `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil {
		return nil
	}
	return v.Detail
}

// object decodes a JSON object body.
func (r resp) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// cookie returns the named Set-Cookie of the answer, or nil.
func (r resp) cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (a *e2eApp) do(t testing.TB, rq req) resp {
	t.Helper()
	r, err := a.send(rq)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send is do for goroutines other than the test's, which must not call
// t.Fatal.
func (a *e2eApp) send(rq req) (resp, error) {
	var body io.Reader
	ctype := rq.ctype
	switch {
	case rq.json != nil:
		b, err := json.Marshal(rq.json)
		if err != nil {
			return resp{}, err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	case rq.form != nil:
		body, ctype = strings.NewReader(rq.form.Encode()), "application/x-www-form-urlencoded"
	case rq.raw != "":
		body = strings.NewReader(rq.raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, rq.method, a.url+rq.path, body)
	if err != nil {
		return resp{}, err
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	if rq.cookie != "" {
		r.AddCookie(&http.Cookie{Name: e2eCookie, Value: rq.cookie})
		// The token a page of Portero's (or GET /auth/csrf) gives the
		// browser; a test sets the header itself to send another.
		if _, own := rq.header[authn.CSRFHeader]; !own {
			r.Header.Set(authn.CSRFHeader, a.csrf.SessionToken(rq.cookie))
		}
	}
	if rq.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+rq.bearer)
	}
	if rq.ip != "" {
		r.Header.Set("X-Forwarded-For", rq.ip)
	}
	ua := rq.ua
	if ua == "" {
		ua = "portero-e2e/1.0"
	}
	r.Header.Set("User-Agent", ua)
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	res, err := a.client.Do(r)
	if err != nil {
		return resp{}, fmt.Errorf("%s %s: %w", rq.method, rq.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, fmt.Errorf("%s %s: reading body: %w", rq.method, rq.path, err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}, nil
}

// credentials of a signed-in client: one of them is set.
type creds struct{ cookie, bearer string }

func (c creds) on(rq req) req {
	rq.cookie, rq.bearer = c.cookie, c.bearer
	return rq
}

// login signs in with /auth/login and returns the bearer token.
func (a *e2eApp) login(t testing.TB, email, password string) string {
	t.Helper()
	r := a.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"username": email, "password": password}})
	if r.status != http.StatusOK {
		t.Fatalf("login %s: %v", email, r)
	}
	tok, _ := r.object(t)["access_token"].(string)
	if tok == "" {
		t.Fatalf("login %s: no access_token in %s", email, r.body)
	}
	return tok
}

// cookieLogin signs in with /auth/cookie/login and returns the cookie value.
func (a *e2eApp) cookieLogin(t testing.TB, email, password string) string {
	t.Helper()
	r := a.do(t, req{method: "POST", path: "/auth/cookie/login", json: map[string]string{"username": email, "password": password}})
	c := r.cookie(e2eCookie)
	if r.status != http.StatusNoContent || c == nil || c.Value == "" {
		t.Fatalf("cookie login %s: %v (cookie %v)", email, r, c)
	}
	return c.Value
}

// signIn returns credentials of the given kind ("cookie" or "bearer").
func (a *e2eApp) signIn(t testing.TB, acct account, via string) creds {
	t.Helper()
	if via == "cookie" {
		return creds{cookie: a.cookieLogin(t, acct.Email, acct.password)}
	}
	return creds{bearer: a.login(t, acct.Email, acct.password)}
}

// me is GET /users/me with the credentials; its status says whether they work.
func (a *e2eApp) me(t testing.TB, c creds) resp {
	t.Helper()
	return a.do(t, c.on(req{method: "GET", path: "/users/me"}))
}

// auditRows returns the audit rows matching f, waiting briefly until want
// accepts them (an event written to the spool during a slow insert reaches
// the table a moment later).
func (a *e2eApp) auditRows(t testing.TB, f audit.Filter, want func([]audit.Event) bool) []audit.Event {
	t.Helper()
	f.Limit = audit.MaxLimit
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rows, _, err := a.audit.Query(ctx, f)
		cancel()
		if err != nil {
			t.Fatalf("audit query %+v: %v", f, err)
		}
		if want == nil || want(rows) || time.Now().After(deadline) {
			return rows
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rowsExactly is an auditRows condition: exactly n rows.
func rowsExactly(n int) func([]audit.Event) bool {
	return func(rows []audit.Event) bool { return len(rows) == n }
}

// wantDetail checks an error answer's status and detail code.
func wantDetail(t testing.TB, r resp, status int, detail any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if detail == nil {
		return
	}
	if got := r.detail(); fmt.Sprint(got) != fmt.Sprint(detail) {
		t.Fatalf("detail %v, want %v (body %s)", got, detail, r.body)
	}
}

// wantValidation checks a 422 in FastAPI's shape naming field ("": any).
func wantValidation(t testing.TB, r resp, field string) {
	t.Helper()
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422: %s", r.status, r.body)
	}
	var body struct {
		Detail []struct {
			Loc  []any  `json:"loc"`
			Msg  string `json:"msg"`
			Type string `json:"type"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Detail) == 0 {
		t.Fatalf("422 body %s is not FastAPI's {\"detail\": [{loc, msg, type}]}: %v", r.body, err)
	}
	for _, d := range body.Detail {
		if len(d.Loc) == 0 || d.Loc[0] != "body" || d.Msg == "" || d.Type == "" {
			t.Errorf("422 entry %+v lacks loc/msg/type", d)
		}
		if field == "" || (len(d.Loc) > 1 && d.Loc[1] == field) {
			return
		}
	}
	t.Fatalf("422 body %s names no field %q", r.body, field)
}

func jsonContentType(t testing.TB, r resp) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
}

// hasKeys checks a JSON object has every key of want and none of forbidden.
func hasKeys(t testing.TB, m map[string]any, want []string, forbidden []string) {
	t.Helper()
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("body lacks %q: %v", k, m)
		}
	}
	for k := range m {
		if slices.Contains(forbidden, k) {
			t.Errorf("body has %q, which must never leave Portero: %v", k, m)
		}
	}
}

// newTestWriter is an audit writer with a spool of the test's own. Its
// cleanup is registered after the database's, so it runs first: the writer
// flushes into a database that is still open.
func newTestWriter(t testing.TB, store audit.Inserter) *audit.Writer {
	t.Helper()
	writer, err := audit.NewWriter(store, audit.WriterConfig{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := writer.Close(ctx); err != nil {
			t.Errorf("audit writer close: %v", err)
		}
	})
	return writer
}
