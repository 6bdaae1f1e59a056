package authn_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestE2ERegister: POST /auth/register in each registration mode, from an
// anonymous caller, a signed-in user and an admin (bearer and cookie).
func TestE2ERegister(t *testing.T) {
	t.Parallel()
	type regCase struct {
		name string
		as   string // "": anonymous; "user"; "admin" (bearer); "admin-cookie"
		// build makes the request for a fresh e-mail (credentials are added
		// from as).
		build func(email string) req
		// want is the status per mode; "*" for every mode not listed.
		want   map[string]int
		detail any
		check  func(t *testing.T, a *e2eApp, r resp, email string)
	}
	body := func(fields map[string]any) func(string) req {
		return func(email string) req {
			m := map[string]any{"email": email, "password": e2ePassword}
			for k, v := range fields {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			return req{method: "POST", path: "/auth/register", json: m}
		}
	}
	raw := func(ctype, s string) func(string) req {
		return func(string) req { return req{method: "POST", path: "/auth/register", ctype: ctype, raw: s} }
	}
	// plainUser checks a created user got none of the privileges asked for.
	plainUser := func(t *testing.T, a *e2eApp, r resp, email string) {
		m := r.object(t)
		hasKeys(t, m, []string{"id", "email", "first_name", "last_name", "role_id", "is_active", "is_superuser", "is_verified", "last_login"},
			[]string{"hashed_password", "password", "login_attempts"})
		if _, err := uuid.Parse(m["id"].(string)); err != nil {
			t.Errorf("id %v is not a UUID", m["id"])
		}
		if m["role_id"] != 2.0 || m["is_superuser"] != false || m["is_verified"] != false || m["is_active"] != true || m["legacy_id"] != nil {
			t.Errorf("self-registered user has privileges it must not pick: %v", m)
		}
		// And the stored row agrees, and its session is an ordinary user's.
		bearer := a.login(t, email, e2ePassword)
		me := a.me(t, creds{bearer: bearer})
		if me.status != http.StatusOK || me.object(t)["role_id"] != 2.0 {
			t.Errorf("GET /users/me of the new user: %v", me)
		}
		other := a.newAccount(t, false)
		if r := a.do(t, req{method: "GET", path: "/users/" + other.ID, bearer: bearer}); r.status != http.StatusForbidden {
			t.Errorf("new self-registered user reached an admin endpoint: %v", r)
		}
	}
	adminMade := func(t *testing.T, a *e2eApp, r resp, email string) {
		m := r.object(t)
		if lid, _ := m["legacy_id"].(float64); m["role_id"] != 1.0 || m["is_superuser"] != true || m["is_verified"] != true || lid < 1000 {
			t.Errorf("admin registration did not honour role_id/is_superuser/is_verified/legacy_id: %v", m)
		}
	}
	// privileged asks for every privilege, with a legacy id no other case uses.
	var legacyIDs atomic.Int64
	legacyIDs.Store(1000)
	privileged := func(email string) req {
		return body(map[string]any{"role_id": 1, "is_superuser": true, "is_verified": true, "legacy_id": legacyIDs.Add(1)})(email)
	}

	cases := []regCase{
		{name: "self", build: body(nil), want: map[string]int{"open": 201, "*": 403}, check: func(t *testing.T, a *e2eApp, r resp, email string) {
			if r.status == 201 {
				plainUser(t, a, r, email)
			} else if r.detail() != "REGISTRATION_CLOSED" {
				t.Errorf("detail %v, want REGISTRATION_CLOSED", r.detail())
			}
		}},
		{name: "self asking for admin", build: privileged, want: map[string]int{"open": 201, "*": 403}, check: func(t *testing.T, a *e2eApp, r resp, email string) {
			if r.status == 201 {
				plainUser(t, a, r, email)
			}
		}},
		{name: "signed-in user asking for admin", as: "user", build: privileged, want: map[string]int{"open": 201, "*": 403}, check: func(t *testing.T, a *e2eApp, r resp, email string) {
			if r.status == 201 {
				plainUser(t, a, r, email)
			}
		}},
		{name: "admin bearer", as: "admin", build: privileged, want: map[string]int{"*": 201}, check: adminMade},
		{name: "admin cookie", as: "admin-cookie", build: privileged, want: map[string]int{"*": 201}, check: adminMade},
		{name: "admin default role", as: "admin", build: body(nil), want: map[string]int{"*": 201}, check: func(t *testing.T, a *e2eApp, r resp, email string) {
			if m := r.object(t); m["role_id"] != 2.0 || m["is_superuser"] != false {
				t.Errorf("admin registration without role_id: %v", m)
			}
		}},
		{name: "admin unknown role", as: "admin", build: body(map[string]any{"role_id": 999}), want: map[string]int{"*": 422}},
		{name: "profile fields kept", as: "admin", build: body(map[string]any{"first_name": "Zoë", "last_name": "Ñúñez"}), want: map[string]int{"*": 201}, check: func(t *testing.T, a *e2eApp, r resp, email string) {
			if m := r.object(t); m["first_name"] != "Zoë" || m["last_name"] != "Ñúñez" || m["email"] != email {
				t.Errorf("profile: %v", m)
			}
		}},
		{name: "duplicate e-mail in other case", as: "admin", build: body(nil), want: map[string]int{"*": 400}, detail: "REGISTER_USER_ALREADY_EXISTS"},
		{name: "weak password", as: "admin", build: body(map[string]any{"password": "short"}), want: map[string]int{"*": 400}, check: wantInvalidPassword},
		{name: "common password", as: "admin", build: body(map[string]any{"password": "Password123!"}), want: map[string]int{"*": 400}, check: wantInvalidPassword},
		{name: "password holds the e-mail", as: "admin", build: func(email string) req {
			local, _, _ := strings.Cut(email, "@")
			return body(map[string]any{"password": "X9!" + strings.ToUpper(local[:1]) + local[1:]})(email)
		}, want: map[string]int{"*": 400}, check: wantInvalidPassword},
		{name: "password over 128 bytes", as: "admin", build: body(map[string]any{"password": "Aa1!" + strings.Repeat("x", 200)}), want: map[string]int{"*": 400}, check: wantInvalidPassword},
		{name: "weak password, closed to anonymous", build: body(map[string]any{"password": "short"}), want: map[string]int{"open": 400, "*": 403}},
		{name: "malformed JSON", build: raw("application/json", `{"email": "x@example.test", "password": `), want: map[string]int{"*": 422}, check: func(t *testing.T, _ *e2eApp, r resp, _ string) {
			wantValidation(t, r, "")
		}},
		{name: "trailing data", build: raw("application/json", `{"email":"x@example.test","password":"`+e2ePassword+`"} {}`), want: map[string]int{"*": 422}, check: func(t *testing.T, _ *e2eApp, r resp, _ string) {
			wantValidation(t, r, "")
		}},
		{name: "wrong type", build: raw("application/json", `{"email": 12, "password": "x"}`), want: map[string]int{"*": 422}, check: func(t *testing.T, _ *e2eApp, r resp, _ string) {
			wantValidation(t, r, "email")
		}},
		{name: "missing e-mail", build: body(map[string]any{"email": nil}), want: map[string]int{"*": 422}, check: func(t *testing.T, _ *e2eApp, r resp, _ string) {
			wantValidation(t, r, "email")
		}},
		{name: "invalid e-mail", build: body(map[string]any{"email": "not-an-address"}), want: map[string]int{"*": 422}, check: func(t *testing.T, _ *e2eApp, r resp, _ string) {
			wantValidation(t, r, "email")
		}},
		{name: "missing password", build: body(map[string]any{"password": nil}), want: map[string]int{"*": 422}, check: func(t *testing.T, _ *e2eApp, r resp, _ string) {
			wantValidation(t, r, "password")
		}},
		{name: "text/plain", build: raw("text/plain", `{"email":"x@example.test","password":"`+e2ePassword+`"}`), want: map[string]int{"*": 415}, detail: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "no content type", build: raw("", `{"email":"x@example.test","password":"`+e2ePassword+`"}`), want: map[string]int{"*": 415}},
		{name: "form body", build: func(email string) req {
			return req{method: "POST", path: "/auth/register", form: url.Values{"email": {email}, "password": {e2ePassword}}}
		}, want: map[string]int{"*": 415}},
		{name: "oversized body", build: raw("application/json", `{"email":"x@example.test","first_name":"`+strings.Repeat("a", 70<<10)+`"}`), want: map[string]int{"*": 413}, detail: "REQUEST_TOO_LARGE"},
	}

	for _, mode := range []string{"open", "admin", "closed"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			forEachBackend(t, func(t *testing.T, be backend) {
				a := newE2EApp(t, be, appConfig{Registration: mode})
				admin := a.newAccount(t, true)
				adminBearer := a.login(t, admin.Email, admin.password)
				adminCookie := a.cookieLogin(t, admin.Email, admin.password)
				user := a.newAccount(t, false)
				userBearer := a.login(t, user.Email, user.password)
				for i, tc := range cases {
					t.Run(tc.name, func(t *testing.T) {
						email := "new" + strings.ReplaceAll(tc.name, " ", "-") + "." + randHex(2) + "@example.test"
						email = strings.ReplaceAll(email, ",", "")
						if tc.detail == "REGISTER_USER_ALREADY_EXISTS" {
							// The same address, registered once already,
							// now in another case and with spaces around.
							first := a.do(t, req{method: "POST", path: "/auth/register", bearer: adminBearer,
								json: map[string]any{"email": email, "password": e2ePassword}})
							if first.status != http.StatusCreated {
								t.Fatalf("first registration: %v", first)
							}
							email = "  " + strings.ToUpper(email) + " "
						}
						rq := tc.build(email)
						rq.ip = a.ip()
						switch tc.as {
						case "user":
							rq.bearer = userBearer
						case "admin":
							rq.bearer = adminBearer
						case "admin-cookie":
							rq.cookie = adminCookie
						}
						want, ok := tc.want[mode]
						if !ok {
							want = tc.want["*"]
						}
						r := a.do(t, rq)
						if r.status != want {
							t.Fatalf("case %d in mode %s: status %d, want %d: %s", i, mode, r.status, want, r.body)
						}
						jsonContentType(t, r)
						if tc.detail != nil {
							wantDetail(t, r, want, tc.detail)
						}
						if tc.check != nil {
							tc.check(t, a, r, email)
						}
					})
				}
			})
		})
	}
}

// wantInvalidPassword checks FastAPI-Users' invalid-password answer, with a
// reason a person can read.
func wantInvalidPassword(t *testing.T, _ *e2eApp, r resp, _ string) {
	t.Helper()
	d, ok := r.detail().(map[string]any)
	if !ok || d["code"] != "REGISTER_INVALID_PASSWORD" {
		t.Fatalf("detail %v, want {code: REGISTER_INVALID_PASSWORD, reason}", r.detail())
	}
	if reason, _ := d["reason"].(string); reason == "" {
		t.Errorf("no reason in %v", d)
	}
	if strings.Contains(string(r.body), e2ePassword) {
		t.Errorf("answer repeats a password: %s", r.body)
	}
}

// TestE2ELogin: POST /auth/login (bearer) and /auth/cookie/login, JSON and
// form, every way of failing.
func TestE2ELogin(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{})
		login := func(path string, username, password any) func(acct account) req {
			return func(acct account) req {
				m := map[string]any{"username": username, "password": password}
				if username == "<email>" {
					m["username"] = acct.Email
				}
				if password == "<password>" {
					m["password"] = acct.password
				}
				for k, v := range m {
					if v == nil {
						delete(m, k)
					}
				}
				return req{method: "POST", path: path, json: m}
			}
		}
		form := func(path string, fields ...string) func(acct account) req {
			return func(acct account) req {
				v := url.Values{}
				for i := 0; i+1 < len(fields); i += 2 {
					val := strings.NewReplacer("<email>", acct.Email, "<password>", acct.password).Replace(fields[i+1])
					v.Set(fields[i], val)
				}
				return req{method: "POST", path: path, form: v}
			}
		}
		bearerOK := func(t *testing.T, a *e2eApp, r resp) {
			m := r.object(t)
			if m["token_type"] != "bearer" {
				t.Errorf("token_type %v, want bearer", m["token_type"])
			}
			// The token lives as long as the session's absolute cap,
			// counted on the service's clock.
			if exp, _ := m["expires_in"].(float64); exp < 12*3600-2 || exp > 12*3600 {
				t.Errorf("expires_in %v, want 43200 (12h)", m["expires_in"])
			}
			if len(r.header.Values("Set-Cookie")) != 0 {
				t.Errorf("bearer login set a cookie: %v", r.header.Values("Set-Cookie"))
			}
			tok, _ := m["access_token"].(string)
			if me := a.me(t, creds{bearer: tok}); me.status != http.StatusOK {
				t.Errorf("the token does not work: %v", me)
			}
		}
		cookieOK := func(t *testing.T, a *e2eApp, r resp) {
			if len(r.body) != 0 {
				t.Errorf("cookie login has a body: %q", r.body)
			}
			c := r.cookie(e2eCookie)
			if c == nil {
				t.Fatalf("no %s cookie in %v", e2eCookie, r.header.Values("Set-Cookie"))
			}
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Errorf("cookie attributes %q: want HttpOnly, Secure, SameSite=Lax, Path=/, no Domain", r.header.Get("Set-Cookie"))
			}
			if !c.Expires.Equal(e2eEpoch.Add(12 * time.Hour)) {
				t.Errorf("cookie expires %v, want the absolute cap %v", c.Expires, e2eEpoch.Add(12*time.Hour))
			}
			if me := a.me(t, creds{cookie: c.Value}); me.status != http.StatusOK {
				t.Errorf("the cookie does not work: %v", me)
			}
		}
		// fixated is a well-formed session token an attacker planted.
		const fixated = "Zm9yZ2VkLXNlc3Npb24tdG9rZW4tZml4YXRpb24tQUE"
		bad := func(t *testing.T, _ *e2eApp, r resp) {
			if len(r.header.Values("Set-Cookie")) != 0 {
				t.Errorf("failed login set a cookie")
			}
		}
		cases := []struct {
			name   string
			build  func(acct account) req
			status int
			detail any
			check  func(t *testing.T, a *e2eApp, r resp)
		}{
			{"json", login("/auth/login", "<email>", "<password>"), 200, nil, bearerOK},
			{"form", form("/auth/login", "username", "<email>", "password", "<password>"), 200, nil, bearerOK},
			{"form with charset", func(acct account) req {
				r := form("/auth/login", "username", "<email>", "password", "<password>")(acct)
				r.raw, r.ctype, r.form = url.Values{"username": {acct.Email}, "password": {acct.password}}.Encode(), "application/x-www-form-urlencoded; charset=UTF-8", nil
				return r
			}, 200, nil, bearerOK},
			{"e-mail in upper case with spaces", func(acct account) req {
				return login("/auth/login", "  "+strings.ToUpper(acct.Email)+"\t", "<password>")(acct)
			}, 200, nil, bearerOK},
			{"cookie json", login("/auth/cookie/login", "<email>", "<password>"), 204, nil, cookieOK},
			{"cookie form", form("/auth/cookie/login", "username", "<email>", "password", "<password>"), 204, nil, cookieOK},
			{"cookie login never adopts the client's session id", func(acct account) req {
				r := login("/auth/cookie/login", "<email>", "<password>")(acct)
				r.cookie = fixated
				return r
			}, 204, nil, func(t *testing.T, a *e2eApp, r resp) {
				cookieOK(t, a, r)
				if c := r.cookie(e2eCookie); c != nil && c.Value == fixated {
					t.Error("login kept the session id the client chose")
				}
				if me := a.me(t, creds{cookie: fixated}); me.status != http.StatusUnauthorized {
					t.Errorf("the client-chosen id became a session: %v", me)
				}
			}},
			{"wrong password", login("/auth/login", "<email>", "Wrong-Pass-99!"), 400, "LOGIN_BAD_CREDENTIALS", bad},
			{"unknown e-mail", login("/auth/login", "nobody@example.test", e2ePassword), 400, "LOGIN_BAD_CREDENTIALS", bad},
			{"cookie wrong password", login("/auth/cookie/login", "<email>", "Wrong-Pass-99!"), 400, "LOGIN_BAD_CREDENTIALS", bad},
			{"password case differs", func(acct account) req {
				return login("/auth/login", "<email>", strings.ToUpper(acct.password))(acct)
			}, 400, "LOGIN_BAD_CREDENTIALS", bad},
			{"password over 128 bytes", login("/auth/login", "<email>", strings.Repeat("A1!a", 40)), 400, "LOGIN_BAD_CREDENTIALS", bad},
			{"missing username", login("/auth/login", nil, "<password>"), 422, nil, func(t *testing.T, _ *e2eApp, r resp) { wantValidation(t, r, "username") }},
			{"missing password", login("/auth/login", "<email>", nil), 422, nil, func(t *testing.T, _ *e2eApp, r resp) { wantValidation(t, r, "password") }},
			{"blank username", login("/auth/login", "   ", "<password>"), 422, nil, func(t *testing.T, _ *e2eApp, r resp) { wantValidation(t, r, "username") }},
			{"form missing both", form("/auth/login", "grant_type", "password"), 422, nil, func(t *testing.T, _ *e2eApp, r resp) { wantValidation(t, r, "password") }},
			{"malformed JSON", func(account) req {
				return req{method: "POST", path: "/auth/login", ctype: "application/json", raw: `{"username":`}
			}, 422, nil, func(t *testing.T, _ *e2eApp, r resp) { wantValidation(t, r, "") }},
			{"text/plain", func(acct account) req {
				return req{method: "POST", path: "/auth/login", ctype: "text/plain", raw: `{"username":"` + acct.Email + `","password":"` + acct.password + `"}`}
			}, 415, "UNSUPPORTED_MEDIA_TYPE", nil},
			{"oversized form", func(account) req {
				return req{method: "POST", path: "/auth/login", ctype: "application/x-www-form-urlencoded", raw: "username=a&password=" + strings.Repeat("b", 70<<10)}
			}, 413, "REQUEST_TOO_LARGE", nil},
			{"oversized JSON", func(account) req {
				return req{method: "POST", path: "/auth/cookie/login", ctype: "application/json", raw: `{"username":"` + strings.Repeat("b", 70<<10) + `"}`}
			}, 413, "REQUEST_TOO_LARGE", nil},
			{"GET", func(account) req { return req{method: "GET", path: "/auth/login"} }, 405, "METHOD_NOT_ALLOWED", nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				acct := a.newAccount(t, false)
				rq := tc.build(acct)
				rq.ip = a.ip()
				r := a.do(t, rq)
				wantDetail(t, r, tc.status, tc.detail)
				if r.status >= 400 {
					jsonContentType(t, r)
					if strings.Contains(string(r.body), "token") {
						t.Errorf("failure body mentions a token: %s", r.body)
					}
				}
				if tc.check != nil {
					tc.check(t, a, r)
				}
			})
		}
	})
}

// TestE2EAccountEndpoints covers the endpoints that need a session, each
// with cookie and bearer credentials.
func TestE2EAccountEndpoints(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{})
		for _, via := range []string{"cookie", "bearer"} {
			t.Run(via, func(t *testing.T) {
				t.Run("no credentials", func(t *testing.T) {
					for _, rq := range []req{
						{method: "GET", path: "/users/me"},
						{method: "PATCH", path: "/users/me", json: map[string]any{"first_name": "x"}},
						{method: "POST", path: "/auth/logout"},
						{method: "POST", path: "/auth/change-password", json: map[string]any{}},
						{method: "GET", path: "/auth/sessions"},
						{method: "DELETE", path: "/auth/sessions/abc"},
						{method: "POST", path: "/users/" + uuid.NewString() + "/unlock"},
						{method: "GET", path: "/users/me", cookie: "not-a-token"},
						{method: "GET", path: "/users/me", cookie: strings.Repeat("A", 43)},
						{method: "GET", path: "/users/me", bearer: "garbage"},
						{method: "GET", path: "/users/me", header: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}},
					} {
						r := a.do(t, rq)
						wantDetail(t, r, http.StatusUnauthorized, "Unauthorized")
						if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
							t.Errorf("%s %s: 401 without WWW-Authenticate: %v", rq.method, rq.path, r.header)
						}
					}
				})

				t.Run("me", func(t *testing.T) {
					acct := a.newAccount(t, false)
					c := a.signIn(t, acct, via)
					r := a.me(t, c)
					if r.status != http.StatusOK {
						t.Fatalf("GET /users/me: %v", r)
					}
					m := r.object(t)
					hasKeys(t, m, []string{"id", "email", "first_name", "last_name", "role_id", "is_active", "is_superuser", "is_verified", "last_login"},
						[]string{"hashed_password", "password", "login_attempts", "locked_until"})
					if m["id"] != acct.ID || m["email"] != acct.Email || m["role_id"] != 2.0 || m["first_name"] != "Ana" || m["last_name"] != "Pérez" {
						t.Errorf("me: %v", m)
					}
					// last_login was stamped by the login, on the service's clock.
					if ll, _ := m["last_login"].(string); !strings.HasPrefix(ll, e2eEpoch.Format("2006-01-02T15:04")) {
						t.Errorf("last_login %v, want the login time %v", m["last_login"], e2eEpoch)
					}
				})

				t.Run("patch me", func(t *testing.T) {
					acct := a.newAccount(t, false)
					c := a.signIn(t, acct, via)
					r := a.do(t, c.on(req{method: "PATCH", path: "/users/me", json: map[string]any{
						"first_name": "María", "role_id": 1, "is_superuser": true, "email": "evil@example.test", "is_active": false,
					}}))
					if r.status != http.StatusOK {
						t.Fatalf("PATCH /users/me: %v", r)
					}
					m := r.object(t)
					if m["first_name"] != "María" || m["last_name"] != "Pérez" {
						t.Errorf("profile not updated as asked: %v", m)
					}
					if m["role_id"] != 2.0 || m["is_superuser"] != false || m["email"] != acct.Email || m["is_active"] != true {
						t.Errorf("PATCH /users/me changed a field a user may not: %v", m)
					}
					if me := a.me(t, c).object(t); me["first_name"] != "María" {
						t.Errorf("change not stored: %v", me)
					}
					wantValidation(t, a.do(t, c.on(req{method: "PATCH", path: "/users/me", json: map[string]any{"last_name": strings.Repeat("x", 101)}})), "")
					wantDetail(t, a.do(t, c.on(req{method: "PATCH", path: "/users/me", ctype: "text/plain", raw: "{}"})), 415, "UNSUPPORTED_MEDIA_TYPE")
				})

				t.Run("logout", func(t *testing.T) {
					acct := a.newAccount(t, false)
					c := a.signIn(t, acct, via)
					other := a.signIn(t, acct, via)
					r := a.do(t, c.on(req{method: "POST", path: "/auth/logout"}))
					if r.status != http.StatusNoContent {
						t.Fatalf("logout: %v", r)
					}
					ck := r.cookie(e2eCookie)
					if ck == nil || ck.Value != "" || ck.MaxAge >= 0 || !ck.HttpOnly || ck.Path != "/" {
						t.Errorf("logout did not clear the cookie: %q", r.header.Values("Set-Cookie"))
					}
					if me := a.me(t, c); me.status != http.StatusUnauthorized {
						t.Errorf("session alive after logout: %v", me)
					}
					if r := a.do(t, c.on(req{method: "POST", path: "/auth/logout"})); r.status != http.StatusUnauthorized {
						t.Errorf("second logout: %v", r)
					}
					if me := a.me(t, other); me.status != http.StatusOK {
						t.Errorf("logout ended another session of the user: %v", me)
					}
				})

				t.Run("change password", func(t *testing.T) {
					acct := a.newAccount(t, false)
					c := a.signIn(t, acct, via)
					const next = "N3w-Garden-Path?"
					cp := func(cur, nw, confirm any) resp {
						m := map[string]any{"current_password": cur, "new_password": nw, "confirm_password": confirm}
						for k, v := range m {
							if v == nil {
								delete(m, k)
							}
						}
						return a.do(t, c.on(req{method: "POST", path: "/auth/change-password", json: m, ip: a.ip()}))
					}
					wantDetail(t, cp("Wrong-Pass-99!", next, next), 400, "CHANGE_PASSWORD_BAD_CURRENT_PASSWORD")
					wantValidation(t, cp(acct.password, next, next+"x"), "confirm_password")
					wantInvalidPassword(t, nil, cp(acct.password, "weakpass", "weakpass"), "")
					wantValidation(t, cp(acct.password, nil, next), "new_password")
					wantValidation(t, cp(nil, next, next), "current_password")
					wantDetail(t, a.do(t, c.on(req{method: "POST", path: "/auth/change-password", ctype: "text/plain", raw: "{}"})), 415, nil)
					// None of those changed anything.
					a.login(t, acct.Email, acct.password)

					others := []creds{a.signIn(t, acct, "cookie"), a.signIn(t, acct, "bearer")}
					if r := cp(acct.password, next, next); r.status != http.StatusNoContent {
						t.Fatalf("change password: %v", r)
					}
					if me := a.me(t, c); me.status != http.StatusOK {
						t.Errorf("change password ended the session that made it: %v", me)
					}
					for i, o := range others {
						if me := a.me(t, o); me.status != http.StatusUnauthorized {
							t.Errorf("other session %d alive after a password change: %v", i, me)
						}
					}
					wantDetail(t, a.do(t, req{method: "POST", path: "/auth/login", ip: a.ip(), json: map[string]string{"username": acct.Email, "password": acct.password}}),
						400, "LOGIN_BAD_CREDENTIALS")
					a.login(t, acct.Email, next)
				})

				t.Run("sessions", func(t *testing.T) {
					acct := a.newAccount(t, false)
					c := a.signIn(t, acct, via)
					second := a.signIn(t, acct, "bearer")
					third := a.do(t, req{method: "POST", path: "/auth/cookie/login", ip: "192.0.2.55", ua: "Phone/2",
						json: map[string]string{"username": acct.Email, "password": acct.password}}).cookie(e2eCookie).Value
					stranger := a.newAccount(t, false)
					strangerCreds := a.signIn(t, stranger, "bearer")

					r := a.do(t, c.on(req{method: "GET", path: "/auth/sessions"}))
					if r.status != http.StatusOK {
						t.Fatalf("GET /auth/sessions: %v", r)
					}
					var list []map[string]any
					if err := json.Unmarshal(r.body, &list); err != nil {
						t.Fatal(err)
					}
					if len(list) != 3 {
						t.Fatalf("%d sessions listed, want the user's 3: %s", len(list), r.body)
					}
					current, phone := 0, ""
					for _, s := range list {
						for _, k := range []string{"id", "ip_address", "user_agent", "created_at", "last_activity", "expires_at", "current"} {
							if _, ok := s[k]; !ok {
								t.Errorf("session entry lacks %q: %v", k, s)
							}
						}
						if s["current"] == true {
							current++
						}
						if s["user_agent"] == "Phone/2" {
							phone, _ = s["id"].(string)
							if s["ip_address"] != "192.0.2.55" {
								t.Errorf("session ip %v, want the client's 192.0.2.55", s["ip_address"])
							}
						}
					}
					if current != 1 || phone == "" {
						t.Fatalf("want exactly one current session and the phone's: %s", r.body)
					}
					if strings.Contains(string(r.body), c.cookie+c.bearer) || strings.Contains(string(r.body), third) {
						t.Errorf("session list leaks a token: %s", r.body)
					}

					// Another user cannot end it, and learns nothing.
					wantDetail(t, a.do(t, strangerCreds.on(req{method: "DELETE", path: "/auth/sessions/" + phone})), 404, "SESSION_NOT_FOUND")
					if me := a.me(t, creds{cookie: third}); me.status != http.StatusOK {
						t.Fatalf("another user's DELETE ended the session: %v", me)
					}
					wantDetail(t, a.do(t, c.on(req{method: "DELETE", path: "/auth/sessions/" + uuid.NewString()})), 404, "SESSION_NOT_FOUND")

					// Its owner can.
					if r := a.do(t, c.on(req{method: "DELETE", path: "/auth/sessions/" + phone})); r.status != http.StatusNoContent {
						t.Fatalf("DELETE own session: %v", r)
					}
					if me := a.me(t, creds{cookie: third}); me.status != http.StatusUnauthorized {
						t.Errorf("revoked session still works: %v", me)
					}
					for _, still := range []creds{c, second, strangerCreds} {
						if me := a.me(t, still); me.status != http.StatusOK {
							t.Errorf("revoking one session ended another: %v", me)
						}
					}
					if r := a.do(t, c.on(req{method: "DELETE", path: "/auth/sessions/" + phone})); r.status != http.StatusNotFound {
						t.Errorf("second DELETE: %v", r)
					}
				})

				t.Run("unlock needs admin", func(t *testing.T) {
					acct := a.newAccount(t, false)
					target := a.newAccount(t, false)
					c := a.signIn(t, acct, via)
					wantDetail(t, a.do(t, c.on(req{method: "POST", path: "/users/" + target.ID + "/unlock"})), 403, "FORBIDDEN")
					for _, p := range []string{"/users/" + target.ID} {
						wantDetail(t, a.do(t, c.on(req{method: "GET", path: p})), 403, "FORBIDDEN")
					}
					admin := a.newAccount(t, true)
					ac := a.signIn(t, admin, via)
					r := a.do(t, ac.on(req{method: "POST", path: "/users/" + target.ID + "/unlock"}))
					if r.status != http.StatusOK {
						t.Fatalf("admin unlock: %v", r)
					}
					if m := r.object(t); m["id"] != target.ID || m["login_attempts"] != 0.0 || m["locked_until"] != nil {
						t.Errorf("unlock answer: %v", m)
					}
					wantDetail(t, a.do(t, ac.on(req{method: "POST", path: "/users/" + uuid.NewString() + "/unlock"})), 404, "USER_NOT_FOUND")
					wantDetail(t, a.do(t, ac.on(req{method: "POST", path: "/users/not-a-uuid/unlock"})), 404, "USER_NOT_FOUND")
				})

				t.Run("cross-site cookie request refused", func(t *testing.T) {
					acct := a.newAccount(t, false)
					c := a.signIn(t, acct, via)
					r := a.do(t, c.on(req{method: "POST", path: "/auth/logout", header: map[string]string{"Origin": "https://evil.example"}}))
					if via == "cookie" {
						wantDetail(t, r, 403, "CSRF_ORIGIN_MISMATCH")
						if me := a.me(t, c); me.status != http.StatusOK {
							t.Errorf("a refused cross-site logout ended the session: %v", me)
						}
					} else if r.status != http.StatusNoContent {
						t.Errorf("bearer logout with an Origin: %v", r)
					}
				})
			})
		}
	})
}
