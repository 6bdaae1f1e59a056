package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/portero/portero/sessions/sessionstest"
	"github.com/portero/portero/storage/storagetest"
)

// scrape is one parsed /-/metrics answer.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, ops string) scrape {
	t.Helper()
	res, err := http.Get(ops + "/-/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing /-/metrics: %v", err)
	}
	return fams
}

// value is the series name{labels} (labels as "k=v" pairs), summed over
// the series' other labels; a histogram gives its count. Absent is 0.
func (s scrape) value(name string, labels ...string) float64 {
	fam, ok := s[name]
	if !ok {
		return 0
	}
	total := 0.0
next:
	for _, m := range fam.GetMetric() {
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

// TestMetricsMoveWithTraffic drives a scripted session of logins, a
// lockout, an unlock, gateway requests, a password change and a logout
// through a real instance on PostgreSQL and Redis, then checks each series
// moved by exactly what the script did.
func TestMetricsMoveWithTraffic(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(upstream.Close)
	redisURL := os.Getenv("PORTERO_TEST_REDIS")
	if redisURL == "" {
		redisURL = sessionstest.DefaultRedis
	}
	// Its own key prefix, so the active-sessions gauge counts only this
	// test's sessions; the keys go when the test ends.
	_, prefix := sessionstest.RedisClient(t, "metrics")
	e := newCLIEnv(t, storagetest.NewPostgresURL(t), fmt.Sprintf(`listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
upstream: {url: %q, timeout: 5s}
sessions: {url: %q, key_prefix: %q}
lockout: {max_attempts: 3}
log: {level: error}
%s`, upstream.URL, redisURL, prefix, routesYAML))
	const userEmail, oldPass, newPass = "metrics-user@example.test", "Old-Pass-2026!x", "New-Pass-2026!y"
	for _, args := range [][]string{{oldPass, userEmail}, {"Adm1n-Pass-2026!", "metrics-admin@example.test", "--admin"}} {
		if code, out, errOut := e.run(t, args[0]+"\n", append([]string{"users", "create", "--email"}, args[1:]...)...); code != 0 {
			t.Fatalf("users create (%d): %s%s", code, out, errOut)
		}
	}
	in := startInstance(t, e.cfg, e.getenv)
	do := func(method, path, bearer, body string) (int, string) {
		t.Helper()
		return jsonCall(t, method, in.public+path, bearer, body)
	}
	login := func(email, password string) string {
		t.Helper()
		code, body := do("POST", "/auth/login", "", fmt.Sprintf(`{"username":%q,"password":%q}`, email, password))
		tok, _, _ := strings.Cut(strings.TrimPrefix(body, `{"access_token":"`), `"`)
		if code != 200 || tok == "" {
			t.Fatalf("login %s: %d %s", email, code, body)
		}
		return tok
	}
	admin := login("metrics-admin@example.test", "Adm1n-Pass-2026!")
	_, me := do("GET", "/users?q=metrics-user", admin, "")
	userID, _, _ := strings.Cut(strings.SplitN(me, `"id":"`, 2)[1], `"`)

	before := scrapeMetrics(t, in.ops)

	// Three wrong passwords lock the account; the admin lifts the lock.
	for range 3 {
		if code, _ := do("POST", "/auth/login", "", fmt.Sprintf(`{"username":%q,"password":"wrong-password"}`, userEmail)); code != 400 {
			t.Fatalf("wrong password: %d", code)
		}
	}
	if code, body := do("POST", "/users/"+userID+"/unlock", admin, ""); code != 200 {
		t.Fatalf("unlock: %d %s", code, body)
	}
	// Two sessions; a gateway request without and with one.
	a, b := login(userEmail, oldPass), login(userEmail, oldPass)
	if code, _ := do("GET", "/api/samples/1", "", ""); code != 401 {
		t.Fatalf("gateway without a session: %d", code)
	}
	if code, _ := do("GET", "/api/samples/1", a, ""); code != 200 {
		t.Fatalf("gateway with a session: %d", code)
	}
	mid := scrapeMetrics(t, in.ops)
	// Changing the password on a ends b; logging out ends a.
	if code, body := do("POST", "/auth/change-password", a, fmt.Sprintf(`{"current_password":%q,"new_password":%q,"confirm_password":%q}`, oldPass, newPass, newPass)); code/100 != 2 {
		t.Fatalf("change-password: %d %s", code, body)
	}
	if code, _ := do("GET", "/users/me", b, ""); code != 401 {
		t.Fatalf("b after the password change: %d", code)
	}
	if code, body := do("POST", "/auth/logout", a, ""); code/100 != 2 {
		t.Fatalf("logout: %d %s", code, body)
	}
	after := scrapeMetrics(t, in.ops)

	for _, c := range []struct {
		name   string
		labels []string
		from   scrape
		to     scrape
		want   float64
	}{
		{"portero_logins_total", []string{"result=bad_password"}, before, after, 3},
		{"portero_logins_total", []string{"result=success"}, before, after, 2},
		{"portero_account_lockouts_total", nil, before, after, 1},
		{"portero_account_unlocks_total", nil, before, after, 1},
		{"portero_sessions_created_total", nil, before, after, 2},
		{"portero_sessions_active", nil, before, mid, 2},
		{"portero_sessions_active", nil, before, after, 0},
		{"portero_password_changes_total", nil, before, after, 1},
		{"portero_sessions_ended_total", []string{"reason=password_changed"}, before, after, 1},
		{"portero_sessions_ended_total", []string{"reason=logout"}, before, after, 1},
		{"portero_session_duration_seconds", nil, before, after, 2},
		{"portero_http_requests_total", []string{"route=/api/samples", "mode=gateway", "code=4xx"}, before, after, 1},
		{"portero_http_requests_total", []string{"route=/api/samples", "mode=gateway", "code=2xx"}, before, after, 1},
		{"portero_http_request_duration_seconds", []string{"route=/api/samples", "mode=gateway"}, before, after, 2},
		{"portero_upstream_response_duration_seconds", []string{"route=/api/samples"}, before, after, 1},
		{"portero_auth_denials_total", []string{"reason=no_credentials"}, before, after, 1},
		{"portero_route_credentials_total", []string{"route=/api/samples", "kind=portero_session"}, before, after, 1},
	} {
		if got := c.to.value(c.name, c.labels...) - c.from.value(c.name, c.labels...); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Every audited step reached the audit writer: 3 failures, the lock,
	// the unlock, 2 logins, the change and the logout at least.
	if got := after.value("portero_audit_events_written_total") - before.value("portero_audit_events_written_total"); got < 9 {
		t.Errorf("portero_audit_events_written_total moved by %v, want at least 9", got)
	}
	if after.value("portero_build_info") != 1 {
		t.Errorf("portero_build_info = %v, want 1", after.value("portero_build_info"))
	}
	// No label takes an unbounded value: neither the user id nor the
	// request path (only the route's own name) appears in any series.
	for name, fam := range after {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), userID) || strings.Contains(l.GetValue(), "/api/samples/1") || strings.Contains(l.GetValue(), "127.0.0.1") {
					t.Errorf("%s has an unbounded label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}
