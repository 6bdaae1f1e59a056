package authn_test

// The OpenAPI document against the real handlers: every answer the main
// endpoints give to scripted requests (success and error alike) must be
// one the document describes — status, content type and body schema — so
// the document cannot drift from the code. The validator is
// pb33f/libopenapi-validator, which implements OpenAPI 3.1 and JSON Schema
// 2020-12 (unevaluatedProperties, type arrays for null).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pquerna/otp/totp"
	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/authn"
	"github.com/portero/portero/notify"
	"github.com/portero/portero/notify/notifytest"
	"github.com/portero/portero/proxy"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/storage/storagetest"
)

// newOpenAPIApp is newE2EApp's sqlite+memory wiring plus what that helper
// leaves out — the stats, the audit query and the own prefixes of
// configs.OwnPaths and /openapi.json — on the real clock.
func newOpenAPIApp(t testing.TB) (*e2eApp, *echo.Echo) {
	t.Helper()
	a := &e2eApp{be: backend{name: "sqlite+memory"}, db: storagetest.NewSQLite(t)}
	a.users = authn.NewUserStore(a.db)
	a.audit = audit.NewStore(a.db)
	store, err := sessions.NewMemoryStore(time.Hour, 12*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	counters, err := sessions.NewMemoryCounters()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = store.Close(context.Background())
		_ = counters.Close(context.Background())
	})
	lockout, err := authn.NewLockout(counters, authn.LockoutPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	if a.hasher, err = authn.NewHasher(cheapArgon2, 0, 64, authn.DefaultHasherMaxWait); err != nil {
		t.Fatal(err)
	}
	ring, err := authn.NewKeyring([]byte(e2eSecret))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := authn.NewSessionTokens(ring, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if a.csrf, err = authn.NewCSRF(ring); err != nil {
		t.Fatal(err)
	}
	writer := newTestWriter(t, a.audit)
	log := zap.NewNop()
	a.mail = notifytest.NewServer(t)
	sealer, err := authn.NewSecretSealer(ring)
	if err != nil {
		t.Fatal(err)
	}
	mailer, err := notify.NewSMTP(a.mail.Config("no-reply@portero.test"))
	if err != nil {
		t.Fatal(err)
	}
	svc := authn.NewService(authn.ServiceDeps{
		Users: a.users, Sessions: store, Hasher: a.hasher, Lockout: lockout,
		Tokens: tokens, Audit: writer, Now: time.Now, Log: log,
		AccountTokens: authn.NewAccountTokenStore(a.db), Notifier: mailer,
		MFAStore: authn.NewMFAStore(a.db), MFASealer: sealer,
	}, authn.ServiceConfig{
		Registration: "open", IdleTimeout: time.Hour, AbsoluteTimeout: 12 * time.Hour, Policy: authn.DefaultPasswordPolicy(),
	})
	t.Cleanup(func() { _ = svc.Close(context.Background()) })
	creds := authn.NewCredentials(svc, e2eCookie, nil)
	own := authn.NewHandlers(svc, creds, authn.HandlerConfig{
		CookieName: e2eCookie, CookieSecure: true, CSRF: a.csrf,
		Stats:      authn.NewStats(a.db, a.users, audit.NewStatsReader(a.db), time.Now),
		AuditQuery: audit.NewQueryHandler(a.audit, audit.HandlerConfig{Logger: log}),
		Routes:     noToggles{},
		Migration:  fixedMigration{},
	}, log).Echo()
	front := proxy.NewFront(proxy.FrontOptions{
		Own:         own,
		OwnPrefixes: []string{"/auth", "/users", "/audit", "/roles", "/routes", "/openapi.json"},
		Health:      http.NotFoundHandler(),
		Forward:     http.NotFoundHandler(),
		IPs:         proxy.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}),
		Log:         log,
	})
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	a.url, a.client = srv.URL, srv.Client()
	a.client.Timeout = 30 * time.Second
	return a, own
}

// fixedMigration is one route's migration counts.
type fixedMigration struct{}

func (fixedMigration) Migration() proxy.MigrationSnapshot {
	return proxy.MigrationSnapshot{Since: time.Now(), Scope: "instance", Routes: []proxy.RouteCredentials{
		{Route: "/api/samples", PorteroSession: 3, LegacyJWT: 1, Total: 4, PorteroShare: 0.75, LegacyShare: 0.25},
	}}
}

// noToggles is an empty route table, enough to register the /routes endpoints.
type noToggles struct{}

func (noToggles) View() proxy.RoutesView { return proxy.RoutesView{Routes: []proxy.RouteState{}} }
func (noToggles) Set(context.Context, string, proxy.Mode, proxy.Actor) ([]proxy.ModeChange, error) {
	return nil, proxy.ErrUnknownRoute
}
func (noToggles) Unset(context.Context, string, proxy.Actor) ([]proxy.ModeChange, error) {
	return nil, proxy.ErrUnknownRoute
}
func (noToggles) Reset(context.Context, proxy.Actor) ([]proxy.ModeChange, error) { return nil, nil }

// newDocValidator loads doc and fails the test unless the document itself
// is valid OpenAPI 3.1.
func newDocValidator(t testing.TB, doc []byte) validator.Validator {
	t.Helper()
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatalf("parse document: %v", err)
	}
	if v := d.GetVersion(); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("document is OpenAPI %s, want 3.1", v)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatalf("build validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %s: %s %v", e.Message, e.Reason, e.SchemaValidationErrors)
		}
		t.FailNow()
	}
	return v
}

// apiCheck sends requests to a and checks every answer against the document.
type apiCheck struct {
	a *e2eApp
	v validator.Validator
}

// do sends rq and checks the answer's status against want, then the answer
// against the document. Requests the test means to be valid are checked too.
func (c apiCheck) do(t *testing.T, rq req, want int, validRequest bool) resp {
	t.Helper()
	r := c.a.do(t, rq)
	if r.status != want {
		t.Fatalf("%s %s: got %v, want status %d", rq.method, rq.path, r, want)
	}
	hreq, err := c.request(rq)
	if err != nil {
		t.Fatal(err)
	}
	hres := &http.Response{StatusCode: r.status, Header: r.header, Body: io.NopCloser(bytes.NewReader(r.body)), Request: hreq}
	ok, errs := c.v.ValidateHttpResponse(hreq, hres)
	if validRequest {
		hreq, _ = c.request(rq)
		rok, rerrs := c.v.ValidateHttpRequest(hreq)
		ok, errs = ok && rok, append(errs, rerrs...)
	}
	if !ok {
		for _, e := range errs {
			t.Errorf("%s %s → %d: %s: %s %v", rq.method, rq.path, r.status, e.Message, e.Reason, e.SchemaValidationErrors)
		}
		t.Fatalf("answer %s does not match the document", r.body)
	}
	return r
}

// request rebuilds rq as the client sent it (as e2eApp.send builds it).
func (c apiCheck) request(rq req) (*http.Request, error) {
	var body io.Reader
	ctype := rq.ctype
	switch {
	case rq.json != nil:
		b, err := json.Marshal(rq.json)
		if err != nil {
			return nil, err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	case rq.form != nil:
		body, ctype = strings.NewReader(rq.form.Encode()), "application/x-www-form-urlencoded"
	case rq.raw != "":
		body = strings.NewReader(rq.raw)
	}
	r, err := http.NewRequest(rq.method, "http://portero.test"+rq.path, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	if rq.cookie != "" {
		r.AddCookie(&http.Cookie{Name: e2eCookie, Value: rq.cookie})
		r.Header.Set(authn.CSRFHeader, c.a.csrf.SessionToken(rq.cookie))
	}
	if rq.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+rq.bearer)
	}
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	return r, nil
}

func TestOpenAPIDocumentMatchesAnswers(t *testing.T) {
	t.Parallel()
	a, own := newOpenAPIApp(t)

	// The document is public and is what the embedded file says, with the
	// server URL set to the prefix.
	r := a.do(t, req{method: "GET", path: "/openapi.json"})
	if r.status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %v", r)
	}
	jsonContentType(t, r)
	c := apiCheck{a: a, v: newDocValidator(t, r.body)}
	c.do(t, req{method: "GET", path: "/openapi.json"}, http.StatusOK, true)

	// Every JSON endpoint the handlers register is in the document (the
	// browser pages answer HTML and are left out on purpose).
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, rt := range own.Routes() {
		p := rt.Path
		if strings.HasPrefix(p, "/auth/sign") || strings.HasPrefix(p, "/auth/password") || strings.HasPrefix(p, "/auth/static") || rt.Method == echo.RouteNotFound ||
			p == "/auth/forgot" || p == "/auth/two-step" || p == authn.PathResetPage || p == authn.PathVerifyPage {
			continue
		}
		p = strings.Replace(p, "/routes/*", "/routes/{route}/mode", 1)
		p = regexp.MustCompile(`:(\w+)`).ReplaceAllString(p, "{$1}")
		if _, ok := doc.Paths[p][strings.ToLower(rt.Method)]; !ok {
			t.Errorf("%s %s is served but not in the document", rt.Method, p)
		}
	}

	user, admin := a.newAccount(t, false), a.newAccount(t, true)
	email := fmt.Sprintf("new.%s@example.test", randHex(4))

	// Accounts and sign-in.
	c.do(t, req{method: "POST", path: "/auth/register", json: map[string]any{"email": email, "password": e2ePassword, "first_name": "Eva"}}, http.StatusCreated, true)
	c.do(t, req{method: "POST", path: "/auth/register", json: map[string]any{"email": email, "password": e2ePassword}}, http.StatusBadRequest, true)
	c.do(t, req{method: "POST", path: "/auth/register", json: map[string]any{"email": "x" + email, "password": "short"}}, http.StatusBadRequest, true)
	c.do(t, req{method: "POST", path: "/auth/register", json: map[string]any{"email": "not-an-email"}}, http.StatusUnprocessableEntity, false)
	c.do(t, req{method: "POST", path: "/auth/register", raw: "{}", ctype: "text/plain"}, http.StatusUnsupportedMediaType, false)
	login := c.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"username": user.Email, "password": user.password}}, http.StatusOK, true)
	bearer, _ := login.object(t)["access_token"].(string)
	c.do(t, req{method: "POST", path: "/auth/login", form: map[string][]string{"username": {user.Email}, "password": {"wrong"}}}, http.StatusBadRequest, true)
	c.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"username": user.Email}}, http.StatusUnprocessableEntity, false)
	ck := c.do(t, req{method: "POST", path: "/auth/cookie/login", json: map[string]string{"username": user.Email, "password": user.password}}, http.StatusNoContent, true)
	cookie := ck.cookie(e2eCookie).Value

	// One's own account and sessions, by bearer and by cookie.
	for _, cr := range []creds{{bearer: bearer}, {cookie: cookie}} {
		c.do(t, cr.on(req{method: "GET", path: "/users/me"}), http.StatusOK, true)
		c.do(t, cr.on(req{method: "PATCH", path: "/users/me", json: map[string]any{"first_name": "Ann"}}), http.StatusOK, true)
		c.do(t, cr.on(req{method: "GET", path: "/auth/sessions"}), http.StatusOK, true)
		c.do(t, cr.on(req{method: "POST", path: "/auth/change-password", json: map[string]string{"current_password": "wrong-one", "new_password": "An0ther-Long-Pass!", "confirm_password": "An0ther-Long-Pass!"}}), http.StatusBadRequest, true)
		c.do(t, cr.on(req{method: "POST", path: "/auth/change-password", json: map[string]string{"current_password": user.password, "new_password": "An0ther-Long-Pass!", "confirm_password": "different"}}), http.StatusUnprocessableEntity, true)
		c.do(t, cr.on(req{method: "POST", path: "/auth/change-password", json: map[string]string{}}), http.StatusUnprocessableEntity, false)
		c.do(t, cr.on(req{method: "DELETE", path: "/auth/sessions/no-such-session"}), http.StatusNotFound, true)
		c.do(t, cr.on(req{method: "GET", path: "/roles"}), http.StatusForbidden, true)
	}
	c.do(t, req{method: "GET", path: "/auth/csrf", cookie: cookie}, http.StatusOK, true)
	c.do(t, req{method: "GET", path: "/auth/csrf"}, http.StatusOK, true)
	c.do(t, req{method: "GET", path: "/users/me"}, http.StatusUnauthorized, false)
	c.do(t, req{method: "GET", path: "/users/me", bearer: "not-a-token"}, http.StatusUnauthorized, true)

	// Administration, statistics and the audit trail.
	adm := creds{bearer: a.login(t, admin.Email, admin.password)}
	c.do(t, adm.on(req{method: "GET", path: "/users"}), http.StatusOK, true)
	c.do(t, adm.on(req{method: "GET", path: "/routes"}), http.StatusOK, true)
	c.do(t, adm.on(req{method: "POST", path: "/routes/reset"}), http.StatusOK, true)
	c.do(t, adm.on(req{method: "PUT", path: "/routes/%2Fnowhere/mode", json: map[string]string{"mode": "gateway"}}), http.StatusNotFound, true)
	c.do(t, adm.on(req{method: "GET", path: "/users?limit=0"}), http.StatusUnprocessableEntity, false)
	c.do(t, adm.on(req{method: "GET", path: "/users/" + user.ID}), http.StatusOK, true)
	c.do(t, adm.on(req{method: "GET", path: "/users/00000000-0000-0000-0000-000000000000"}), http.StatusNotFound, true)
	c.do(t, adm.on(req{method: "PATCH", path: "/users/" + user.ID, json: map[string]any{"is_verified": true}}), http.StatusOK, true)
	c.do(t, adm.on(req{method: "POST", path: "/users/" + user.ID + "/unlock"}), http.StatusOK, true)
	c.do(t, adm.on(req{method: "POST", path: "/users", json: map[string]any{"email": "made." + email, "password": e2ePassword, "role_id": 2}}), http.StatusCreated, true)
	c.do(t, adm.on(req{method: "GET", path: "/roles"}), http.StatusOK, true)
	role := c.do(t, adm.on(req{method: "POST", path: "/roles", json: map[string]any{"name": "auditor-" + randHex(3), "permissions": []string{"audit:read"}, "mfa_required": true}}), http.StatusCreated, true)
	roleID := fmt.Sprint(role.object(t)["id"])
	c.do(t, adm.on(req{method: "GET", path: "/roles/" + roleID}), http.StatusOK, true)
	// A user of the role must enrol before any session.
	lab := a.newAccount(t, false)
	c.do(t, adm.on(req{method: "PATCH", path: "/users/" + lab.ID, json: map[string]any{"role_id": role.object(t)["id"]}}), http.StatusOK, true)
	must := c.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"username": lab.Email, "password": lab.password}}, http.StatusUnauthorized, true)
	enrolTok, _ := must.object(t)["mfa_token"].(string)
	c.do(t, req{method: "POST", path: "/auth/mfa/enroll", json: map[string]string{"mfa_token": "not-a-token"}}, http.StatusBadRequest, true)
	c.do(t, req{method: "POST", path: "/auth/mfa/enroll", json: map[string]string{"mfa_token": enrolTok}}, http.StatusOK, true)
	c.do(t, adm.on(req{method: "PATCH", path: "/users/" + lab.ID, json: map[string]any{"role_id": 2}}), http.StatusOK, true)
	c.do(t, adm.on(req{method: "PATCH", path: "/roles/" + roleID, json: map[string]any{"permissions": []string{}, "mfa_required": false}}), http.StatusOK, true)
	c.do(t, adm.on(req{method: "DELETE", path: "/roles/" + roleID}), http.StatusNoContent, true)
	c.do(t, adm.on(req{method: "GET", path: "/roles/" + roleID}), http.StatusNotFound, true)
	for _, p := range []string{"active-users", "login-attempts", "locked-accounts", "sessions", "migration"} {
		c.do(t, adm.on(req{method: "GET", path: "/auth/stats/" + p + "?window=7d"}), http.StatusOK, true)
	}
	c.do(t, adm.on(req{method: "GET", path: "/auth/stats/sessions?window=forever"}), http.StatusUnprocessableEntity, false)
	a.auditRows(t, audit.Filter{Action: "auth.login"}, func(ev []audit.Event) bool { return len(ev) > 0 })
	c.do(t, adm.on(req{method: "GET", path: "/audit?limit=5"}), http.StatusOK, true)
	c.do(t, adm.on(req{method: "GET", path: "/audit?since=yesterday"}), http.StatusUnprocessableEntity, false)

	// Signing out ends the session.
	c.do(t, req{method: "POST", path: "/auth/logout", bearer: bearer}, http.StatusNoContent, true)
	c.do(t, req{method: "POST", path: "/auth/logout", bearer: bearer}, http.StatusUnauthorized, true)
	// Password reset and e-mail verification.
	c.do(t, req{method: "POST", path: "/auth/forgot-password", json: map[string]string{"email": user.Email}}, http.StatusAccepted, true)
	c.do(t, req{method: "POST", path: "/auth/forgot-password", json: map[string]string{"email": "nope"}}, http.StatusUnprocessableEntity, false)
	resetToken := a.mail.Wait(t, user.Email, 1, mailWait).Token()
	c.do(t, req{method: "POST", path: "/auth/reset-password", json: map[string]string{"token": resetToken, "password": "short"}}, http.StatusBadRequest, true)
	c.do(t, req{method: "POST", path: "/auth/reset-password", json: map[string]string{"token": resetToken, "password": user.password + "2"}}, http.StatusOK, true)
	c.do(t, req{method: "POST", path: "/auth/reset-password", json: map[string]string{"token": resetToken, "password": user.password}}, http.StatusBadRequest, true)
	c.do(t, req{method: "POST", path: "/auth/reset-password", json: map[string]string{"token": resetToken}}, http.StatusUnprocessableEntity, false)
	user.password += "2"
	unverified := a.newAccount(t, false) // user was verified by the admin above
	c.do(t, req{method: "POST", path: "/auth/request-verify-token", json: map[string]string{"email": unverified.Email}}, http.StatusAccepted, true)
	verifyToken := a.mail.Wait(t, unverified.Email, 1, mailWait).Token()
	c.do(t, req{method: "POST", path: "/auth/verify", json: map[string]string{"token": verifyToken}}, http.StatusOK, true)
	c.do(t, req{method: "POST", path: "/auth/verify", json: map[string]string{"token": verifyToken}}, http.StatusBadRequest, true)
	c.do(t, req{method: "POST", path: "/auth/verify", json: map[string]string{}}, http.StatusUnprocessableEntity, false)

	// Second factor: enrol, confirm, two-step login (bearer and cookie), disable, admin reset.
	mfa := a.newAccount(t, false)
	mb := creds{bearer: a.login(t, mfa.Email, mfa.password)}
	enrol := c.do(t, mb.on(req{method: "POST", path: "/auth/mfa/enroll"}), http.StatusOK, true)
	secret, _ := enrol.object(t)["secret"].(string)
	totpNow := func() string {
		code, err := totp.GenerateCode(secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	c.do(t, mb.on(req{method: "POST", path: "/auth/mfa/confirm", json: map[string]string{"code": "000000"}}), http.StatusBadRequest, true)
	conf := c.do(t, mb.on(req{method: "POST", path: "/auth/mfa/confirm", json: map[string]string{"code": totpNow()}}), http.StatusOK, true)
	recovery, _ := conf.object(t)["recovery_codes"].([]any)
	c.do(t, mb.on(req{method: "POST", path: "/auth/mfa/confirm", json: map[string]string{}}), http.StatusUnprocessableEntity, false)
	ch := c.do(t, req{method: "POST", path: "/auth/login", json: map[string]string{"username": mfa.Email, "password": mfa.password}}, http.StatusUnauthorized, true)
	mfaTok, _ := ch.object(t)["mfa_token"].(string)
	c.do(t, req{method: "POST", path: "/auth/mfa/verify", json: map[string]string{"mfa_token": mfaTok, "code": "000000"}}, http.StatusBadRequest, true)
	c.do(t, req{method: "POST", path: "/auth/mfa/verify", json: map[string]string{"mfa_token": mfaTok, "code": recovery[0].(string)}}, http.StatusOK, true)
	c.do(t, req{method: "POST", path: "/auth/mfa/verify", json: map[string]string{"mfa_token": mfaTok, "code": recovery[1].(string)}}, http.StatusBadRequest, true)
	ch = c.do(t, req{method: "POST", path: "/auth/cookie/login", json: map[string]string{"username": mfa.Email, "password": mfa.password}}, http.StatusUnauthorized, true)
	mfaTok, _ = ch.object(t)["mfa_token"].(string)
	c.do(t, req{method: "POST", path: "/auth/cookie/mfa/verify", json: map[string]string{"mfa_token": mfaTok, "code": recovery[2].(string)}}, http.StatusNoContent, true)
	c.do(t, mb.on(req{method: "POST", path: "/auth/mfa/disable", json: map[string]string{"password": "Wrong-Pass-99!", "code": recovery[3].(string)}}), http.StatusBadRequest, true)
	c.do(t, mb.on(req{method: "POST", path: "/auth/mfa/disable", json: map[string]string{"password": mfa.password, "code": recovery[4].(string)}}), http.StatusNoContent, true)
	c.do(t, adm.on(req{method: "POST", path: "/users/" + mfa.ID + "/mfa/reset"}), http.StatusNoContent, true)
	c.do(t, mb.on(req{method: "POST", path: "/users/" + mfa.ID + "/mfa/reset"}), http.StatusForbidden, true)

	c.do(t, adm.on(req{method: "DELETE", path: "/users/" + user.ID}), http.StatusNoContent, true)
}

// TestOpenAPIDocumentServer: the server URL follows api_prefix, so tools
// that read the document call the right paths.
func TestOpenAPIDocumentServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ prefix, want string }{{"", "/"}, {"/api/v1", "/api/v1"}} {
		b, err := authn.OpenAPIDocument(tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			OpenAPI string `json:"openapi"`
			Servers []struct {
				URL string `json:"url"`
			} `json:"servers"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.OpenAPI != "3.1.0" || len(doc.Servers) != 1 || doc.Servers[0].URL != tc.want {
			t.Errorf("prefix %q: openapi %q servers %+v, want 3.1.0 and [%s]", tc.prefix, doc.OpenAPI, doc.Servers, tc.want)
		}
		newDocValidator(t, b)
	}
}
