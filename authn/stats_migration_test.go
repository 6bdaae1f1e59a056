package authn

import (
	"context"
	"net/http"
	"testing"

	"github.com/portero/portero/proxy"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/storage/storagetest"
)

// fixedMigration is a MigrationSource with a canned snapshot.
type fixedMigration proxy.MigrationSnapshot

func (f fixedMigration) Migration() proxy.MigrationSnapshot { return proxy.MigrationSnapshot(f) }

// TestMigrationStats: GET /auth/stats/migration is admin only and answers
// the proxy's per-route credential counts for this instance.
func TestMigrationStats(t *testing.T) {
	t.Parallel()
	snap := proxy.MigrationSnapshot{Since: statsT0, Scope: "instance", Routes: []proxy.RouteCredentials{
		{Route: "/api/samples", PorteroSession: 3, LegacyJWT: 1, Total: 4, PorteroShare: 0.75, LegacyShare: 0.25},
	}}
	a := newStatsApp(t, storagetest.NewSQLite(t), func(c *HandlerConfig) { c.Migration = fixedMigration(snap) })
	asAdmin := &Principal{Session: sessions.Session{Roles: []string{"admin"}}}
	if _, err := a.svc.Register(context.Background(), RegisterInput{Email: "plain@example.test", Password: statsPassword}, asAdmin, ClientMeta{}); err != nil {
		t.Fatal(err)
	}
	admin, plain := a.admin, a.login(t, "plain@example.test")

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
