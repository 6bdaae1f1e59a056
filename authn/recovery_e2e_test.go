package authn_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/authn"
	"github.com/portero/portero/notify/notifytest"
)

// mailWait bounds how long a test waits for the background sender.
const mailWait = 10 * time.Second

func forgot(email, ip string) req {
	return req{method: "POST", path: "/auth/forgot-password", ip: ip, json: map[string]string{"email": email}}
}

func resetReq(token, password string) req {
	return req{method: "POST", path: "/auth/reset-password", json: map[string]string{"token": token, "password": password}}
}

// wantRows checks that f matches exactly n audit rows (waiting briefly for
// rows still on their way through the writer).
func wantRows(t testing.TB, a *e2eApp, f audit.Filter, n int) []audit.Event {
	t.Helper()
	rows := a.auditRows(t, f, rowsExactly(n))
	if len(rows) != n {
		t.Errorf("audit %+v: %d rows, want %d", f, len(rows), n)
	}
	return rows
}

// metricValue reads one series of the app's flow metrics (-1 if absent).
func metricValue(t testing.TB, a *e2eApp, series string) float64 {
	t.Helper()
	name, _, _ := strings.Cut(series, "{")
	mfs, err := a.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := []string{}
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if name+"{"+strings.Join(labels, ",")+"}" == series {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// wantMetric checks one series of the app's flow metrics.
func wantMetric(t testing.TB, a *e2eApp, series string, want float64) {
	t.Helper()
	if got := metricValue(t, a, series); got != want {
		t.Errorf("%s = %v, want %v", series, got, want)
	}
}

// TestE2EPasswordReset: a locked user with two sessions asks for a link,
// gets it by mail, is refused a weak password (the link survives that),
// sets a good one; every session ends, the lock lifts, the link is dead,
// and the user is told by mail.
func TestE2EPasswordReset(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{Mail: true, Flows: authn.FlowConfig{ResetURL: "https://app.test/auth/reset", Site: "Muestras"}})
		u := a.newAccount(t, false)
		bearer, cookie := a.signIn(t, u, "bearer"), a.signIn(t, u, "cookie")
		ip := a.ip()
		for range 5 {
			a.do(t, loginReq(u.Email, "Wrong-Pass-99!", ip))
		}
		if r := a.do(t, loginReq(u.Email, u.password, a.ip())); r.status != http.StatusBadRequest {
			t.Fatalf("the account is not locked: %v", r)
		}
		locked := a.mail.Wait(t, u.Email, 1, mailWait)
		if !strings.Contains(locked.Subject, "locked") {
			t.Errorf("first message %q, want the lock notice", locked.Subject)
		}

		r := a.do(t, forgot(strings.ToUpper(u.Email), a.ip()))
		if r.status != http.StatusAccepted || string(r.body) != "null" {
			t.Fatalf("forgot-password: %v", r)
		}
		m := a.mail.Wait(t, u.Email, 2, mailWait)
		token := m.Token()
		if !strings.Contains(m.Text, "https://app.test/auth/reset?token="+token) || len(token) != 43 || !strings.Contains(m.Subject, "Muestras") {
			t.Fatalf("reset message %q: %s", m.Subject, m.Text)
		}

		r = a.do(t, resetReq(token, "short"))
		if r.status != http.StatusBadRequest {
			t.Fatalf("weak password: %v", r)
		}
		if d, _ := r.object(t)["detail"].(map[string]any); d["code"] != "RESET_PASSWORD_INVALID_PASSWORD" || d["reason"] == "" {
			t.Errorf("weak password detail: %s", r.body)
		}
		const next = "N3w-Harbor-Lamp!"
		r = a.do(t, resetReq(token, next))
		if r.status != http.StatusOK || r.object(t)["email"] != u.Email {
			t.Fatalf("reset: %v", r)
		}
		hasKeys(t, r.object(t), []string{"id", "email", "is_active", "is_verified"}, []string{"hashed_password"})

		for _, c := range []creds{bearer, cookie} {
			if r := a.me(t, c); r.status != http.StatusUnauthorized {
				t.Errorf("a session from before the reset still works: %v", r)
			}
		}
		wantDetail(t, a.do(t, resetReq(token, "An0ther-Harbor-Lamp!")), http.StatusBadRequest, "RESET_PASSWORD_BAD_TOKEN")
		wantDetail(t, a.do(t, loginReq(u.Email, u.password, a.ip())), http.StatusBadRequest, "LOGIN_BAD_CREDENTIALS")
		a.login(t, u.Email, next) // the lock is gone
		if changed := a.mail.Wait(t, u.Email, 3, mailWait); !strings.Contains(changed.Subject, "password was changed") {
			t.Errorf("third message %q, want the password-changed notice", changed.Subject)
		}

		wantRows(t, a, audit.Filter{Action: authn.ActionPasswordResetRequested}, 1)
		rows := wantRows(t, a, audit.Filter{Action: authn.ActionPasswordReset, UserID: u.ID}, 1)
		if len(rows) != 1 || rows[0].Details["sessions_ended"] != 2.0 || rows[0].Details["was_locked"] != true {
			t.Errorf("reset rows %+v", rows)
		}
		wantRows(t, a, audit.Filter{Action: authn.ActionPasswordResetFailed}, 2) // the weak password (the user known), the replay (a token that names nobody now)
		wantMetric(t, a, `portero_password_resets_total{result="succeeded"}`, 1)
		wantMetric(t, a, `portero_password_resets_total{result="invalid_password"}`, 1)
		wantMetric(t, a, `portero_notifications_sent_total{kind="reset_password",result="sent"}`, 1)
	})
}

// TestE2EResetTokenRefused: expired, superseded, made stale by a password
// change, malformed, and raced tokens are all refused alike.
func TestE2EResetTokenRefused(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{Mail: true})
		u := a.newAccount(t, false)
		n := 0
		link := func() string {
			t.Helper()
			a.clock.Advance(time.Minute) // one link a minute per account
			a.do(t, forgot(u.Email, a.ip()))
			n++
			// Counting links only: the password-changed notice below is
			// sent in the background and may arrive after the next link.
			return a.mail.WaitFor(t, u.Email, n, mailWait, notifytest.HasToken).Token()
		}
		bad := func(what, token string) {
			t.Helper()
			r := a.do(t, resetReq(token, "N3w-Harbor-Lamp!"))
			if r.status != http.StatusBadRequest || r.detail() != "RESET_PASSWORD_BAD_TOKEN" {
				t.Errorf("%s: %v, want 400 RESET_PASSWORD_BAD_TOKEN", what, r)
			}
		}

		expired := link()
		a.clock.Advance(15*time.Minute + time.Second)
		bad("expired", expired)

		first := link()
		second := link()
		bad("superseded", first)

		bearer := a.login(t, u.Email, u.password)
		const changed = "Ch4nged-Harbor-Lamp!"
		if r := a.do(t, req{method: "POST", path: "/auth/change-password", bearer: bearer, json: map[string]string{
			"current_password": u.password, "new_password": changed, "confirm_password": changed}}); r.status != http.StatusNoContent {
			t.Fatalf("change password: %v", r)
		}
		bad("issued before a password change", second)

		bad("malformed", "not-a-token")
		bad("unknown", strings.Repeat("A", 43))

		// Concurrent uses of one token: exactly one wins.
		raced := link()
		var wg sync.WaitGroup
		results := make(chan int, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := a.send(resetReq(raced, "R4ced-Harbor-Lamp!"+string(rune('a'+i))))
				if err != nil {
					t.Error(err)
					return
				}
				results <- r.status
			}()
		}
		wg.Wait()
		close(results)
		won := 0
		for s := range results {
			switch s {
			case http.StatusOK:
				won++
			case http.StatusBadRequest:
			default:
				t.Errorf("raced reset answered %d", s)
			}
		}
		if won != 1 {
			t.Errorf("%d concurrent resets with one token succeeded, want 1", won)
		}
		wantMetric(t, a, `portero_password_resets_total{result="bad_token"}`, 12) // 5 refusals and 7 lost races
	})
}

// TestE2EForgotPasswordNoEnumeration: known, unknown and inactive
// addresses get byte-identical answers in comparable time; only the known
// active one gets mail.
func TestE2EForgotPasswordNoEnumeration(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{Mail: true, RealClock: true})
		known, inactive, admin := a.newAccount(t, false), a.newAccount(t, false), a.newAccount(t, true)
		if r := a.do(t, req{method: "PATCH", path: "/users/" + inactive.ID, bearer: a.login(t, admin.Email, admin.password),
			json: map[string]any{"is_active": false}}); r.status != http.StatusOK {
			t.Fatal(r)
		}
		unknown := "nobody." + randHex(3) + "@example.test"
		for _, path := range []string{"/auth/forgot-password", "/auth/request-verify-token"} {
			ask := func(email string) resp {
				rq := forgot(email, a.ip())
				rq.path = path
				return a.do(t, rq)
			}
			ref := ask(unknown)
			if ref.status != http.StatusAccepted {
				t.Fatalf("%s: %v", path, ref)
			}
			sameAnswer(t, path+" known vs unknown", ask(known.Email), ref)
			sameAnswer(t, path+" inactive vs unknown", ask(inactive.Email), ref)
		}

		const samples = 15
		var tKnown, tUnknown []time.Duration
		for i := range samples {
			for _, isKnown := range []bool{i%2 == 0, i%2 != 0} {
				email := unknown
				if isKnown {
					email = known.Email
				}
				began := time.Now()
				if r := a.do(t, forgot(email, a.ip())); r.status != http.StatusAccepted {
					t.Fatal(r)
				}
				if took := time.Since(began); isKnown {
					tKnown = append(tKnown, took)
				} else {
					tUnknown = append(tUnknown, took)
				}
			}
		}
		mk, mu := medianDur(tKnown), medianDur(tUnknown)
		t.Logf("median forgot-password: known %v, unknown %v", mk, mu)
		// Both do one audit insert and queue a job; the slack covers
		// scheduling noise on a busy 2-core machine.
		if ratio := float64(max(mk, mu)) / float64(min(mk, mu)); ratio > 2.5 && max(mk, mu)-min(mk, mu) > 5*time.Millisecond {
			t.Errorf("medians differ by %.1fx (%v vs %v)", ratio, mk, mu)
		}

		// Known: one verification and one reset mail, the later requests
		// within the minute throttled; the others: none.
		a.mail.Wait(t, known.Email, 2, mailWait)
		for deadline := time.Now().Add(mailWait); ; time.Sleep(20 * time.Millisecond) {
			if metricValue(t, a, `portero_notifications_sent_total{kind="reset_password",result="throttled"}`) == samples || time.Now().After(deadline) {
				break
			}
		}
		wantMetric(t, a, `portero_notifications_sent_total{kind="reset_password",result="throttled"}`, samples)
		if got := a.mail.To(known.Email); len(got) != 2 {
			t.Errorf("%s got %d messages, want 2", known.Email, len(got))
		}
		for _, who := range []string{unknown, inactive.Email} {
			if got := a.mail.To(who); len(got) != 0 {
				t.Errorf("%s got %d messages", who, len(got))
			}
		}
	})
}

// TestE2EVerifyEmail: with verification required, the right password of an
// unverified user gets LOGIN_USER_NOT_VERIFIED (a wrong one still gets bad
// credentials); the mailed token verifies once; stale and expired tokens
// are refused.
func TestE2EVerifyEmail(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{Mail: true, Flows: authn.FlowConfig{RequireVerified: true, VerifyURL: "https://app.test/auth/verify"}})
		u := a.newAccount(t, false)
		wantDetail(t, a.do(t, loginReq(u.Email, u.password, a.ip())), http.StatusBadRequest, "LOGIN_USER_NOT_VERIFIED")
		wantDetail(t, a.do(t, loginReq(u.Email, "Wrong-Pass-99!", a.ip())), http.StatusBadRequest, "LOGIN_BAD_CREDENTIALS")

		verifyReq := func(token string) req {
			return req{method: "POST", path: "/auth/verify", json: map[string]string{"token": token}}
		}
		ask := func(n int) string {
			t.Helper()
			if r := a.do(t, req{method: "POST", path: "/auth/request-verify-token", json: map[string]string{"email": u.Email}}); r.status != http.StatusAccepted {
				t.Fatal(r)
			}
			m := a.mail.Wait(t, u.Email, n, mailWait)
			if !strings.Contains(m.Text, "https://app.test/auth/verify?token=") {
				t.Errorf("verification message: %s", m.Text)
			}
			return m.Token()
		}

		expired := ask(1)
		a.clock.Advance(24*time.Hour + time.Second)
		wantDetail(t, a.do(t, verifyReq(expired)), http.StatusBadRequest, "VERIFY_USER_BAD_TOKEN")

		// A token names the address it was sent to: an e-mail change kills it.
		stale := ask(2)
		admin := creds{bearer: a.loginVerified(t)}
		newEmail := "moved." + randHex(3) + "@example.test"
		if r := a.do(t, admin.on(req{method: "PATCH", path: "/users/" + u.ID, json: map[string]any{"email": newEmail}})); r.status != http.StatusOK {
			t.Fatal(r)
		}
		wantDetail(t, a.do(t, verifyReq(stale)), http.StatusBadRequest, "VERIFY_USER_BAD_TOKEN")
		u.Email = newEmail

		a.clock.Advance(time.Minute) // one link a minute per account
		token := ask(1)
		r := a.do(t, verifyReq(token))
		if r.status != http.StatusOK || r.object(t)["is_verified"] != true {
			t.Fatalf("verify: %v", r)
		}
		wantDetail(t, a.do(t, verifyReq(token)), http.StatusBadRequest, "VERIFY_USER_BAD_TOKEN")
		a.login(t, u.Email, u.password)

		// Verified already: the request is accepted and nothing is sent.
		a.do(t, req{method: "POST", path: "/auth/request-verify-token", json: map[string]string{"email": u.Email}})
		time.Sleep(200 * time.Millisecond)
		if n := len(a.mail.To(u.Email)); n != 1 {
			t.Errorf("%d messages to the verified address, want 1", n)
		}
		wantRows(t, a, audit.Filter{Action: authn.ActionEmailVerified, UserID: u.ID}, 1)
		wantMetric(t, a, `portero_email_verifications_total{result="verified"}`, 1)
		wantMetric(t, a, `portero_email_verifications_total{result="bad_token"}`, 3)
	})
}

// TestE2EVerifyAlreadyVerified: a token for an address an admin verified
// meanwhile answers VERIFY_USER_ALREADY_VERIFIED.
func TestE2EVerifyAlreadyVerified(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newE2EApp(t, be, appConfig{Mail: true})
		u := a.newAccount(t, false)
		a.do(t, req{method: "POST", path: "/auth/request-verify-token", json: map[string]string{"email": u.Email}})
		token := a.mail.Wait(t, u.Email, 1, mailWait).Token()
		admin := creds{bearer: a.loginVerified(t)}
		if r := a.do(t, admin.on(req{method: "PATCH", path: "/users/" + u.ID, json: map[string]any{"is_verified": true}})); r.status != http.StatusOK {
			t.Fatal(r)
		}
		wantDetail(t, a.do(t, req{method: "POST", path: "/auth/verify", json: map[string]string{"token": token}}), http.StatusBadRequest, "VERIFY_USER_ALREADY_VERIFIED")
	})
}

// loginVerified makes a verified admin and signs it in.
func (a *e2eApp) loginVerified(t testing.TB) string {
	t.Helper()
	admin := a.newAccount(t, true)
	yes := true
	if _, err := a.users.UpdateUser(t.Context(), admin.ID, authn.UserUpdate{IsVerified: &yes}); err != nil {
		t.Fatal(err)
	}
	return a.login(t, admin.Email, admin.password)
}
