package authn_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/authn"
)

// mfaUser enrols acct in a second factor and returns its TOTP secret and
// recovery codes.
func (a *e2eApp) mfaUser(t testing.TB, acct account) (secret string, recovery []string) {
	t.Helper()
	bearer := a.login(t, acct.Email, acct.password)
	r := a.do(t, req{method: "POST", path: "/auth/mfa/enroll", bearer: bearer})
	if r.status != http.StatusOK {
		t.Fatalf("enroll: %v", r)
	}
	secret, _ = r.object(t)["secret"].(string)
	r = a.do(t, req{method: "POST", path: "/auth/mfa/confirm", bearer: bearer, json: map[string]string{"code": a.code(t, secret)}})
	if r.status != http.StatusOK {
		t.Fatalf("confirm: %v", r)
	}
	for _, c := range r.object(t)["recovery_codes"].([]any) {
		recovery = append(recovery, c.(string))
	}
	return secret, recovery
}

// code is the TOTP code of secret now, on the app's clock.
func (a *e2eApp) code(t testing.TB, secret string) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, a.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// challenge logs in with the password and returns the MFA challenge.
func (a *e2eApp) challenge(t testing.TB, acct account, path string) string {
	t.Helper()
	r := a.do(t, req{method: "POST", path: path, ip: a.ip(), json: map[string]string{"username": acct.Email, "password": acct.password}})
	if r.status != http.StatusUnauthorized || r.detail() != "LOGIN_MFA_REQUIRED" {
		t.Fatalf("%s with a second factor: %v", path, r)
	}
	if r.cookie(e2eCookie) != nil {
		t.Errorf("the password step set a session cookie")
	}
	tok, _ := r.object(t)["mfa_token"].(string)
	return tok
}

func mfaVerify(path, token, code string) req {
	return req{method: "POST", path: path, json: map[string]string{"mfa_token": token, "code": code}}
}

// TestE2EMFA: enrol (otpauth URI, PNG QR code), confirm with a first code,
// two-step login (bearer and cookie), replayed codes and challenges
// refused, recovery codes single-use, expired challenges refused, disable
// with password and code.
func TestE2EMFA(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{Flows: authn.FlowConfig{Site: "Muestras"}})
		u := a.newAccount(t, false)
		bearer := a.login(t, u.Email, u.password)

		r := a.do(t, req{method: "POST", path: "/auth/mfa/enroll", bearer: bearer})
		if r.status != http.StatusOK {
			t.Fatal(r)
		}
		m := r.object(t)
		secret := m["secret"].(string)
		if uri := m["otpauth_uri"].(string); !strings.HasPrefix(uri, "otpauth://totp/Muestras:") || !strings.Contains(uri, "secret="+secret) {
			t.Errorf("otpauth_uri %s", uri)
		}
		qr, ok := strings.CutPrefix(m["qr_code"].(string), "data:image/png;base64,")
		raw, err := base64.StdEncoding.DecodeString(qr)
		if !ok || err != nil {
			t.Fatalf("qr_code is not a PNG data URI: %v", err)
		}
		if _, err := png.Decode(bytes.NewReader(raw)); err != nil {
			t.Errorf("qr_code: %v", err)
		}
		a.login(t, u.Email, u.password) // not confirmed yet: one step still

		wantDetail(t, a.do(t, req{method: "POST", path: "/auth/mfa/confirm", bearer: bearer, json: map[string]string{"code": "000000"}}), http.StatusBadRequest, "MFA_BAD_CODE")
		first := a.code(t, secret)
		r = a.do(t, req{method: "POST", path: "/auth/mfa/confirm", bearer: bearer, json: map[string]string{"code": first}})
		if r.status != http.StatusOK {
			t.Fatal(r)
		}
		recovery := r.object(t)["recovery_codes"].([]any)
		if len(recovery) != 10 {
			t.Fatalf("%d recovery codes", len(recovery))
		}
		wantDetail(t, a.do(t, req{method: "POST", path: "/auth/mfa/enroll", bearer: bearer}), http.StatusBadRequest, "MFA_ALREADY_ENABLED")

		// The code that confirmed cannot log in: its time step is used.
		tok := a.challenge(t, u, "/auth/login")
		wantDetail(t, a.do(t, mfaVerify("/auth/mfa/verify", tok, first)), http.StatusBadRequest, "LOGIN_MFA_BAD_CODE")
		a.clock.Advance(30 * time.Second)
		code := a.code(t, secret)
		r = a.do(t, mfaVerify("/auth/mfa/verify", tok, code))
		if r.status != http.StatusOK {
			t.Fatalf("verify: %v", r)
		}
		if me := a.me(t, creds{bearer: r.object(t)["access_token"].(string)}); me.status != http.StatusOK {
			t.Errorf("the MFA session does not work: %v", me)
		}
		wantDetail(t, a.do(t, mfaVerify("/auth/mfa/verify", tok, code)), http.StatusBadRequest, "LOGIN_MFA_BAD_TOKEN")
		tok = a.challenge(t, u, "/auth/login")
		wantDetail(t, a.do(t, mfaVerify("/auth/mfa/verify", tok, code)), http.StatusBadRequest, "LOGIN_MFA_BAD_CODE")

		// A recovery code works once, in any case and spacing.
		rc := strings.ToUpper(strings.ReplaceAll(recovery[0].(string), "-", " "))
		if r := a.do(t, mfaVerify("/auth/mfa/verify", tok, rc)); r.status != http.StatusOK {
			t.Fatalf("recovery code: %v", r)
		}
		tok = a.challenge(t, u, "/auth/login")
		wantDetail(t, a.do(t, mfaVerify("/auth/mfa/verify", tok, recovery[0].(string))), http.StatusBadRequest, "LOGIN_MFA_BAD_CODE")

		// Challenges expire.
		a.clock.Advance(5*time.Minute + time.Second)
		wantDetail(t, a.do(t, mfaVerify("/auth/mfa/verify", tok, a.code(t, secret))), http.StatusBadRequest, "LOGIN_MFA_BAD_TOKEN")

		// The cookie variant ends with the cookie.
		tok = a.challenge(t, u, "/auth/cookie/login")
		a.clock.Advance(30 * time.Second)
		r = a.do(t, mfaVerify("/auth/cookie/mfa/verify", tok, a.code(t, secret)))
		if r.status != http.StatusNoContent || r.cookie(e2eCookie) == nil {
			t.Fatalf("cookie verify: %v", r)
		}

		// Disable: the password and a code.
		a.clock.Advance(30 * time.Second)
		wantDetail(t, a.do(t, req{method: "POST", path: "/auth/mfa/disable", bearer: bearer, json: map[string]string{"password": "Wrong-Pass-99!", "code": a.code(t, secret)}}), http.StatusBadRequest, "MFA_BAD_PASSWORD")
		if r := a.do(t, req{method: "POST", path: "/auth/mfa/disable", bearer: bearer, json: map[string]string{"password": u.password, "code": a.code(t, secret)}}); r.status != http.StatusNoContent {
			t.Fatalf("disable: %v", r)
		}
		a.login(t, u.Email, u.password)

		wantRows(t, a, audit.Filter{Action: authn.ActionMFAEnrolled, UserID: u.ID}, 1)
		wantRows(t, a, audit.Filter{Action: authn.ActionMFADisabled, UserID: u.ID}, 1)
		wantRows(t, a, audit.Filter{Action: authn.ActionMFAChallenged, UserID: u.ID}, 4)
		wantMetric(t, a, `portero_mfa_verifications_total{result="succeeded"}`, 2)
		wantMetric(t, a, `portero_mfa_verifications_total{result="recovery_code"}`, 1)
	})
}

// TestE2EMFALockout: wrong codes count against the account like wrong
// passwords, a right password in between does not reset the count, and
// once locked even the right code is refused.
func TestE2EMFALockout(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{})
		u := a.newAccount(t, false)
		secret, _ := a.mfaUser(t, u)
		a.clock.Advance(30 * time.Second)

		tok := a.challenge(t, u, "/auth/login")
		for range 3 {
			wantDetail(t, a.do(t, mfaVerify("/auth/mfa/verify", tok, "123456")), http.StatusBadRequest, "LOGIN_MFA_BAD_CODE")
		}
		tok = a.challenge(t, u, "/auth/login") // the right password again
		for range 2 {
			wantDetail(t, a.do(t, mfaVerify("/auth/mfa/verify", tok, "654321")), http.StatusBadRequest, "LOGIN_MFA_BAD_CODE")
		}
		wantDetail(t, a.do(t, mfaVerify("/auth/mfa/verify", tok, a.code(t, secret))), http.StatusBadRequest, "LOGIN_MFA_BAD_CODE")
		wantDetail(t, a.do(t, loginReq(u.Email, u.password, a.ip())), http.StatusBadRequest, "LOGIN_BAD_CREDENTIALS")
		wantRows(t, a, audit.Filter{Action: audit.ActionAccountLocked, UserID: u.ID}, 1)
		wantRows(t, a, audit.Filter{Action: authn.ActionMFAFailed, UserID: u.ID}, 6)
	})
}

// TestE2EMFAAdminReset: an admin removes a user's second factor (audited);
// the user logs in with the password alone again.
func TestE2EMFAAdminReset(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{})
		u, admin := a.newAccount(t, false), a.newAccount(t, true)
		a.mfaUser(t, u)
		a.challenge(t, u, "/auth/login")
		adm := a.login(t, admin.Email, admin.password)
		other := a.newAccount(t, false)
		wantDetail(t, a.do(t, req{method: "POST", path: "/users/" + u.ID + "/mfa/reset", bearer: a.login(t, other.Email, other.password)}), http.StatusForbidden, "FORBIDDEN")
		if r := a.do(t, req{method: "POST", path: "/users/" + u.ID + "/mfa/reset", bearer: adm}); r.status != http.StatusNoContent {
			t.Fatalf("reset: %v", r)
		}
		a.login(t, u.Email, u.password)
		rows := wantRows(t, a, audit.Filter{Action: authn.ActionMFAReset, UserID: u.ID}, 1)
		if len(rows) != 1 || rows[0].Details["by"] != admin.ID || rows[0].Details["had_mfa"] != true {
			t.Errorf("reset rows %+v", rows)
		}
	})
}

// TestE2EMFARoleRequired: a role an admin marks mfa_required keeps its
// users without a second factor from any session: the password answers
// LOGIN_MFA_ENROLMENT_REQUIRED with a token good only for enrolling; once
// enrolled they log in in two steps. Unmarking the role lifts the rule.
func TestE2EMFARoleRequired(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{})
		adm := creds{bearer: a.loginVerified(t)}
		r := a.do(t, adm.on(req{method: "POST", path: "/roles", json: map[string]any{"name": "lab-" + randHex(3), "mfa_required": true}}))
		if r.status != http.StatusCreated || r.object(t)["mfa_required"] != true {
			t.Fatalf("create role: %v", r)
		}
		roleID := r.object(t)["id"].(float64)
		u, plain := a.newAccount(t, false), a.newAccount(t, false)
		for _, acct := range []account{u, plain} {
			if r := a.do(t, adm.on(req{method: "PATCH", path: "/users/" + acct.ID, json: map[string]any{"role_id": roleID}})); r.status != http.StatusOK {
				t.Fatal(r)
			}
		}

		r = a.do(t, loginReq(u.Email, u.password, a.ip()))
		if r.status != http.StatusUnauthorized || r.detail() != "LOGIN_MFA_ENROLMENT_REQUIRED" {
			t.Fatalf("login: %v", r)
		}
		enrol := r.object(t)["mfa_token"].(string)
		wantDetail(t, a.do(t, loginReq(u.Email, "Wrong-Pass-99!", a.ip())), http.StatusBadRequest, "LOGIN_BAD_CREDENTIALS")
		wantDetail(t, a.do(t, mfaVerify("/auth/mfa/verify", enrol, "123456")), http.StatusBadRequest, "LOGIN_MFA_BAD_TOKEN")
		wantDetail(t, a.do(t, req{method: "POST", path: "/auth/mfa/enroll", json: map[string]string{"mfa_token": strings.Repeat("A", 43)}}), http.StatusBadRequest, "LOGIN_MFA_BAD_TOKEN")
		wantDetail(t, a.do(t, req{method: "POST", path: "/auth/mfa/enroll"}), http.StatusUnauthorized, "Unauthorized")

		r = a.do(t, req{method: "POST", path: "/auth/mfa/enroll", json: map[string]string{"mfa_token": enrol}})
		if r.status != http.StatusOK {
			t.Fatalf("enroll with the enrolment token: %v", r)
		}
		secret := r.object(t)["secret"].(string)
		confirm := req{method: "POST", path: "/auth/mfa/confirm", json: map[string]string{"mfa_token": enrol, "code": a.code(t, secret)}}
		if r := a.do(t, confirm); r.status != http.StatusOK {
			t.Fatalf("confirm with the enrolment token: %v", r)
		}
		wantDetail(t, a.do(t, confirm), http.StatusBadRequest, "LOGIN_MFA_BAD_TOKEN")

		a.clock.Advance(30 * time.Second)
		tok := a.challenge(t, u, "/auth/login")
		if r := a.do(t, mfaVerify("/auth/mfa/verify", tok, a.code(t, secret))); r.status != http.StatusOK {
			t.Fatalf("two-step login: %v", r)
		}

		if r := a.do(t, adm.on(req{method: "PATCH", path: "/roles/" + strconv.Itoa(int(roleID)), json: map[string]any{"mfa_required": false}})); r.status != http.StatusOK || r.object(t)["mfa_required"] != false {
			t.Fatalf("unmark role: %v", r)
		}
		a.login(t, plain.Email, plain.password)
		wantRows(t, a, audit.Filter{Action: audit.ActionLoginFailed, UserID: u.ID}, 2)
	})
}

// TestE2EBcryptUpgradeWithSecondFactor: a user with a second factor and a
// legacy bcrypt hash gets the argon2id upgrade at the password step too
// (the password is proven there; the second step never sees it), so an
// imported user with MFA does not keep a bcrypt hash forever.
func TestE2EBcryptUpgradeWithSecondFactor(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{})
		ctx := context.Background()
		u := a.newAccount(t, false)
		secret, _ := a.mfaUser(t, u)
		h, err := bcrypt.GenerateFromPassword([]byte(u.password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.users.SetPassword(ctx, u.ID, string(h)); err != nil {
			t.Fatal(err)
		}
		wantDetail(t, a.do(t, loginReq(u.Email, "Wrong-Pass-99!", a.ip())), http.StatusBadRequest, "LOGIN_BAD_CREDENTIALS")
		if a.storedHash(t, u.ID) != string(h) {
			t.Fatal("a wrong password changed the stored hash")
		}
		a.clock.Advance(30 * time.Second)
		tok := a.challenge(t, u, "/auth/login")
		if got := a.storedHash(t, u.ID); !strings.HasPrefix(got, "$argon2id$") {
			t.Fatalf("stored hash after the password step %.12q…, want $argon2id$", got)
		}
		if r := a.do(t, mfaVerify("/auth/mfa/verify", tok, a.code(t, secret))); r.status != http.StatusOK {
			t.Fatalf("second step after the upgrade: %v", r)
		}
		a.clock.Advance(30 * time.Second)
		a.challenge(t, u, "/auth/login") // the new hash verifies
	})
}
