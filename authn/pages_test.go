package authn_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/storage/storagetest"
)

// The browser pages over real HTTP, against the SQLite and in-memory
// stores: what a browser without JavaScript does, cookie by cookie.

var sqliteMemory = backend{name: "sqlite+memory", db: storagetest.NewSQLite}

// browserSim is a browser as far as the pages care: it keeps cookies
// (Secure ones too: the test server stands in for HTTPS), follows no
// redirect by itself, and sends Origin on posts like a real one.
type browserSim struct {
	t       testing.TB
	a       *e2eApp
	ip      string
	cookies map[string]string
	client  *http.Client
}

func newBrowserSim(t testing.TB, a *e2eApp) *browserSim {
	return &browserSim{t: t, a: a, ip: a.ip(), cookies: map[string]string{}, client: &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// page is an answer with its body as text.
type page struct {
	status int
	header http.Header
	body   string
}

func (p page) String() string { return fmt.Sprintf("%d %s", p.status, p.body) }

func (b *browserSim) get(path string) page { return b.send("GET", path, nil, nil) }

// post sends a form from one of Portero's own pages unless headers say otherwise.
func (b *browserSim) post(path string, form url.Values, headers map[string]string) page {
	h := map[string]string{"Origin": b.a.url}
	for k, v := range headers {
		h[k] = v
	}
	return b.send("POST", path, form, h)
}

func (b *browserSim) send(method, path string, form url.Values, headers map[string]string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, method, b.a.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.Header.Set("Accept", "text/html")
	r.Header.Set("X-Forwarded-For", b.ip)
	for name, v := range b.cookies {
		r.AddCookie(&http.Cookie{Name: name, Value: v})
	}
	for k, v := range headers {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	res, err := b.client.Do(r)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return page{status: res.StatusCode, header: res.Header, body: string(raw)}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// token is the CSRF token of a rendered form.
func (p page) token(t testing.TB) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no csrf_token field in %s", p)
	}
	return m[1]
}

// signIn fills the sign-in form reached with next.
func (b *browserSim) signIn(email, password, next string) page {
	b.t.Helper()
	form := b.get("/auth/signin?next=" + url.QueryEscape(next))
	return b.post("/auth/signin", url.Values{"username": {email}, "password": {password},
		"next": {next}, "csrf_token": {form.token(b.t)}}, nil)
}

func wantStatus(t testing.TB, p page, status int) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d: %s", p.status, status, p.body)
	}
}

func wantBody(t testing.TB, p page, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(p.body, w) {
			t.Errorf("page lacks %q:\n%s", w, p.body)
		}
	}
}

func TestSignInPageIsAccessibleAndLocked(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{})
	b := newBrowserSim(t, a)
	p := b.get("/auth/signin?next=" + url.QueryEscape("/app/samples?id=7"))
	wantStatus(t, p, http.StatusOK)
	wantBody(t, p, `<html lang="en">`, `<label for="username">`, `<label for="password">`,
		`autocomplete="username"`, `autocomplete="current-password"`, `name="next" value="/app/samples?id=7"`,
		`<title>Sign in · Portero</title>`, `href="/auth/static/portero.css?v=`, `<main id="main"`)
	for _, forbidden := range []string{"<script", "style=", "http://", "https://"} {
		if strings.Contains(p.body, forbidden) {
			t.Errorf("page contains %q (inline code or an outside resource)", forbidden)
		}
	}
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q allows unsafe code", csp)
	}
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
		"Cache-Control": "no-store", "Content-Type": "text/html; charset=UTF-8",
	} {
		if got := p.header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	sc := strings.Join(p.header.Values("Set-Cookie"), "\n")
	if !strings.Contains(sc, "__Host-portero_signin=") || !strings.Contains(sc, "HttpOnly") ||
		!strings.Contains(sc, "Secure") || !strings.Contains(sc, "SameSite=Strict") || !strings.Contains(sc, "Path=/") {
		t.Errorf("pre-sign-in cookie %q: want __Host-, HttpOnly, Secure, SameSite=Strict, Path=/", sc)
	}
	// A second tab keeps the same nonce, so the first tab's form still works.
	p2 := b.get("/auth/signin")
	if len(p2.header.Values("Set-Cookie")) != 0 {
		t.Errorf("a second visit replaced the pre-sign-in cookie: %v", p2.header.Values("Set-Cookie"))
	}
	if p.token(t) == p2.token(t) {
		t.Error("two renderings carry the same token; each should be salted afresh")
	}

	css := b.get("/auth/static/portero.css")
	wantStatus(t, css, http.StatusOK)
	if ct := css.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") || css.header.Get("ETag") == "" {
		t.Errorf("stylesheet Content-Type %q ETag %q", ct, css.header.Get("ETag"))
	}
	if again := b.send("GET", "/auth/static/portero.css", nil, map[string]string{"If-None-Match": css.header.Get("ETag")}); again.status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", again.status)
	}
	if logo := b.get("/auth/static/logo.svg"); logo.status != 200 || !strings.HasPrefix(logo.header.Get("Content-Type"), "image/svg+xml") {
		t.Errorf("logo: %d %q", logo.status, logo.header.Get("Content-Type"))
	}
	for _, bad := range []string{"/auth/static/nope.css", "/auth/static/..%2Fpages.go", "/auth/static/"} {
		if got := b.get(bad); got.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", bad, got.status)
		}
	}
}

func TestSignInFlow(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{})
	acct := a.newAccount(t, false)

	t.Run("success returns to the page asked for", func(t *testing.T) {
		b := newBrowserSim(t, a)
		p := b.signIn(acct.Email, acct.password, "/app/samples?id=7")
		wantStatus(t, p, http.StatusSeeOther)
		if loc := p.header.Get("Location"); loc != "/app/samples?id=7" {
			t.Errorf("Location %q, want the return path", loc)
		}
		sc := strings.Join(p.header.Values("Set-Cookie"), "\n")
		if !strings.Contains(sc, e2eCookie+"=") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Lax") || !strings.Contains(sc, "Secure") {
			t.Errorf("session cookie %q: want HttpOnly, Secure, SameSite=Lax", sc)
		}
		if _, ok := b.cookies["__Host-portero_signin"]; ok {
			t.Error("the pre-sign-in cookie outlived the sign-in")
		}
		if me := a.me(t, creds{cookie: b.cookies[e2eCookie]}); me.status != http.StatusOK {
			t.Errorf("the new session does not work: %v", me)
		}
		// Signed in, the page says so and offers a way on.
		again := b.get("/auth/signin?next=%2Fapp")
		wantBody(t, again, "You are signed in as", acct.Email, `href="/app"`)
	})

	t.Run("signing in again ends the browser's previous session", func(t *testing.T) {
		b := newBrowserSim(t, a)
		wantStatus(t, b.signIn(acct.Email, acct.password, "/"), http.StatusSeeOther)
		first := b.cookies[e2eCookie]
		wantStatus(t, b.signIn(acct.Email, acct.password, "/"), http.StatusSeeOther)
		if b.cookies[e2eCookie] == first {
			t.Fatal("the session id was reused")
		}
		if me := a.me(t, creds{cookie: first}); me.status != http.StatusUnauthorized {
			t.Errorf("the replaced session still works: %v", me)
		}
	})

	t.Run("wrong password and unknown e-mail look the same", func(t *testing.T) {
		b := newBrowserSim(t, a)
		wrong := b.signIn(acct.Email, "Wrong-Pass-99!", "/x")
		unknown := b.signIn("nobody."+randHex(4)+"@example.test", "Wrong-Pass-99!", "/x")
		for _, p := range []page{wrong, unknown} {
			wantStatus(t, p, http.StatusBadRequest)
			wantBody(t, p, "The e-mail address or password is incorrect.", `role="alert"`, `name="next" value="/x"`)
			if _, ok := b.cookies[e2eCookie]; ok {
				t.Fatal("a failed sign-in set a session cookie")
			}
		}
		strip := func(p page) string {
			s := csrfField.ReplaceAllString(p.body, "")
			return regexp.MustCompile(`value="[^"]*@example\.test"`).ReplaceAllString(s, "")
		}
		if strip(wrong) != strip(unknown) {
			t.Errorf("the pages differ:\n%s\n---\n%s", wrong.body, unknown.body)
		}
	})

	t.Run("empty fields", func(t *testing.T) {
		b := newBrowserSim(t, a)
		p := b.signIn("", "", "/")
		wantStatus(t, p, http.StatusUnprocessableEntity)
		wantBody(t, p, "Enter your e-mail address and your password.")
	})

	t.Run("HTML in the input is escaped", func(t *testing.T) {
		b := newBrowserSim(t, a)
		p := b.signIn(`"><script>alert(1)</script>@x.test`, "Wrong-Pass-99!", "/")
		if strings.Contains(p.body, "<script>") {
			t.Errorf("input reflected unescaped:\n%s", p.body)
		}
	})

	t.Run("open redirects end on /", func(t *testing.T) {
		for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "/%2F%2Fevil.example", "%2F%2Fevil.example", "/%5Cevil.example", "javascript:alert(1)", "/\t/evil.example"} {
			b := newBrowserSim(t, a)
			form := b.get("/auth/signin?next=" + url.QueryEscape(next))
			if !strings.Contains(form.body, `name="next" value="/"`) {
				t.Errorf("next %q rendered as something other than /", next)
			}
			p := b.post("/auth/signin", url.Values{"username": {acct.Email}, "password": {acct.password},
				"next": {next}, "csrf_token": {form.token(t)}}, nil)
			if loc := p.header.Get("Location"); p.status != http.StatusSeeOther || loc != "/" {
				t.Errorf("next %q: %d Location %q, want 303 /", next, p.status, loc)
			}
		}
	})

	t.Run("a form without its token is refused", func(t *testing.T) {
		for name, mutate := range map[string]func(b *browserSim, f url.Values){
			"no token":  func(b *browserSim, f url.Values) { f.Del("csrf_token") },
			"no cookie": func(b *browserSim, f url.Values) { delete(b.cookies, "__Host-portero_signin") },
			"another browser's form": func(b *browserSim, f url.Values) {
				f.Set("csrf_token", newBrowserSim(t, a).get("/auth/signin").token(t))
			},
			"a session token": func(b *browserSim, f url.Values) {
				f.Set("csrf_token", a.csrf.SessionToken(b.cookies["__Host-portero_signin"]))
			},
		} {
			b := newBrowserSim(t, a)
			form := b.get("/auth/signin")
			f := url.Values{"username": {acct.Email}, "password": {acct.password}, "csrf_token": {form.token(t)}}
			mutate(b, f)
			p := b.post("/auth/signin", f, nil)
			if p.status != http.StatusForbidden || !strings.Contains(p.body, "This form had expired") {
				t.Errorf("%s: %d, want 403 with a fresh form: %s", name, p.status, p.body)
			}
			if _, ok := b.cookies[e2eCookie]; ok {
				t.Errorf("%s: signed in without a valid token", name)
			}
			// The fresh form it got works.
			retry := b.post("/auth/signin", url.Values{"username": {acct.Email}, "password": {acct.password}, "csrf_token": {p.token(t)}}, nil)
			wantStatus(t, retry, http.StatusSeeOther)
		}
	})

	t.Run("a post from another site is refused", func(t *testing.T) {
		b := newBrowserSim(t, a)
		form := b.get("/auth/signin")
		p := b.post("/auth/signin", url.Values{"username": {acct.Email}, "password": {acct.password}, "csrf_token": {form.token(t)}},
			map[string]string{"Origin": "https://evil.example"})
		wantStatus(t, p, http.StatusForbidden)
		wantBody(t, p, "did not come from a page of this site")
		if _, ok := b.cookies[e2eCookie]; ok {
			t.Error("signed in from another site")
		}
	})
}

func TestSignInLockedAccount(t *testing.T) {
	t.Parallel()
	for _, reveal := range []bool{false, true} {
		t.Run(fmt.Sprintf("reveal=%v", reveal), func(t *testing.T) {
			t.Parallel()
			a := newE2EApp(t, sqliteMemory, appConfig{Reveal: reveal, Lockout: authn.LockoutPolicy{MaxAttempts: 2, IPMaxAttempts: 1000}})
			acct := a.newAccount(t, false)
			b := newBrowserSim(t, a)
			for range 2 {
				wantStatus(t, b.signIn(acct.Email, "Wrong-Pass-99!", "/"), http.StatusBadRequest)
			}
			p := b.signIn(acct.Email, acct.password, "/")
			if reveal {
				wantStatus(t, p, http.StatusLocked)
				wantBody(t, p, "This account is locked", "Try again in 30 minutes")
				if p.header.Get("Retry-After") == "" {
					t.Error("no Retry-After")
				}
			} else {
				wantStatus(t, p, http.StatusBadRequest)
				wantBody(t, p, "The e-mail address or password is incorrect.")
				if strings.Contains(p.body, "locked") {
					t.Error("the lock shows although lockout.reveal is off")
				}
			}
		})
	}
}

func TestSignInPageSessionExpired(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{Idle: 10 * time.Minute})
	acct := a.newAccount(t, false)
	b := newBrowserSim(t, a)
	wantStatus(t, b.signIn(acct.Email, acct.password, "/"), http.StatusSeeOther)
	a.clock.Advance(11 * time.Minute)
	p := b.get("/auth/signin?next=%2Fapp")
	wantStatus(t, p, http.StatusOK)
	wantBody(t, p, "Your session has expired")
	if _, ok := b.cookies[e2eCookie]; ok {
		t.Error("the dead session's cookie was kept")
	}
	if p2 := b.get("/auth/signin"); strings.Contains(p2.body, "expired") {
		t.Error("the expiry notice shows again on the next visit")
	}
	if p3 := b.get("/auth/signin?reason=expired"); !strings.Contains(p3.body, "Your session has expired") {
		t.Error("?reason=expired shows no notice")
	}
}

func TestSignOutPage(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{})
	acct := a.newAccount(t, false)
	b := newBrowserSim(t, a)
	wantStatus(t, b.signIn(acct.Email, acct.password, "/"), http.StatusSeeOther)
	session := b.cookies[e2eCookie]

	confirm := b.get("/auth/signout?next=%2Fapp")
	wantStatus(t, confirm, http.StatusOK)
	wantBody(t, confirm, acct.Email, `action="/auth/signout"`, `href="/app"`)

	for name, tc := range map[string]struct {
		form    url.Values
		headers map[string]string
		detail  string
	}{
		"no token":            {url.Values{}, nil, ""},
		"a forged token":      {url.Values{"csrf_token": {a.csrf.SessionToken("another-cookie")}}, nil, ""},
		"from another origin": {url.Values{"csrf_token": {confirm.token(t)}}, map[string]string{"Origin": "http://evil.example"}, ""},
		"referer of another":  {url.Values{"csrf_token": {confirm.token(t)}}, map[string]string{"Origin": "", "Referer": "http://evil.example/x"}, ""},
	} {
		p := b.post("/auth/signout", tc.form, tc.headers)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "Request refused") {
			t.Errorf("%s: %d, want the 403 page: %s", name, p.status, p.body)
		}
		if me := a.me(t, creds{cookie: session}); me.status != http.StatusOK {
			t.Fatalf("%s ended the session", name)
		}
	}

	p := b.post("/auth/signout", url.Values{"csrf_token": {confirm.token(t)}}, nil)
	wantStatus(t, p, http.StatusSeeOther)
	if loc := p.header.Get("Location"); loc != "/auth/signin?reason=signed_out" {
		t.Errorf("Location %q", loc)
	}
	if _, ok := b.cookies[e2eCookie]; ok {
		t.Error("the cookie was not cleared")
	}
	if me := a.me(t, creds{cookie: session}); me.status != http.StatusUnauthorized {
		t.Errorf("the session outlived sign-out: %v", me)
	}
	wantBody(t, b.get(p.header.Get("Location")), "You have signed out.")
	// Signed out, the confirm page sends the browser to sign in.
	if p := b.get("/auth/signout"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/auth/signin") {
		t.Errorf("signout without a session: %d %q", p.status, p.header.Get("Location"))
	}
}

func TestPasswordPage(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{})
	acct := a.newAccount(t, false)

	anon := newBrowserSim(t, a)
	if p := anon.get("/auth/password"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/auth/signin?next=%2Fauth%2Fpassword" {
		t.Errorf("without a session: %d %q", p.status, p.header.Get("Location"))
	}

	b := newBrowserSim(t, a)
	wantStatus(t, b.signIn(acct.Email, acct.password, "/auth/password"), http.StatusSeeOther)
	other := a.cookieLogin(t, acct.Email, acct.password)
	form := b.get("/auth/password")
	wantStatus(t, form, http.StatusOK)
	wantBody(t, form, `autocomplete="new-password"`, `aria-describedby="password-rules"`, "At least 8 characters")

	send := func(cur, next, confirm string) page {
		return b.post("/auth/password", url.Values{"csrf_token": {form.token(t)},
			"current_password": {cur}, "new_password": {next}, "confirm_password": {confirm}}, nil)
	}
	const fresh = "Brisk-Meadow-Owl-42!"
	for _, tc := range []struct {
		name               string
		cur, next, confirm string
		status             int
		want               string
	}{
		{"empty", "", fresh, fresh, 422, "Fill in all three fields."},
		{"mismatch", acct.password, fresh, fresh + "x", 422, "do not match"},
		{"wrong current", "Wrong-Pass-99!", fresh, fresh, 400, "The current password is incorrect."},
		{"policy", acct.password, "short", "short", 400, "does not meet the rules"},
	} {
		p := send(tc.cur, tc.next, tc.confirm)
		if p.status != tc.status || !strings.Contains(p.body, tc.want) {
			t.Errorf("%s: %d, want %d with %q: %s", tc.name, p.status, tc.status, tc.want, p.body)
		}
	}
	if p := b.post("/auth/password", url.Values{"current_password": {acct.password}, "new_password": {fresh}, "confirm_password": {fresh}}, nil); p.status != http.StatusForbidden {
		t.Errorf("a change without the token: %d, want 403", p.status)
	}

	p := send(acct.password, fresh, fresh)
	wantStatus(t, p, http.StatusSeeOther)
	wantBody(t, b.get(p.header.Get("Location")), "Your password has been changed.")
	if me := a.me(t, creds{cookie: b.cookies[e2eCookie]}); me.status != http.StatusOK {
		t.Errorf("the changing session ended: %v", me)
	}
	if me := a.me(t, creds{cookie: other}); me.status != http.StatusUnauthorized {
		t.Errorf("another session outlived the change: %v", me)
	}
	a.login(t, acct.Email, fresh)
}

func TestCSRFGuardOnTheAPI(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{})
	acct := a.newAccount(t, false)
	cookie := a.cookieLogin(t, acct.Email, acct.password)
	noToken := map[string]string{authn.CSRFHeader: ""}

	wantDetail(t, a.do(t, req{method: "PATCH", path: "/users/me", cookie: cookie, header: noToken, json: map[string]string{"first_name": "X"}}),
		http.StatusForbidden, "CSRF_TOKEN_MISSING")
	wantDetail(t, a.do(t, req{method: "POST", path: "/auth/logout", cookie: cookie,
		header: map[string]string{authn.CSRFHeader: a.csrf.SessionToken("someone-else")}}), http.StatusForbidden, "CSRF_TOKEN_INVALID")
	wantDetail(t, a.do(t, req{method: "POST", path: "/auth/logout", cookie: cookie,
		header: map[string]string{authn.CSRFHeader: "v1.garbage"}}), http.StatusForbidden, "CSRF_TOKEN_INVALID")
	wantDetail(t, a.do(t, req{method: "DELETE", path: "/auth/sessions/x", cookie: cookie, header: noToken}), http.StatusForbidden, "CSRF_TOKEN_MISSING")
	if me := a.me(t, creds{cookie: cookie}); me.status != http.StatusOK {
		t.Fatal("a refused request ended the session")
	}

	// A single-page app asks for its token, then sends it.
	r := a.do(t, req{method: "GET", path: "/auth/csrf", cookie: cookie})
	tok, _ := r.object(t)["csrf_token"].(string)
	if r.status != http.StatusOK || tok == "" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /auth/csrf: %v", r)
	}
	wantDetail(t, a.do(t, req{method: "PATCH", path: "/users/me", cookie: cookie, header: map[string]string{authn.CSRFHeader: tok},
		json: map[string]string{"first_name": "Ana"}}), http.StatusOK, nil)
	// Without a cookie there is nothing to protect, and no token.
	if r := a.do(t, req{method: "GET", path: "/auth/csrf"}); r.object(t)["csrf_token"] != nil {
		t.Errorf("a token without a session: %v", r)
	}

	// Bearer clients carry no ambient credentials and need no token.
	bearer := a.login(t, acct.Email, acct.password)
	wantDetail(t, a.do(t, req{method: "PATCH", path: "/users/me", bearer: bearer, json: map[string]string{"first_name": "Bo"}}), http.StatusOK, nil)
	wantDetail(t, a.do(t, req{method: "POST", path: "/auth/logout", bearer: bearer}), http.StatusNoContent, nil)

	// The cookie login's form variant cannot be posted from another site.
	wantDetail(t, a.do(t, req{method: "POST", path: "/auth/cookie/login", form: url.Values{"username": {acct.Email}, "password": {acct.password}},
		header: map[string]string{"Origin": "https://evil.example"}}), http.StatusForbidden, "CSRF_ORIGIN_MISMATCH")
	// The token of this session works with the form field too.
	wantDetail(t, a.do(t, req{method: "POST", path: "/auth/logout", cookie: cookie, header: noToken,
		form: url.Values{"csrf_token": {a.csrf.SessionToken(cookie)}}}), http.StatusNoContent, nil)

	// Every refusal is counted by reason, for an alert.
	wantMetric(t, a, `portero_csrf_refused_total{reason="CSRF_TOKEN_MISSING"}`, 2)
	wantMetric(t, a, `portero_csrf_refused_total{reason="CSRF_TOKEN_INVALID"}`, 2)
	wantMetric(t, a, `portero_csrf_refused_total{reason="CSRF_ORIGIN_MISMATCH"}`, 1)
}

func TestPagesBranding(t *testing.T) {
	t.Parallel()
	a := newE2EApp(t, sqliteMemory, appConfig{Pages: authn.PagesConfig{Title: "Muestras <Univar>", LogoURL: "https://cdn.example/logo.png"}})
	p := newBrowserSim(t, a).get("/auth/signin")
	wantBody(t, p, "<title>Sign in · Muestras &lt;Univar&gt;</title>", `src="https://cdn.example/logo.png"`)
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: https://cdn.example;") {
		t.Errorf("CSP %q does not allow the configured logo", csp)
	}
}
