package authn

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/proxy"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/sessionstest"
	"github.com/portero/portero/storage/storagetest"
)

// fixedMigration is a MigrationSource with a canned snapshot.
type fixedMigration proxy.MigrationSnapshot

func (f fixedMigration) Migration() proxy.MigrationSnapshot { return proxy.MigrationSnapshot(f) }

// TestMigrationStats: GET /auth/stats/migration is admin only and answers
// the proxy's per-route credential counts for this instance.
func TestMigrationStats(t *testing.T) {
	t.Parallel()
	db := storagetest.NewSQLite(t)
	a := &statsApp{db: db, clock: sessionstest.NewFakeClock(statsT0)}
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
	ring, err := NewKeyring([]byte("migration-test-secret-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := NewSessionTokens(ring, now)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := audit.NewWriter(audit.NewStore(db), audit.WriterConfig{SpoolDir: t.TempDir(), Now: now})
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
	a.svc = NewService(ServiceDeps{Users: a.users, Sessions: store, Hasher: hasher, Lockout: lockout, Tokens: tokens, Audit: writer, Now: now, Log: log},
		ServiceConfig{Registration: "admin", IdleTimeout: time.Hour, AbsoluteTimeout: 12 * time.Hour, Policy: DefaultPasswordPolicy()})
	snap := proxy.MigrationSnapshot{Since: statsT0, Scope: "instance", Routes: []proxy.RouteCredentials{
		{Route: "/api/samples", PorteroSession: 3, LegacyJWT: 1, Total: 4, PorteroShare: 0.75, LegacyShare: 0.25},
	}}
	const cookie = "__Host-portero_session"
	h := NewHandlers(a.svc, NewCredentials(a.svc, cookie, nil), HandlerConfig{CookieName: cookie, CookieSecure: true, Migration: fixedMigration(snap)}, log)
	srv := httptest.NewServer(h.Echo())
	t.Cleanup(srv.Close)
	a.url, a.client = srv.URL, srv.Client()

	ctx := context.Background()
	yes, adminRole := true, 1
	asAdmin := &Principal{Session: sessions.Session{Roles: []string{"admin"}}}
	if _, err := a.svc.Register(ctx, RegisterInput{Email: "admin@example.test", Password: statsPassword, RoleID: &adminRole, IsSuperuser: &yes}, asAdmin, ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.Register(ctx, RegisterInput{Email: "plain@example.test", Password: statsPassword}, asAdmin, ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	admin, plain := a.login(t, "admin@example.test"), a.login(t, "plain@example.test")

	const path = "/auth/stats/migration"
	if status, _ := a.get(t, path, ""); status != http.StatusUnauthorized {
		t.Errorf("without a session: %d", status)
	}
	if status, _ := a.get(t, path, plain); status != http.StatusForbidden {
		t.Errorf("as a plain user: %d", status)
	}
	status, body := a.get(t, path, admin)
	routes, _ := body["routes"].([]any)
	if status != http.StatusOK || body["scope"] != "instance" || len(routes) != 1 {
		t.Fatalf("as admin: %d %v", status, body)
	}
	r := routes[0].(map[string]any)
	if r["route"] != "/api/samples" || r["portero_session"] != 3.0 || r["legacy_jwt"] != 1.0 || r["portero_session_share"] != 0.75 {
		t.Errorf("route counts: %v", r)
	}
}
