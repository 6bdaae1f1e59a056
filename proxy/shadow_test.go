package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/configs"
)

// cookieAuth is a fake Authenticator: the "sess" cookie names the role of
// the session ("down" is a store outage); it records every slide flag.
type cookieAuth struct {
	mu     sync.Mutex
	slides []bool
}

func (a *cookieAuth) Session(_ context.Context, r *http.Request, slide bool) (Identity, error) {
	a.mu.Lock()
	a.slides = append(a.slides, slide)
	a.mu.Unlock()
	c, err := r.Cookie("sess")
	if err != nil {
		return Identity{}, ErrNoCredentials
	}
	switch c.Value {
	case "down":
		return Identity{}, ErrAuthUnavailable
	case "dead":
		return Identity{}, ErrInvalidCredentials
	}
	return Identity{UserID: "u-" + c.Value, Email: c.Value + "@example.com", Roles: []string{c.Value}, Via: "cookie"}, nil
}

func (a *cookieAuth) Legacy(context.Context, *http.Request) (Identity, error) {
	return Identity{}, ErrNoCredentials
}

func (a *cookieAuth) slid() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.slides {
		if s {
			return true
		}
	}
	return false
}

// memAuditor keeps every queued event.
type memAuditor struct {
	mu     sync.Mutex
	events []audit.Event
}

func (m *memAuditor) Enqueue(ev audit.Event) error {
	if ev.Details == nil && ev.Access != nil {
		ev.Details = ev.Access.Map() // as stored
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, ev)
	return nil
}

func (m *memAuditor) Healthy() error { return nil }

func (m *memAuditor) byAction(action string) []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []audit.Event
	for _, ev := range m.events {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

type shadowRig struct {
	url      string
	auth     *cookieAuth
	audit    *memAuditor
	metrics  *Metrics
	progress *Progress
}

func newShadowRig(t testing.TB, routes []configs.Route) *shadowRig {
	t.Helper()
	up := httptest.NewServer(echoUpstream())
	t.Cleanup(up.Close)
	u, err := url.Parse(up.URL)
	if err != nil {
		t.Fatal(err)
	}
	log := zap.NewNop()
	names := IdentityHeaders{UserID: "X-Auth-User-Id", Email: "X-Auth-User-Email", Roles: "X-Auth-User-Roles", LegacyID: "X-Auth-Legacy-User-Id", Assertion: "X-Auth-Assertion"}
	strip := NewHeaderStripper(names.UserID, names.Email, names.Roles, names.LegacyID, names.Assertion)
	fwd, err := NewForwarder(ForwarderOptions{
		Upstream: u, DialTimeout: time.Second, ResponseTimeout: 5 * time.Second, IdleConnTimeout: time.Minute, Headers: names,
	}, strip, log, ErrorResponder(log))
	if err != nil {
		t.Fatal(err)
	}
	table, err := NewTable("legacy", routes)
	if err != nil {
		t.Fatal(err)
	}
	rig := &shadowRig{auth: &cookieAuth{}, audit: &memAuditor{}, metrics: NewMetrics(prometheus.NewRegistry()), progress: NewProgress(time.Now())}
	router := NewRouter(table, rig.auth, nil, rig.audit, fwd, RouterOptions{
		Metrics: rig.metrics, Progress: rig.progress, SessionCookie: "sess",
		OwnToken: func(tok string) bool { return strings.HasPrefix(tok, "portero.") },
	}, log)
	front := NewFront(FrontOptions{Health: NewHealth(time.Second), Forward: router, IPs: NewIPResolver(nil), Log: log, Metrics: rig.metrics})
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	rig.url = srv.URL
	return rig
}

func (rig *shadowRig) get(t testing.TB, path, cookie string, hdr map[string]string) (int, seen) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rig.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "sess", Value: cookie})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, decodeSeen(t, res)
}

// TestShadowRoute: a shadow route forwards every request as legacy does,
// with no identity headers, while counting and auditing what gateway mode
// would have decided, without sliding the session.
func TestShadowRoute(t *testing.T) {
	t.Parallel()
	rig := newShadowRig(t, []configs.Route{{Path: "/api/samples", Mode: "shadow", Roles: []string{"analyst"}}})
	cases := []struct {
		name, cookie, decision string
		denied                 bool
	}{
		{"no session", "", "no_credentials", true},
		{"dead session", "dead", "invalid_credentials", true},
		{"wrong role", "viewer", "role", true},
		{"store down", "down", "auth_unavailable", true},
		{"right role", "analyst", "allow", false},
	}
	for _, tc := range cases {
		before := len(rig.audit.byAction(ActionShadowDenied))
		status, s := rig.get(t, "/api/samples/1", tc.cookie, map[string]string{"X-Auth-User-Id": "forged", "X_Auth_User_Roles": "admin"})
		if status != http.StatusOK {
			t.Errorf("%s: status %d, want 200 (shadow never refuses)", tc.name, status)
		}
		for h := range s.Headers {
			if strings.HasPrefix(HeaderKeyForTest(h), "x-auth-") {
				t.Errorf("%s: upstream received identity header %s", tc.name, h)
			}
		}
		if got := counterValue(t, rig.metrics.shadow.WithLabelValues("/api/samples", tc.decision)); got != 1 {
			t.Errorf("%s: portero_shadow_decisions_total{decision=%q} = %v, want 1", tc.name, tc.decision, got)
		}
		evs := rig.audit.byAction(ActionShadowDenied)
		switch {
		case tc.denied && len(evs) != before+1:
			t.Errorf("%s: %d shadow denials audited, want %d", tc.name, len(evs), before+1)
		case tc.denied && evs[len(evs)-1].Details["reason"] != tc.decision:
			t.Errorf("%s: audited reason %v, want %s", tc.name, evs[len(evs)-1].Details["reason"], tc.decision)
		case !tc.denied && len(evs) != before:
			t.Errorf("%s: an allowed request was audited as a shadow denial", tc.name)
		}
	}
	if rig.auth.slid() {
		t.Error("a shadow rehearsal slid the session")
	}
	if n := len(rig.audit.byAction(audit.ActionProxyDenied)); n != 0 {
		t.Errorf("%d real denials audited on a shadow route", n)
	}
}

// TestShadowDenialsCannotFloodTheTrail: anonymous would-be denials are
// audited as one summary row per route and reason per minute (the metric
// counts each), while denials of known users are audited one by one.
func TestShadowDenialsCannotFloodTheTrail(t *testing.T) {
	t.Parallel()
	rig := newShadowRig(t, []configs.Route{{Path: "/api/samples", Mode: "shadow", Roles: []string{"analyst"}}})
	for range 40 {
		rig.get(t, "/api/samples/1", "", nil)
		rig.get(t, "/api/samples/1", "viewer", nil)
	}
	var anonymous, known int
	for _, ev := range rig.audit.byAction(ActionShadowDenied) {
		switch ev.Details["reason"] {
		case "no_credentials":
			anonymous++
			if ev.Details["summary"] != true || ev.Details["count"] != 1 {
				t.Errorf("the first anonymous denial's row: %v, want summary with count 1", ev.Details)
			}
		case "role":
			known++
		}
	}
	if anonymous != 1 || known != 40 {
		t.Errorf("audited %d anonymous and %d known-user would-be denials, want 1 and 40", anonymous, known)
	}
	if got := counterValue(t, rig.metrics.shadow.WithLabelValues("/api/samples", "no_credentials")); got != 40 {
		t.Errorf("portero_shadow_decisions_total{decision=no_credentials} = %v, want 40", got)
	}
}

// HeaderKeyForTest is configs.HeaderKey: '_' read as '-', lower case.
func HeaderKeyForTest(h string) string { return configs.HeaderKey(h) }

// TestMigrationProgress: requests are counted per route by the credential
// kind they arrived with, in the metric and in the instance's snapshot.
func TestMigrationProgress(t *testing.T) {
	t.Parallel()
	rig := newShadowRig(t, []configs.Route{
		{Path: "/legacy", Mode: "legacy"},
		{Path: "/shadow", Mode: "shadow"},
	})
	rig.get(t, "/legacy/a", "", nil)
	rig.get(t, "/legacy/a", "", map[string]string{"Authorization": "Bearer legacy.jwt"})
	rig.get(t, "/legacy/a", "", map[string]string{"Authorization": "Bearer portero.jwt"})
	rig.get(t, "/legacy/a", "anyone", nil)
	rig.get(t, "/shadow", "analyst", nil)
	rig.get(t, "/other", "", nil)
	want := map[[2]string]float64{
		{"/legacy", CredentialNone}: 1, {"/legacy", CredentialLegacy}: 1, {"/legacy", CredentialPortero}: 2,
		{"/shadow", CredentialPortero}: 1, {"default", CredentialNone}: 1,
	}
	for k, n := range want {
		if got := counterValue(t, rig.metrics.credentials.WithLabelValues(k[0], k[1])); got != n {
			t.Errorf("portero_route_credentials_total%v = %v, want %v", k, got, n)
		}
	}
	snap := rig.progress.Migration()
	if len(snap.Routes) != 3 || snap.Routes[0].Route != "/legacy" {
		t.Fatalf("snapshot routes = %+v", snap.Routes)
	}
	lg := snap.Routes[0]
	if lg.Total != 4 || lg.PorteroSession != 2 || lg.LegacyJWT != 1 || lg.None != 1 || lg.PorteroShare != 0.5 {
		t.Errorf("/legacy counts = %+v", lg)
	}
}

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestShadowTallySummarisesPerMinute(t *testing.T) {
	t.Parallel()
	var tally shadowTally
	t0 := time.Now()
	for _, step := range []struct {
		at   time.Duration
		key  string
		want int
	}{
		{0, "r no_credentials", 1},
		{10 * time.Second, "r no_credentials", 0},
		{0, "r invalid_credentials", 1}, // its own key
		{30 * time.Second, "r no_credentials", 0},
		{shadowSummaryEvery + time.Second, "r no_credentials", 3},
		{shadowSummaryEvery + 2*time.Second, "r no_credentials", 0},
	} {
		if got := tally.add(step.key, t0.Add(step.at)); got != step.want {
			t.Fatalf("add(%q) at +%v = %d, want %d", step.key, step.at, got, step.want)
		}
	}
}
