package authn

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/sessionstest"
	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// statsT0 is when the stats tests' admin signs in; the clock then moves on
// a minute, to statsNow, where every window ends.
var (
	statsT0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	statsNow = statsT0.Add(time.Minute)
)

const statsPassword = "Qu1et-Harbor-Lamp!"

// statsApp is the own endpoints with the dashboard configured, on db, with
// every clock a fake one.
type statsApp struct {
	url    string
	client *http.Client
	db     *storage.DB
	users  UserStore
	audit  audit.Store
	clock  *sessionstest.FakeClock
	svc    *Service
	admin  string // bearer token
}

func newStatsApp(t *testing.T, db *storage.DB, configure ...func(*HandlerConfig)) *statsApp {
	t.Helper()
	a := &statsApp{db: db, clock: sessionstest.NewFakeClock(statsT0), audit: audit.NewStore(db)}
	now := a.clock.Now
	a.users = NewUserStore(db, WithUserStoreClock(now))
	store, err := sessions.NewMemoryStore(time.Hour, 12*time.Hour, sessions.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	counters, err := sessions.NewMemoryCounters(sessions.WithCounterClock(now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close(context.Background()); _ = counters.Close(context.Background()) })
	lockout, err := NewLockout(counters, LockoutPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := NewHasher(Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 0, 64, DefaultHasherMaxWait)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := NewKeyring([]byte("stats-test-secret-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := NewSessionTokens(ring, now)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := audit.NewWriter(a.audit, audit.WriterConfig{SpoolDir: t.TempDir(), Now: now})
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
	log := zap.NewNop()
	a.svc = NewService(ServiceDeps{Users: a.users, Sessions: store, Hasher: hasher, Lockout: lockout,
		Tokens: tokens, Audit: writer, Now: now, Log: log},
		ServiceConfig{Registration: "admin", IdleTimeout: time.Hour, AbsoluteTimeout: 12 * time.Hour, Policy: DefaultPasswordPolicy()})
	const cookie = "__Host-portero_session"
	cfg := HandlerConfig{
		CookieName: cookie, CookieSecure: true,
		Stats:      NewStats(db, a.users, audit.NewStatsReader(db), now),
		AuditQuery: audit.NewQueryHandler(a.audit, audit.HandlerConfig{Logger: log}),
	}
	for _, c := range configure {
		c(&cfg)
	}
	h := NewHandlers(a.svc, NewCredentials(a.svc, cookie, nil), cfg, log)
	srv := httptest.NewServer(h.Echo())
	t.Cleanup(srv.Close)
	a.url, a.client = srv.URL, srv.Client()

	ctx := context.Background()
	yes, adminRole := true, 1
	admin, err := a.svc.Register(ctx, RegisterInput{Email: "admin@example.test", Password: statsPassword, RoleID: &adminRole, IsSuperuser: &yes},
		&Principal{Session: sessions.Session{Roles: []string{"admin"}}}, ClientMeta{})
	if err != nil {
		t.Fatal(err)
	}
	a.admin = a.login(t, admin.Email)
	a.clock.Advance(statsNow.Sub(statsT0))
	return a
}

func (a *statsApp) login(t *testing.T, email string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": email, "password": statsPassword})
	res, err := a.client.Post(a.url+"/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("login %s: %d %v", email, res.StatusCode, err)
	}
	return out.AccessToken
}

// get fetches path with bearer ("" for none) and decodes a JSON object.
func (a *statsApp) get(t *testing.T, path, bearer string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.url+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	if res.StatusCode == http.StatusOK && res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET %s: Cache-Control %q", path, res.Header.Get("Cache-Control"))
	}
	return res.StatusCode, m
}

func (a *statsApp) user(t *testing.T, email string) User {
	t.Helper()
	u, err := a.users.CreateUser(context.Background(), User{Email: email, HashedPassword: "x"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// seed stores the fixture every stats test counts (times relative to
// statsNow; the admin signed in at statsT0, a minute before).
func (a *statsApp) seed(t *testing.T) (u1, u4, u6 User) {
	t.Helper()
	ctx := context.Background()
	ago := func(d time.Duration) time.Time { return statsNow.Add(-d) }
	u1 = a.user(t, "u1@example.test")
	u2 := a.user(t, "u2@example.test")
	u3 := a.user(t, "u3@example.test")
	u4 = a.user(t, "u4@example.test")
	u5 := a.user(t, "u5@example.test")
	u6 = a.user(t, "u6@example.test")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.users.RecordLoginSuccess(ctx, u1.ID, ago(90*time.Minute)))
	must(a.users.RecordLoginSuccess(ctx, u2.ID, ago(48*time.Hour)))
	for _, l := range []struct {
		u        User
		attempts int
		until    time.Time
	}{{u4, 5, statsNow.Add(10 * time.Minute)}, {u5, 5, ago(time.Minute)}, {u6, 6, statsNow.Add(20 * time.Minute)}} {
		must(a.users.RecordLoginFailure(ctx, l.u.ID, l.attempts, &l.until))
	}
	for _, s := range []struct {
		user            User
		created         time.Time
		lasts           time.Duration // 0: not ended
		reason, expires string
	}{
		{u1, ago(3 * time.Hour), time.Hour, "logout", ""},
		{u1, ago(5 * time.Hour), 10 * time.Second, "revoked", ""},
		{u2, ago(10 * time.Hour), 100 * time.Second, "logout", ""},
		{u2, ago(48 * time.Hour), 50 * time.Second, "logout", ""}, // outside the day
		{u3, ago(time.Hour), 0, "", ""},                           // open
		{u3, ago(20 * time.Hour), 0, "", "expired"},               // never ended, past its expiry
		{u1, ago(30 * time.Minute), 1500 * time.Millisecond, "logout", ""},
	} {
		id := uuid.NewString()
		exp := s.created.Add(12 * time.Hour)
		if s.expires == "expired" {
			exp = ago(8 * time.Hour)
		}
		must(a.users.RecordSessionStart(ctx, SessionRecord{ID: id, UserID: s.user.ID, CreatedAt: s.created, ExpiresAt: exp}))
		if s.lasts > 0 {
			_, err := a.users.RecordSessionEnd(ctx, id, s.created.Add(s.lasts), s.reason)
			must(err)
		}
	}
	ev := func(d time.Duration, action, ip, reason string) audit.Event {
		e := audit.Event{ID: uuid.NewString(), Action: action, IP: ip, CreatedAt: ago(d)}
		if reason != "" {
			e.Details = map[string]any{"reason": reason}
		}
		return e
	}
	must(a.audit.Insert(ctx, []audit.Event{
		ev(2*time.Hour, audit.ActionLoginSucceeded, "192.0.2.9", ""),
		ev(25*time.Hour, audit.ActionLoginSucceeded, "192.0.2.9", ""),
		ev(time.Hour, audit.ActionLoginFailed, "192.0.2.1", "bad_password"),
		ev(50*time.Minute, audit.ActionLoginFailed, "192.0.2.1", "bad_password"),
		ev(45*time.Minute, audit.ActionLoginFailed, "192.0.2.1", "bad_password"),
		ev(44*time.Minute, audit.ActionLoginFailed, "192.0.2.2", "unknown_user"),
		ev(43*time.Minute, audit.ActionLoginFailed, "192.0.2.1", "locked"),
		ev(30*time.Hour, audit.ActionLoginFailed, "192.0.2.3", "bad_password"),
		ev(50*time.Minute, audit.ActionAccountLocked, "192.0.2.1", ""),
		ev(40*time.Minute, audit.ActionAccountLocked, "192.0.2.1", ""),
		ev(26*time.Hour, audit.ActionAccountLocked, "192.0.2.1", ""),
	}))
	return u1, u4, u6
}

// jsonOf round-trips v through JSON, to compare with a decoded answer.
func statsJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStatsEndpoints(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		a := newStatsApp(t, db)
		_, u4, u6 := a.seed(t)
		day := map[string]any{"window": "1d", "since": statsNow.Add(-24 * time.Hour).Format(time.RFC3339), "until": statsNow.Format(time.RFC3339)}
		with := func(m map[string]any) map[string]any {
			out := statsJSON(t, day)
			for k, v := range statsJSON(t, m) {
				out[k] = v
			}
			return out
		}
		cases := []struct {
			path string
			want map[string]any
		}{
			{"/auth/stats/active-users", with(map[string]any{
				// admin (signed in a minute ago) and u1; u2 signed in two days ago.
				"active_users": 2, "total_users": 7,
				// the admin's session and u3's; the others ended or expired.
				"open_sessions": 2, "users_with_open_sessions": 2,
			})},
			{"/auth/stats/login-attempts", with(map[string]any{
				"succeeded": 2, "failed": 5, "total": 7, "failure_rate": 0.7143, "lockouts": 2,
				"failures_by_reason": map[string]any{"bad_password": 3, "unknown_user": 1, "locked": 1},
				"top_failing_ips":    []any{map[string]any{"ip": "192.0.2.1", "failures": 4}, map[string]any{"ip": "192.0.2.2", "failures": 1}},
			})},
			{"/auth/stats/locked-accounts", with(map[string]any{
				"locked": 2, "lockouts": 2,
				"accounts": []any{
					map[string]any{"id": u6.ID, "email": u6.Email, "locked_until": statsNow.Add(20 * time.Minute).Format(time.RFC3339), "login_attempts": 6},
					map[string]any{"id": u4.ID, "email": u4.Email, "locked_until": statsNow.Add(10 * time.Minute).Format(time.RFC3339), "login_attempts": 5},
				},
			})},
			{"/auth/stats/sessions", with(map[string]any{
				// the admin's, and six of the seven seeded.
				"started": 7, "ended": 4, "ended_by_reason": map[string]any{"logout": 3, "revoked": 1},
				"open": 2, "open_users": 2,
				// 1.5s, 10s, 100s, 3600s: nearest rank 2, 4, 4.
				"duration_seconds": map[string]any{"p50": 10, "p90": 3600, "p99": 3600},
			})},
			{"/auth/stats/active-users?window=1h", map[string]any{
				"window": "1h", "since": statsNow.Add(-time.Hour).Format(time.RFC3339), "until": statsNow.Format(time.RFC3339),
				"active_users": 1, "total_users": 7, "open_sessions": 2, "users_with_open_sessions": 2,
			}},
			{"/auth/stats/active-users?window=7d", map[string]any{
				"window": "7d", "since": statsNow.Add(-7 * 24 * time.Hour).Format(time.RFC3339), "until": statsNow.Format(time.RFC3339),
				"active_users": 3, "total_users": 7, "open_sessions": 2, "users_with_open_sessions": 2,
			}},
			{"/auth/stats/login-attempts?window=30m", map[string]any{
				"window": "30m", "since": statsNow.Add(-30 * time.Minute).Format(time.RFC3339), "until": statsNow.Format(time.RFC3339),
				"succeeded": 1, "failed": 0, "total": 1, "failure_rate": 0, "lockouts": 0,
				"failures_by_reason": map[string]any{}, "top_failing_ips": []any{},
			}},
			{"/auth/stats/sessions?window=2h", map[string]any{
				"window": "2h", "since": statsNow.Add(-2 * time.Hour).Format(time.RFC3339), "until": statsNow.Format(time.RFC3339),
				"started": 3, "ended": 1, "ended_by_reason": map[string]any{"logout": 1},
				"open": 2, "open_users": 2,
				"duration_seconds": map[string]any{"p50": 1.5, "p90": 1.5, "p99": 1.5},
			}},
			{"/auth/stats/sessions?window=90s", map[string]any{
				"window": "1m30s", "since": statsNow.Add(-90 * time.Second).Format(time.RFC3339), "until": statsNow.Format(time.RFC3339),
				"started": 1, "ended": 0, "ended_by_reason": map[string]any{},
				"open": 2, "open_users": 2,
				"duration_seconds": map[string]any{"p50": nil, "p90": nil, "p99": nil},
			}},
		}
		for _, tc := range cases {
			status, got := a.get(t, tc.path, a.admin)
			if status != http.StatusOK {
				t.Errorf("GET %s: %d %v", tc.path, status, got)
				continue
			}
			if want := statsJSON(t, tc.want); !reflect.DeepEqual(got, want) {
				t.Errorf("GET %s:\n got %v\nwant %v", tc.path, got, want)
			}
		}
	})
}

func TestStatsEndpointsRefuse(t *testing.T) {
	t.Parallel()
	a := newStatsApp(t, storagetest.NewSQLite(t))
	ctx := context.Background()
	if _, err := a.svc.Register(ctx, RegisterInput{Email: "plain@example.test", Password: statsPassword},
		&Principal{Session: sessions.Session{Roles: []string{"admin"}}}, ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	plain := a.login(t, "plain@example.test")
	paths := []string{"/auth/stats/active-users", "/auth/stats/login-attempts", "/auth/stats/locked-accounts", "/auth/stats/sessions", "/audit"}
	for _, p := range paths {
		if status, body := a.get(t, p, ""); status != http.StatusUnauthorized {
			t.Errorf("GET %s without a session: %d %v", p, status, body)
		}
		if status, body := a.get(t, p, plain); status != http.StatusForbidden || body["detail"] != "FORBIDDEN" {
			t.Errorf("GET %s as a plain user: %d %v", p, status, body)
		}
		if status, body := a.get(t, p, a.admin); status != http.StatusOK {
			t.Errorf("GET %s as admin: %d %v", p, status, body)
		}
	}
	for _, w := range []string{"0", "0s", "-1h", "91d", "2161h", "1y", "7.5d", "d", "1e3h", "99999999999999999999d", "24h&window=1h"} {
		for _, p := range paths[:4] {
			status, body := a.get(t, p+"?window="+w, a.admin)
			if w == "24h&window=1h" { // the first of repeated parameters counts
				if status != http.StatusOK {
					t.Errorf("GET %s?window=%s: %d", p, w, status)
				}
				continue
			}
			detail, _ := body["detail"].([]any)
			if status != http.StatusUnprocessableEntity || len(detail) != 1 ||
				!reflect.DeepEqual(detail[0].(map[string]any)["loc"], []any{"query", "window"}) {
				t.Errorf("GET %s?window=%s: %d %v", p, w, status, body)
			}
		}
	}
	// GET /audit answers refused parameters in the same 422 shape.
	status, body := a.get(t, "/audit?limit=5000&user_id=nope", a.admin)
	detail, _ := body["detail"].([]any)
	if status != http.StatusUnprocessableEntity || len(detail) != 2 {
		t.Fatalf("GET /audit with bad parameters: %d %v", status, body)
	}
	for i, param := range []string{"user_id", "limit"} {
		d := detail[i].(map[string]any)
		if !reflect.DeepEqual(d["loc"], []any{"query", param}) || d["msg"] == "" || d["type"] == "" {
			t.Errorf("issue %d: %v", i, d)
		}
	}
	// And it lists the admin's own sign-in, newest first.
	status, body = a.get(t, "/audit?action=auth.login&limit=1", a.admin)
	items, _ := body["items"].([]any)
	if status != http.StatusOK || len(items) != 1 || items[0].(map[string]any)["action"] != audit.ActionLoginSucceeded {
		t.Errorf("GET /audit?action=auth.login: %d %v", status, body)
	}
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		text string
	}{
		{"", 24 * time.Hour, "1d"},
		{"1h", time.Hour, "1h"},
		{"24h", 24 * time.Hour, "1d"},
		{"7d", 7 * 24 * time.Hour, "7d"},
		{"90d", 90 * 24 * time.Hour, "90d"},
		{"2160h", 90 * 24 * time.Hour, "90d"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"36h", 36 * time.Hour, "36h"},
		{"1h0m30s", time.Hour + 30*time.Second, "1h0m30s"},
		{"1500ms", 1500 * time.Millisecond, "1.5s"},
		{"10m", 10 * time.Minute, "10m"},
	} {
		got, err := parseWindow(tc.in)
		if err != nil || got != tc.want || formatWindow(got) != tc.text {
			t.Errorf("parseWindow(%q) = %v, %v (%q); want %v (%q)", tc.in, got, err, formatWindow(got), tc.want, tc.text)
		}
	}
	for _, in := range []string{"0", "0d", "-1h", "-1d", "91d", "2161h", "1y", "7.5d", "d", "+1d", " 1h", "1h ", "99999999999999999999d", strings.Repeat("1", 40) + "h"} {
		if got, err := parseWindow(in); err == nil {
			t.Errorf("parseWindow(%q) = %v, want an error", in, got)
		}
	}
}

// FuzzParseWindow: whatever ?window= holds, the answer is an error or a
// window in (0, MaxStatsWindow] whose short form reads back the same.
func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"", "1h", "7d", "90d", "91d", "1h30m", "-1h", "0", "1.5h", "d", "1e9d", "18446744073709551616d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseWindow(s)
		if err != nil {
			return
		}
		if d <= 0 || d > MaxStatsWindow {
			t.Fatalf("parseWindow(%q) = %v, outside (0, 90d]", s, d)
		}
		back, err := parseWindow(formatWindow(d))
		if err != nil || back != d {
			t.Fatalf("parseWindow(%q) = %v, written %q, read back %v, %v", s, d, formatWindow(d), back, err)
		}
	})
}

// TestSessionStatsPercentiles: both backends pick the same nearest-rank
// durations for every count of sessions from 1 to 25.
func TestSessionStatsPercentiles(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		users := NewUserStore(db)
		stats := NewStats(db, users, nil, nil)
		for n := 1; n <= 25; n++ {
			u, err := users.CreateUser(ctx, User{Email: uuid.NewString() + "@example.test", HashedPassword: "x"})
			if err != nil {
				t.Fatal(err)
			}
			// Each n has its own day; durations n, n-1, …, 1 seconds, stored
			// in an order unlike their sorted one.
			day := statsT0.AddDate(0, 0, n)
			for i := range n {
				id := uuid.NewString()
				created := day.Add(time.Duration(i) * time.Minute)
				if err := users.RecordSessionStart(ctx, SessionRecord{ID: id, UserID: u.ID, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				if _, err := users.RecordSessionEnd(ctx, id, created.Add(time.Duration(n-i)*time.Second), "logout"); err != nil {
					t.Fatal(err)
				}
			}
			st, err := stats.SessionStats(ctx, day, day.Add(24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			rank := func(p int) time.Duration { return time.Duration((n*p+99)/100) * time.Second } // ceil(n*p/100)
			if st.Started != int64(n) || st.Ended != int64(n) || st.P50 == nil || st.P90 == nil || st.P99 == nil ||
				*st.P50 != rank(50) || *st.P90 != rank(90) || *st.P99 != rank(99) {
				t.Errorf("n=%d: %+v (p50 %v p90 %v p99 %v), want %v %v %v", n, st, statsDeref(st.P50), statsDeref(st.P90), statsDeref(st.P99), rank(50), rank(90), rank(99))
			}
		}
	})
}

func statsDeref(d *time.Duration) any {
	if d == nil {
		return nil
	}
	return *d
}
