package authn_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/authn"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/sessionstest"
)

// tokenSpec describes a bearer token to forge. Zero fields take the values
// Portero itself would write.
type tokenSpec struct {
	alg    string // HS256
	kid    *string
	secret string // secret_key to derive the signing key from (e2eSecret)
	sub    string
	sid    string
	iat    time.Time // exp - 1h
	exp    time.Time
	sig    *string // the signature part as is, instead of signing
	claims map[string]any
}

// forgeToken signs a token the way an attacker who knows (or guesses) the
// layout would: HMAC over header.payload, with the key HKDF-derived from
// secret exactly as Portero derives its own.
func forgeToken(t testing.TB, s tokenSpec) string {
	t.Helper()
	if s.alg == "" {
		s.alg = "HS256"
	}
	if s.secret == "" {
		s.secret = e2eSecret
	}
	if s.iat.IsZero() {
		s.iat = s.exp.Add(-time.Hour)
	}
	ring, err := authn.NewKeyring([]byte(s.secret))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ring.Derive(authn.PurposeSessionToken)
	if err != nil {
		t.Fatal(err)
	}
	key := keys.Current()
	header := map[string]any{"alg": s.alg, "typ": "JWT", "kid": key.ID}
	if s.kid != nil {
		if *s.kid == "" {
			delete(header, "kid")
		} else {
			header["kid"] = *s.kid
		}
	}
	claims := map[string]any{"iss": authn.TokenIssuer, "aud": authn.SessionTokenAudience, "sub": s.sub, "sid": s.sid,
		"iat": s.iat.Unix(), "exp": s.exp.Unix()}
	for k, v := range s.claims {
		claims[k] = v
	}
	enc := base64.RawURLEncoding
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	signing := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	if s.sig != nil {
		return signing + "." + *s.sig
	}
	var h func() hash.Hash
	switch s.alg {
	case "HS256":
		h = sha256.New
	case "HS512":
		h = sha512.New
	default:
		return signing + "."
	}
	mac := hmac.New(h, key.Material())
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// tokenParts decodes a real token's claims and returns its signature.
func tokenParts(t testing.TB, tok string) (claims map[string]any, sig string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims, parts[2]
}

func e2ePtr[T any](v T) *T { return &v }

// TestE2ETokenForgery: a bearer token that Portero did not sign as it is,
// or that it signed but has expired, gets 401 with WWW-Authenticate; the
// same forging code with the real key and real claims gets in, so the
// refusals are not an artefact of the forger.
func TestE2ETokenForgery(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{})
		acct := a.newAccount(t, false)
		other := a.newAccount(t, false)
		real := a.login(t, acct.Email, acct.password)
		claims, realSig := tokenParts(t, real)
		sid, _ := claims["sid"].(string)
		exp := time.Unix(int64(claims["exp"].(float64)), 0)
		iat := time.Unix(int64(claims["iat"].(float64)), 0)
		if claims["sub"] != acct.ID || sid == "" || !iat.Equal(e2eEpoch) || !exp.Equal(e2eEpoch.Add(12*time.Hour)) {
			t.Fatalf("unexpected claims %v", claims)
		}
		storeKey, err := sessions.KeyOf(sid)
		if err != nil {
			t.Fatalf("sid is not a session token: %v", err)
		}
		valid := tokenSpec{sub: acct.ID, sid: sid, iat: iat, exp: exp}
		with := func(f func(*tokenSpec)) string {
			s := valid
			f(&s)
			return forgeToken(t, s)
		}

		if me := a.me(t, creds{bearer: with(func(*tokenSpec) {})}); me.status != http.StatusOK {
			t.Fatalf("control: a token forged with the real key and claims must work: %v", me)
		}

		cases := []struct {
			name  string
			token string
		}{
			{"changed sub, signature kept", with(func(s *tokenSpec) { s.sub = other.ID; s.sig = &realSig })},
			{"longer exp, signature kept", with(func(s *tokenSpec) { s.exp = exp.Add(24 * time.Hour); s.sig = &realSig })},
			{"alg none, no signature", with(func(s *tokenSpec) { s.alg = "none"; s.sig = e2ePtr("") })},
			{"alg none, signature kept", with(func(s *tokenSpec) { s.alg = "none"; s.sig = &realSig })},
			{"alg NONE", with(func(s *tokenSpec) { s.alg = "NONE"; s.sig = e2ePtr("") })},
			{"alg HS512 with the real key", with(func(s *tokenSpec) { s.alg = "HS512" })},
			{"wrong key, real kid", with(func(s *tokenSpec) {
				s.secret = "another-secret-of-at-least-32-bytes-xxxxxx"
				s.kid = e2ePtr(func() string {
					ring, _ := authn.NewKeyring([]byte(e2eSecret))
					k, _ := ring.Derive(authn.PurposeSessionToken)
					return k.Current().ID
				}())
			})},
			{"wrong key, its own kid", with(func(s *tokenSpec) { s.secret = "another-secret-of-at-least-32-bytes-xxxxxx" })},
			{"expired", with(func(s *tokenSpec) { s.iat = e2eEpoch.Add(-2 * time.Hour); s.exp = e2eEpoch.Add(-time.Minute) })},
			{"unknown kid", with(func(s *tokenSpec) { s.kid = e2ePtr("00112233deadbeef") })},
			{"no kid", with(func(s *tokenSpec) { s.kid = e2ePtr("") })},
			{"signed, another user's sub", with(func(s *tokenSpec) { s.sub = other.ID })},
			{"signed, sid is the store key", with(func(s *tokenSpec) { s.sid = storeKey })},
			{"signed, made-up sid", with(func(s *tokenSpec) { s.sid = strings.Repeat("A", 43) })},
			{"signed, wrong audience", with(func(s *tokenSpec) { s.claims = map[string]any{"aud": "portero-assertion"} })},
			{"signed, wrong issuer", with(func(s *tokenSpec) { s.claims = map[string]any{"iss": "legacy"} })},
			{"signed, no exp", with(func(s *tokenSpec) { s.claims = map[string]any{"exp": nil} })},
			{"signed, crit header", func() string {
				// crit is a header member; rebuild by hand.
				enc := base64.RawURLEncoding
				ring, _ := authn.NewKeyring([]byte(e2eSecret))
				keys, _ := ring.Derive(authn.PurposeSessionToken)
				hb, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "JWT", "kid": keys.Current().ID, "crit": []string{"exp"}})
				cb, _ := base64.RawURLEncoding.DecodeString(strings.Split(real, ".")[1])
				signing := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
				mac := hmac.New(sha256.New, keys.Current().Material())
				mac.Write([]byte(signing))
				return signing + "." + enc.EncodeToString(mac.Sum(nil))
			}()},
			{"truncated", real[:len(real)-3]},
			{"padded signature", real + "="},
			{"space inside", strings.Replace(real, ".", ". ", 1)},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				for _, path := range []string{"/users/me", "/auth/sessions"} {
					r := a.do(t, req{method: "GET", path: path, header: map[string]string{"Authorization": "Bearer " + tc.token}})
					wantDetail(t, r, http.StatusUnauthorized, "Unauthorized")
					if w := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(w, "Bearer") || !strings.Contains(w, `error="invalid_token"`) {
						t.Errorf("%s: WWW-Authenticate %q, want Bearer with error=\"invalid_token\"", path, w)
					}
				}
			})
		}
		// None of that harmed the real session.
		if me := a.me(t, creds{bearer: real}); me.status != http.StatusOK || me.object(t)["id"] != acct.ID {
			t.Errorf("real token after the forgeries: %v", me)
		}
	})
}

// TestE2ESlidingExpiry: each request slides the idle expiry; an idle
// session dies; no amount of activity outlives the absolute cap. The clock
// is injected, so an hour passes without sleeping.
func TestE2ESlidingExpiry(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		for _, via := range []string{"cookie", "bearer"} {
			t.Run(via, func(t *testing.T) {
				a := newE2EApp(t, be, appConfig{}) // idle 60m, absolute 12h
				acct := a.newAccount(t, false)

				// Idle: 59 minutes between requests keeps it alive, over
				// hours; 60 minutes of silence ends it.
				c := a.signIn(t, acct, via)
				for i := range 4 {
					a.clock.Advance(59 * time.Minute)
					if me := a.me(t, c); me.status != http.StatusOK {
						t.Fatalf("request %d, 59m after the last: %v", i, me)
					}
				}
				a.clock.Advance(60 * time.Minute)
				if me := a.me(t, c); me.status != http.StatusUnauthorized {
					t.Fatalf("60m idle: %v, want 401", me)
				}

				// Absolute: a request every 50 minutes, and still the
				// session ends 12 hours after login.
				c = a.signIn(t, acct, via)
				began := a.clock.Now()
				for a.clock.Now().Add(50 * time.Minute).Before(began.Add(12 * time.Hour)) {
					a.clock.Advance(50 * time.Minute)
					if me := a.me(t, c); me.status != http.StatusOK {
						t.Fatalf("%v after login, active: %v", a.clock.Now().Sub(began), me)
					}
				}
				a.clock.Advance(began.Add(12 * time.Hour).Sub(a.clock.Now()))
				if me := a.me(t, c); me.status != http.StatusUnauthorized {
					t.Fatalf("at the 12h cap: %v, want 401", me)
				}
				// And the list of sessions agrees.
				fresh := a.signIn(t, acct, "bearer")
				var list []map[string]any
				if err := json.Unmarshal(a.do(t, fresh.on(req{method: "GET", path: "/auth/sessions"})).body, &list); err != nil || len(list) != 1 {
					t.Errorf("sessions after expiry: %v %v, want only the fresh one", list, err)
				}
			})
		}
	})
}

// TestE2ERealTTL: with seconds-long timeouts and the real clock, the
// stores expire sessions themselves (Redis by its own TTL).
func TestE2ERealTTL(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{RealClock: true, Idle: time.Second, Absolute: 2 * time.Second})
		acct := a.newAccount(t, false)
		before := time.Now()
		slid := a.signIn(t, acct, "cookie")
		idle := a.signIn(t, acct, "bearer")
		after := time.Now()
		// slid is used every 0.4s: alive past the 1s idle timeout, dead at
		// the 2s cap. idle is never used after login: dead after 1s.
		for i := 1; i <= 4; i++ {
			time.Sleep(time.Until(before.Add(time.Duration(i) * 400 * time.Millisecond)))
			if me := a.me(t, slid); me.status != http.StatusOK {
				t.Fatalf("%v after login, used every 0.4s: %v", time.Since(before), me)
			}
		}
		if me := a.me(t, idle); me.status != http.StatusUnauthorized {
			t.Errorf("unused for %v with a 1s idle timeout: %v", time.Since(after), me)
		}
		time.Sleep(time.Until(after.Add(2100 * time.Millisecond)))
		if me := a.me(t, slid); me.status != http.StatusUnauthorized {
			t.Errorf("past the 2s cap: %v", me)
		}
		if a.rdb != nil {
			// Nothing is left for a dump of Redis to show.
			if keys := sessionstest.Keys(t, a.rdb, a.prefix+"sess:s:"); len(keys) != 0 {
				t.Errorf("expired sessions still in Redis: %v", keys)
			}
		}
	})
}

// TestE2ERevocation: every way of ending a session takes effect on the
// very next request, for cookie and bearer alike.
func TestE2ERevocation(t *testing.T) {
	t.Parallel()
	type env struct {
		a       *e2eApp
		acct    account
		victim  creds // the session that must die
		actor   creds // another session of the same user
		admin   creds
		adminID string
	}
	cases := []struct {
		name   string
		revoke func(t *testing.T, e env)
		// alsoActor: the actor's own session dies too.
		alsoActor bool
	}{
		{"logout", func(t *testing.T, e env) {
			wantDetail(t, e.a.do(t, e.victim.on(req{method: "POST", path: "/auth/logout"})), http.StatusNoContent, nil)
		}, false},
		{"cookie logout path", func(t *testing.T, e env) {
			wantDetail(t, e.a.do(t, e.victim.on(req{method: "POST", path: "/auth/cookie/logout"})), http.StatusNoContent, nil)
		}, false},
		{"DELETE session", func(t *testing.T, e env) {
			id := sessionID(t, e.a, e.victim)
			wantDetail(t, e.a.do(t, e.actor.on(req{method: "DELETE", path: "/auth/sessions/" + id})), http.StatusNoContent, nil)
		}, false},
		{"DELETE own current session", func(t *testing.T, e env) {
			id := sessionID(t, e.a, e.victim)
			wantDetail(t, e.a.do(t, e.victim.on(req{method: "DELETE", path: "/auth/sessions/" + id})), http.StatusNoContent, nil)
		}, false},
		{"password change", func(t *testing.T, e env) {
			wantDetail(t, e.a.do(t, e.actor.on(req{method: "POST", path: "/auth/change-password", json: map[string]string{
				"current_password": e.acct.password, "new_password": "N3w-Garden-Path?", "confirm_password": "N3w-Garden-Path?"}})), http.StatusNoContent, nil)
		}, false},
		{"admin deactivates", func(t *testing.T, e env) {
			wantDetail(t, e.a.do(t, e.admin.on(req{method: "PATCH", path: "/users/" + e.acct.ID, json: map[string]any{"is_active": false}})), http.StatusOK, nil)
		}, true},
		{"admin resets the password", func(t *testing.T, e env) {
			wantDetail(t, e.a.do(t, e.admin.on(req{method: "PATCH", path: "/users/" + e.acct.ID, json: map[string]any{"password": "Adm1n-Set-Pass!"}})), http.StatusOK, nil)
		}, true},
		{"admin deletes the user", func(t *testing.T, e env) {
			wantDetail(t, e.a.do(t, e.admin.on(req{method: "DELETE", path: "/users/" + e.acct.ID})), http.StatusNoContent, nil)
		}, true},
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{})
		admin := a.newAccount(t, true)
		adminCreds := a.signIn(t, admin, "bearer")
		for _, tc := range cases {
			for _, via := range []string{"cookie", "bearer"} {
				t.Run(tc.name+"/"+via, func(t *testing.T) {
					acct := a.newAccount(t, false)
					e := env{a: a, acct: acct, victim: a.signIn(t, acct, via), actor: a.signIn(t, acct, "bearer"), admin: adminCreds, adminID: admin.ID}
					if me := a.me(t, e.victim); me.status != http.StatusOK {
						t.Fatalf("before: %v", me)
					}
					tc.revoke(t, e)
					for i, rq := range []req{{method: "GET", path: "/users/me"}, {method: "GET", path: "/auth/sessions"}, {method: "POST", path: "/auth/logout"}} {
						if r := a.do(t, e.victim.on(rq)); r.status != http.StatusUnauthorized {
							t.Errorf("request %d after revocation: %v, want 401", i, r)
						}
					}
					if me := a.me(t, e.actor); tc.alsoActor != (me.status == http.StatusUnauthorized) {
						t.Errorf("the user's other session: %v", me)
					}
					if me := a.me(t, adminCreds); me.status != http.StatusOK {
						t.Errorf("the admin's session: %v", me)
					}
				})
			}
		}

		t.Run("role change rewrites live sessions", func(t *testing.T) {
			acct := a.newAccount(t, false)
			c := a.signIn(t, acct, "cookie")
			target := a.newAccount(t, false)
			wantDetail(t, a.do(t, c.on(req{method: "GET", path: "/users/" + target.ID})), http.StatusForbidden, nil)
			wantDetail(t, a.do(t, adminCreds.on(req{method: "PATCH", path: "/users/" + acct.ID, json: map[string]any{"role_id": 1}})), http.StatusOK, nil)
			wantDetail(t, a.do(t, c.on(req{method: "GET", path: "/users/" + target.ID})), http.StatusOK, nil)
			wantDetail(t, a.do(t, adminCreds.on(req{method: "PATCH", path: "/users/" + acct.ID, json: map[string]any{"role_id": 2}})), http.StatusOK, nil)
			wantDetail(t, a.do(t, c.on(req{method: "GET", path: "/users/" + target.ID})), http.StatusForbidden, nil)
		})
	})
}

// sessionID is the public id of the session c holds.
func sessionID(t testing.TB, a *e2eApp, c creds) string {
	t.Helper()
	var list []map[string]any
	r := a.do(t, c.on(req{method: "GET", path: "/auth/sessions"}))
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatalf("sessions: %v: %v", r, err)
	}
	for _, s := range list {
		if s["current"] == true {
			return s["id"].(string)
		}
	}
	t.Fatalf("no current session in %s", r.body)
	return ""
}

// storedHash is the password hash the user store holds for id.
func (a *e2eApp) storedHash(t testing.TB, id string) string {
	t.Helper()
	u, err := a.users.UserByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.HashedPassword
}

// TestE2EBcryptUpgrade: a legacy bcrypt hash verifies, and the login that
// verifies it stores an argon2id hash in its place.
func TestE2EBcryptUpgrade(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{})
		for _, prefix := range []string{"$2a$", "$2b$", "$2y$"} {
			t.Run(prefix, func(t *testing.T) {
				ctx := context.Background()
				const legacyPassword = "legacy-pass" // the legacy app had no policy
				h, err := bcrypt.GenerateFromPassword([]byte(legacyPassword), bcrypt.MinCost)
				if err != nil {
					t.Fatal(err)
				}
				stored := prefix + string(h)[4:]
				u, err := a.users.CreateUser(ctx, authn.User{Email: "legacy" + randHex(3) + "@example.test", HashedPassword: stored, IsActive: true})
				if err != nil {
					t.Fatal(err)
				}

				wantDetail(t, a.do(t, loginReq(u.Email, "legacy-pasS", a.ip())), http.StatusBadRequest, "LOGIN_BAD_CREDENTIALS")
				if a.storedHash(t, u.ID) != stored {
					t.Fatal("a failed login changed the stored hash")
				}
				a.login(t, u.Email, legacyPassword)
				if got := a.storedHash(t, u.ID); !strings.HasPrefix(got, "$argon2id$") {
					t.Fatalf("stored hash after login %.12q…, want $argon2id$", got)
				}
				a.login(t, u.Email, legacyPassword) // the new hash verifies
				wantDetail(t, a.do(t, loginReq(u.Email, "legacy-pasS", a.ip())), http.StatusBadRequest, "LOGIN_BAD_CREDENTIALS")

				rows := a.auditRows(t, audit.Filter{UserID: u.ID, Action: audit.ActionLoginSucceeded}, rowsExactly(2))
				if len(rows) != 2 || rows[1].Details["rehashed"] != true || rows[0].Details["rehashed"] != false {
					t.Errorf("login rows (newest first) should say rehashed true then false: %+v", rows)
				}
			})
		}
	})
}

// TestE2EAuditTrail: every action of issue 3 point 6 leaves its row, with
// the client address a trusted proxy vouched for, the user agent, the
// request id and the details; session history rows follow the sessions.
func TestE2EAuditTrail(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{})
		admin := a.newAccount(t, true)
		adminCreds := a.signIn(t, admin, "bearer")
		const ua = "Mozilla/5.0 (audit-e2e)"
		n := 0
		// call makes a request from its own address and request id, and
		// returns them for the check.
		call := func(rq req) (resp, string, string) {
			n++
			rq.ip, rq.ua = a.ip(), ua
			rid := "audit-e2e-" + randHex(4)
			rq.header = map[string]string{"X-Request-Id": rid}
			return a.do(t, rq), rq.ip, rid
		}
		// want finds the one row of action for the user from ip, and checks
		// its columns and details.
		want := func(action, userID, ip, rid string, details map[string]any) {
			t.Helper()
			rows := a.auditRows(t, audit.Filter{Action: action, IP: ip}, rowsExactly(1))
			if len(rows) != 1 {
				t.Errorf("%s from %s: %d rows, want 1", action, ip, len(rows))
				return
			}
			ev := rows[0]
			if ev.Action != action || ev.UserID != userID || ev.IP != ip || ev.UserAgent != ua || ev.Details["request_id"] != rid {
				t.Errorf("%s row: user %q ip %q ua %q details %v; want user %q ip %q ua %q request_id %q",
					action, ev.UserID, ev.IP, ev.UserAgent, ev.Details, userID, ip, ua, rid)
			}
			if userID != "" && (ev.Resource != "user" || ev.ResourceID != userID) {
				t.Errorf("%s row: resource %q/%q, want user/%s", action, ev.Resource, ev.ResourceID, userID)
			}
			for k, v := range details {
				if got := ev.Details[k]; got != v {
					t.Errorf("%s row: details[%s] = %v, want %v", action, k, got, v)
				}
			}
			if time.Since(ev.CreatedAt) > time.Minute || ev.ID == "" {
				t.Errorf("%s row: id %q created %v", action, ev.ID, ev.CreatedAt)
			}
		}

		email := "audited." + randHex(3) + "@example.test"
		r, ip, rid := call(req{method: "POST", path: "/auth/register", json: map[string]string{"email": email, "password": e2ePassword}})
		if r.status != http.StatusCreated {
			t.Fatalf("register: %v", r)
		}
		userID := r.object(t)["id"].(string)
		want(audit.ActionRegister, userID, ip, rid, map[string]any{"email": email})

		r, ip, rid = call(req{method: "POST", path: "/auth/login", json: map[string]string{"username": email, "password": e2ePassword}})
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.Unmarshal(r.body, &tok)
		user := creds{bearer: tok.AccessToken}
		want(audit.ActionLoginSucceeded, userID, ip, rid, map[string]any{"rehashed": false})
		firstSession := sessionID(t, a, user)

		_, ip, rid = call(req{method: "POST", path: "/auth/login", json: map[string]string{"username": "ghost@example.test", "password": "x"}})
		want(audit.ActionLoginFailed, "", ip, rid, map[string]any{"reason": "unknown_user", "email": "ghost@example.test"})

		for i := range 4 {
			_, ip, rid = call(req{method: "POST", path: "/auth/login", json: map[string]string{"username": email, "password": "Wrong-Pass-9!"}})
			want(audit.ActionLoginFailed, userID, ip, rid, map[string]any{"reason": "bad_password"})
			_ = i
		}
		_, ip, rid = call(req{method: "POST", path: "/auth/login", json: map[string]string{"username": email, "password": "Wrong-Pass-9!"}})
		want(audit.ActionAccountLocked, userID, ip, rid, map[string]any{"attempts": 5.0})
		want(audit.ActionLoginFailed, userID, ip, rid, map[string]any{"reason": "bad_password"})
		_, ip, rid = call(req{method: "POST", path: "/auth/login", json: map[string]string{"username": email, "password": e2ePassword}})
		want(audit.ActionLoginFailed, userID, ip, rid, map[string]any{"reason": "locked"})

		_, ip, rid = call(adminCreds.on(req{method: "POST", path: "/users/" + userID + "/unlock"}))
		want(audit.ActionAccountUnlocked, userID, ip, rid, map[string]any{"by": admin.ID, "was_locked": true})

		// A second session, revoked by the first.
		second := creds{cookie: a.cookieLogin(t, email, e2ePassword)}
		secondID := sessionID(t, a, second)
		_, ip, rid = call(user.on(req{method: "DELETE", path: "/auth/sessions/" + secondID}))
		want(audit.ActionSessionRevoked, userID, ip, rid, map[string]any{"session_id": secondID})

		third := creds{cookie: a.cookieLogin(t, email, e2ePassword)}
		thirdID := sessionID(t, a, third)
		_, ip, rid = call(user.on(req{method: "POST", path: "/auth/change-password", json: map[string]string{
			"current_password": e2ePassword, "new_password": "N3w-Garden-Path?", "confirm_password": "N3w-Garden-Path?"}}))
		want(audit.ActionPasswordChanged, userID, ip, rid, map[string]any{"sessions_ended": 1.0})

		_, ip, rid = call(user.on(req{method: "POST", path: "/auth/logout"}))
		want(audit.ActionLogout, userID, ip, rid, map[string]any{"session_id": firstSession})

		_, ip, rid = call(adminCreds.on(req{method: "PATCH", path: "/users/" + userID, json: map[string]any{"is_active": false}}))
		want(audit.ActionUserUpdated, userID, ip, rid, map[string]any{"by": admin.ID})
		_, ip, rid = call(req{method: "POST", path: "/auth/login", json: map[string]string{"username": email, "password": "N3w-Garden-Path?"}})
		want(audit.ActionLoginFailed, userID, ip, rid, map[string]any{"reason": "inactive"})

		// The address is the one the trusted proxy vouched for: the
		// rightmost hop it did not add itself, not what the client wrote.
		r = a.do(t, req{method: "POST", path: "/auth/login", header: map[string]string{"X-Forwarded-For": "6.6.6.6, 192.0.2.77"},
			json: map[string]string{"username": "ghost2@example.test", "password": "x"}})
		wantDetail(t, r, http.StatusBadRequest, nil)
		if rows := a.auditRows(t, audit.Filter{IP: "192.0.2.77", Action: audit.ActionLoginFailed}, rowsExactly(1)); len(rows) != 1 {
			t.Errorf("XFF \"6.6.6.6, 192.0.2.77\" from a trusted peer: %d rows for 192.0.2.77, want 1", len(rows))
		}
		if rows := a.auditRows(t, audit.Filter{IP: "6.6.6.6"}, nil); len(rows) != 0 {
			t.Errorf("the client-written hop 6.6.6.6 reached the audit trail: %+v", rows)
		}

		// Session history: each session with its address, agent and end.
		hist, err := a.users.SessionHistory(context.Background(), userID, 0)
		if err != nil {
			t.Fatal(err)
		}
		ended := map[string]string{}
		for _, h := range hist {
			ended[h.ID] = h.EndReason
			if h.EndedAt == nil || h.UserAgent == "" || h.ExpiresAt.IsZero() {
				t.Errorf("history row %+v: want ended, with user agent and expiry", h)
			}
		}
		wantEnds := map[string]string{firstSession: "logout", secondID: "revoked", thirdID: "password_changed"}
		for id, reason := range wantEnds {
			if ended[id] != reason {
				t.Errorf("session %s history end %q, want %q (all: %v)", id, ended[id], reason, ended)
			}
		}
	})
}
