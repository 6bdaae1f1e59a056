package authn_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/notify/notifytest"
)

// TestRecoveryPages: a browser without JavaScript asks for a reset link,
// follows the mailed link, sets a new password (a weak one is explained
// first), signs in with it; the used link then says it is dead. The
// confirm-e-mail page works the same way. Forms without their CSRF token
// are refused.
func TestRecoveryPages(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{Mail: true, Flows: authn.FlowConfig{
		ResetURL: "https://app.test" + authn.PathResetPage, VerifyURL: "https://app.test" + authn.PathVerifyPage}})
	acct := a.newAccount(t, false)
	b := newBrowserSim(t, a)

	signin := b.get("/auth/signin")
	wantBody(t, signin, `href="/auth/forgot"`)
	form := b.get("/auth/forgot")
	wantStatus(t, form, http.StatusOK)
	wantStatus(t, b.post("/auth/forgot", url.Values{"email": {acct.Email}}, nil), http.StatusForbidden)
	sent := b.post("/auth/forgot", url.Values{"email": {acct.Email}, "csrf_token": {form.token(t)}}, nil)
	wantStatus(t, sent, http.StatusOK)
	wantBody(t, sent, "If there is an account for that address")
	unknown := b.post("/auth/forgot", url.Values{"email": {"nobody@example.test"}, "csrf_token": {form.token(t)}}, nil)
	if unknown.status != sent.status || unknown.body != sent.body {
		t.Errorf("the page tells known from unknown addresses:\n%s\n%s", sent, unknown)
	}

	m := a.mail.Wait(t, acct.Email, 1, mailWait)
	link, err := url.Parse(strings.Fields(m.Text[strings.Index(m.Text, "https://app.test"):])[0])
	if err != nil {
		t.Fatal(err)
	}
	resetPath := link.Path + "?" + link.RawQuery
	reset := b.get(resetPath)
	wantStatus(t, reset, http.StatusOK)
	wantBody(t, reset, `name="token" value="`+m.Token()+`"`)
	fill := func(pw string) url.Values {
		return url.Values{"token": {m.Token()}, "new_password": {pw}, "confirm_password": {pw}, "csrf_token": {reset.token(t)}}
	}
	weak := b.post(authn.PathResetPage, fill("short"), nil)
	wantStatus(t, weak, http.StatusBadRequest)
	wantBody(t, weak, "does not meet the rules")
	const next = "Br0wser-Harbor-Lamp!"
	done := b.post(authn.PathResetPage, fill(next), nil)
	if done.status != http.StatusSeeOther || done.header.Get("Location") != "/auth/signin?reason=reset" {
		t.Fatalf("reset: %v %v", done, done.header)
	}
	wantBody(t, b.get("/auth/signin?reason=reset"), "Sign in with the new password")
	if p := b.signIn(acct.Email, next, "/"); p.status != http.StatusSeeOther {
		t.Fatalf("sign in with the new password: %v", p)
	}
	// Signed in now: the form carries the session's token, and the used link is dead.
	again := b.get(resetPath)
	dead := b.post(authn.PathResetPage, url.Values{"token": {m.Token()}, "new_password": {next + "x"}, "confirm_password": {next + "x"}, "csrf_token": {again.token(t)}}, nil)
	wantStatus(t, dead, http.StatusBadRequest)
	wantBody(t, dead, "not valid any more")
	wantStatus(t, b.get(authn.PathResetPage+"?token=garbage"), http.StatusBadRequest)

	// Confirm the e-mail address from its link.
	a.do(t, req{method: "POST", path: "/auth/request-verify-token", json: map[string]string{"email": acct.Email}})
	// The second link (after the reset link): the password-changed notice,
	// sent in the background, may arrive before or after it.
	vm := a.mail.WaitFor(t, acct.Email, 2, mailWait, notifytest.HasToken)
	confirm := b.get(authn.PathVerifyPage + "?token=" + vm.Token())
	wantStatus(t, confirm, http.StatusOK)
	ok := b.post(authn.PathVerifyPage, url.Values{"token": {vm.Token()}, "csrf_token": {confirm.token(t)}}, nil)
	wantStatus(t, ok, http.StatusOK)
	wantBody(t, ok, "confirmed")
	if u, err := a.users.UserByID(t.Context(), acct.ID); err != nil || !u.IsVerified {
		t.Errorf("after the confirm page: verified %v, %v", u.IsVerified, err)
	}
}

// TestSignInPageMFA: the sign-in page asks a user with a second factor for
// a code after the right password, and signs in only with a right one.
func TestSignInPageMFA(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{})
	acct := a.newAccount(t, false)
	secret, _ := a.mfaUser(t, acct)
	a.clock.Advance(30 * time.Second)
	b := newBrowserSim(t, a)
	step := b.signIn(acct.Email, acct.password, "/somewhere")
	wantStatus(t, step, http.StatusOK)
	wantBody(t, step, `name="mfa_token"`, `autocomplete="one-time-code"`)
	if _, ok := b.cookies[e2eCookie]; ok {
		t.Fatal("a session cookie before the second factor")
	}
	token := regexp.MustCompile(`name="mfa_token" value="([^"]+)"`).FindStringSubmatch(step.body)[1]
	send := func(code string) page {
		return b.post("/auth/signin/mfa", url.Values{"mfa_token": {token}, "code": {code}, "next": {"/somewhere"}, "csrf_token": {step.token(t)}}, nil)
	}
	wrong := send("000000")
	wantStatus(t, wrong, http.StatusBadRequest)
	wantBody(t, wrong, "not right")
	ok := send(a.code(t, secret))
	if ok.status != http.StatusSeeOther || ok.header.Get("Location") != "/somewhere" || b.cookies[e2eCookie] == "" {
		t.Fatalf("second step: %v %v", ok, ok.header)
	}
	wantStatus(t, b.get("/auth/password"), http.StatusOK)
}

// TestTwoStepPage: a signed-in browser sets up the second factor from the
// page (QR code inline, first code, recovery codes), then turns it off
// with its password and a code.
func TestTwoStepPage(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{})
	acct := a.newAccount(t, false)
	b := newBrowserSim(t, a)
	if p := b.signIn(acct.Email, acct.password, "/"); p.status != http.StatusSeeOther {
		t.Fatal(p)
	}
	page := b.get("/auth/two-step")
	wantStatus(t, page, http.StatusOK)
	wantBody(t, page, `value="start"`)
	setup := b.post("/auth/two-step", url.Values{"action": {"start"}, "csrf_token": {page.token(t)}}, nil)
	wantStatus(t, setup, http.StatusOK)
	wantBody(t, setup, `src="data:image/png;base64,`)
	secret := regexp.MustCompile(`Key: <code>([A-Z2-7]+)</code>`).FindStringSubmatch(setup.body)
	if secret == nil {
		t.Fatalf("no key on the page: %s", setup.body)
	}
	if csp := setup.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data:") {
		t.Errorf("CSP %q does not allow the inline QR code", csp)
	}
	if p := b.post("/auth/two-step", url.Values{"action": {"confirm"}, "code": {"000000"}}, nil); p.status != http.StatusForbidden {
		t.Errorf("a post without its CSRF token: %v", p.status)
	}
	done := b.post("/auth/two-step", url.Values{"action": {"confirm"}, "code": {a.code(t, secret[1])}, "csrf_token": {setup.token(t)}}, nil)
	wantStatus(t, done, http.StatusOK)
	if n := strings.Count(done.body, "<li><code>"); n != 10 {
		t.Errorf("%d recovery codes on the page, want 10", n)
	}
	a.challenge(t, acct, "/auth/login")

	a.clock.Advance(30 * time.Second)
	again := b.get("/auth/two-step")
	wantBody(t, again, `value="disable"`)
	off := b.post("/auth/two-step", url.Values{"action": {"disable"}, "password": {acct.password}, "code": {a.code(t, secret[1])}, "csrf_token": {again.token(t)}}, nil)
	wantStatus(t, off, http.StatusOK)
	wantBody(t, off, "Two-step sign-in is off.")
	a.login(t, acct.Email, acct.password)
}

// TestSignInPageEnrolment: a browser user whose role requires a second
// factor they have not set up is walked through setting it up from the
// sign-in page (QR code, first code, recovery codes), then signs in with a
// code; the enrolment form works only with its token and CSRF token.
// enrolRequiredAccount is an account whose role requires a second factor
// it has not set up.
func enrolRequiredAccount(t *testing.T, a *e2eApp) account {
	t.Helper()
	adm := creds{bearer: a.loginVerified(t)}
	r := a.do(t, adm.on(req{method: "POST", path: "/roles", json: map[string]any{"name": "lab-" + randHex(3), "mfa_required": true}}))
	if r.status != http.StatusCreated {
		t.Fatalf("create role: %v", r)
	}
	acct := a.newAccount(t, false)
	if r := a.do(t, adm.on(req{method: "PATCH", path: "/users/" + acct.ID, json: map[string]any{"role_id": r.object(t)["id"]}})); r.status != http.StatusOK {
		t.Fatal(r)
	}
	return acct
}

func TestSignInPageEnrolment(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{})
	acct := enrolRequiredAccount(t, a)

	b := newBrowserSim(t, a)
	intro := b.signIn(acct.Email, acct.password, "/somewhere")
	wantStatus(t, intro, http.StatusOK)
	wantBody(t, intro, `action="/auth/signin/enrol"`, `name="mfa_token"`, `value="start"`)
	if _, ok := b.cookies[e2eCookie]; ok {
		t.Fatal("a session cookie before the second factor is set up")
	}
	token := regexp.MustCompile(`name="mfa_token" value="([^"]+)"`).FindStringSubmatch(intro.body)[1]
	send := func(p page, form url.Values) page {
		form.Set("mfa_token", token)
		form.Set("next", "/somewhere")
		form.Set("csrf_token", p.token(t))
		return b.post("/auth/signin/enrol", form, nil)
	}

	forged := b.post("/auth/signin/enrol", url.Values{"mfa_token": {token}, "action": {"start"}, "csrf_token": {"x"}}, nil)
	wantStatus(t, forged, http.StatusForbidden)
	bad := b.post("/auth/signin/enrol", url.Values{"mfa_token": {strings.Repeat("A", 43)}, "action": {"start"}, "csrf_token": {intro.token(t)}}, nil)
	wantStatus(t, bad, http.StatusBadRequest)
	wantBody(t, bad, "sign in again")

	setup := send(intro, url.Values{"action": {"start"}})
	wantStatus(t, setup, http.StatusOK)
	wantBody(t, setup, `src="data:image/png;base64,`, `value="confirm"`)
	secret := regexp.MustCompile(`Key: <code>([A-Z2-7]+)</code>`).FindStringSubmatch(setup.body)
	if secret == nil {
		t.Fatalf("no key on the page: %s", setup.body)
	}
	wrong := send(setup, url.Values{"action": {"confirm"}, "code": {"000000"}})
	wantStatus(t, wrong, http.StatusBadRequest)
	wantBody(t, wrong, "not right")
	setup = send(wrong, url.Values{"action": {"start"}})
	secret = regexp.MustCompile(`Key: <code>([A-Z2-7]+)</code>`).FindStringSubmatch(setup.body)
	done := send(setup, url.Values{"action": {"confirm"}, "code": {a.code(t, secret[1])}})
	wantStatus(t, done, http.StatusOK)
	if n := strings.Count(done.body, "<li><code>"); n != 10 {
		t.Errorf("%d recovery codes on the page, want 10", n)
	}
	wantBody(t, done, `href="/auth/signin?next=%2Fsomewhere"`)
	if _, ok := b.cookies[e2eCookie]; ok {
		t.Fatal("setting up the second factor signed in without a code")
	}
	// The token is spent; the next sign-in asks for a code and succeeds.
	wantStatus(t, send(setup, url.Values{"action": {"start"}}), http.StatusBadRequest)
	a.clock.Advance(30 * time.Second)
	step := b.signIn(acct.Email, acct.password, "/somewhere")
	wantBody(t, step, `action="/auth/signin/mfa"`)
	mfaTok := regexp.MustCompile(`name="mfa_token" value="([^"]+)"`).FindStringSubmatch(step.body)[1]
	ok := b.post("/auth/signin/mfa", url.Values{"mfa_token": {mfaTok}, "code": {a.code(t, secret[1])}, "next": {"/somewhere"}, "csrf_token": {step.token(t)}}, nil)
	if ok.status != http.StatusSeeOther || ok.header.Get("Location") != "/somewhere" || b.cookies[e2eCookie] == "" {
		t.Fatalf("sign-in after the set-up: %v %v", ok, ok.header)
	}
}

// TestSignInPageEnrolmentBesideASession: a browser still signed in as
// someone else (or holding a stale cookie) can set up the second factor of
// the account it is signing in to: the form is checked against the
// sign-in nonce, not the other session's token.
func TestSignInPageEnrolmentBesideASession(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{})
	acct := enrolRequiredAccount(t, a)
	other := a.newAccount(t, false)
	b := newBrowserSim(t, a)
	if p := b.signIn(other.Email, other.password, "/"); p.status != http.StatusSeeOther {
		t.Fatal(p)
	}
	intro := b.signIn(acct.Email, acct.password, "/")
	wantBody(t, intro, `value="start"`)
	token := regexp.MustCompile(`name="mfa_token" value="([^"]+)"`).FindStringSubmatch(intro.body)[1]
	setup := b.post("/auth/signin/enrol", url.Values{"mfa_token": {token}, "action": {"start"}, "csrf_token": {intro.token(t)}}, nil)
	wantStatus(t, setup, http.StatusOK)
	wantBody(t, setup, `value="confirm"`)
	// Still only from this site.
	cross := b.post("/auth/signin/enrol", url.Values{"mfa_token": {token}, "action": {"start"}, "csrf_token": {intro.token(t)}},
		map[string]string{"Origin": "https://evil.example"})
	wantStatus(t, cross, http.StatusForbidden)
}
