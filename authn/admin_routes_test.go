package authn_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/proxy"
)

// modeOf is the mode a kit's router gives a request now.
func (k *adminKit) modeOf(t testing.TB, method, path string) proxy.Mode {
	t.Helper()
	r, err := k.router.Table().Decide(method, path)
	if err != nil {
		t.Fatal(err)
	}
	return r.Mode
}

// TestRoutesAPIAcrossInstances: two instances share one database; a toggle
// made through the admin API of one is in force on the other within 2 s,
// and so is the rollback.
func TestRoutesAPIAcrossInstances(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newAdminKit(t, be, nil)
		b := newAdminKit(t, be, a.db)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); b.toggles.Run(ctx) }()
		t.Cleanup(func() { stop(); wg.Wait() })

		admin := a.newAccount(t, true)
		as := creds{bearer: a.login(t, admin.Email, admin.password)}
		user := creds{bearer: a.login(t, a.newAccount(t, false).Email, e2ePassword)}

		eventually := func(want proxy.Mode) {
			t.Helper()
			start := time.Now()
			for b.modeOf(t, "GET", "/api/samples/7") != want {
				if time.Since(start) > 2*time.Second {
					t.Fatalf("instance b has %s after 2s, want %s", b.modeOf(t, "GET", "/api/samples/7"), want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}

		r := a.do(t, as.on(req{method: "GET", path: "/routes"}))
		var view proxy.RoutesView
		decode(t, r, &view)
		if r.status != http.StatusOK || len(view.Routes) != 3 || view.Routes[0].Name != "/api/samples" || view.Routes[0].Source != "file" || view.Routes[2].Name != "default" {
			t.Fatalf("GET /routes = %v", r)
		}

		// Only admins; only routes the file has; only real modes.
		wantDetail(t, a.do(t, user.on(req{method: "PUT", path: "/routes/api/samples/mode", json: map[string]string{"mode": "legacy"}})), http.StatusForbidden, "FORBIDDEN")
		wantDetail(t, a.do(t, user.on(req{method: "GET", path: "/routes"})), http.StatusForbidden, "FORBIDDEN")
		wantDetail(t, a.do(t, as.on(req{method: "PUT", path: "/routes/api/unknown/mode", json: map[string]string{"mode": "legacy"}})), http.StatusNotFound, "ROUTE_NOT_FOUND")
		wantValidation(t, a.do(t, as.on(req{method: "PUT", path: "/routes/api/samples/mode", json: map[string]string{"mode": "off"}})), "mode")
		wantValidation(t, a.do(t, as.on(req{method: "PUT", path: "/routes/api/samples/mode", json: map[string]string{}})), "mode")
		wantDetail(t, a.do(t, as.on(req{method: "PUT", path: "/routes/api/samples", json: map[string]string{"mode": "legacy"}})), http.StatusNotFound, "NOT_FOUND")

		// Flip: in force on a at once, on b within the bound.
		r = a.do(t, as.on(req{method: "PUT", path: "/routes/api/samples/mode", json: map[string]string{"mode": "legacy"}}))
		var changed struct {
			Changed []proxy.ModeChange `json:"changed"`
			Table   proxy.RoutesView   `json:"table"`
		}
		decode(t, r, &changed)
		if r.status != http.StatusOK || len(changed.Changed) != 1 || changed.Changed[0] != (proxy.ModeChange{Route: "/api/samples", Old: "gateway", New: "legacy"}) {
			t.Fatalf("PUT mode = %v", r)
		}
		if changed.Table.Routes[0].Source != "override" || changed.Table.Routes[0].Override.By != admin.Email {
			t.Fatalf("table after PUT = %+v", changed.Table.Routes[0])
		}
		if m := a.modeOf(t, "GET", "/api/samples/7"); m != proxy.ModeLegacy {
			t.Fatalf("a has %s right after the PUT", m)
		}
		eventually(proxy.ModeLegacy)

		// The escaped form names the same route; DELETE rolls it back.
		if r := a.do(t, as.on(req{method: "PUT", path: "/routes/%2Fapi%2Fsamples/mode", json: map[string]string{"mode": "dual"}})); r.status != http.StatusOK {
			t.Fatalf("PUT escaped: %v", r)
		}
		eventually(proxy.ModeDual)
		if r := a.do(t, as.on(req{method: "DELETE", path: "/routes/api/samples/mode"})); r.status != http.StatusOK {
			t.Fatalf("DELETE mode: %v", r)
		}
		eventually(proxy.ModeGateway)

		// Reset: the one-step rollback of everything.
		for _, p := range []string{"/routes/default/mode", "/routes/api/samples/mode", "/routes/api/x%20GET/mode"} {
			if r := a.do(t, as.on(req{method: "PUT", path: p, json: map[string]string{"mode": "legacy"}})); r.status != http.StatusOK {
				t.Fatalf("PUT %s: %v", p, r)
			}
		}
		eventually(proxy.ModeLegacy)
		r = a.do(t, as.on(req{method: "POST", path: "/routes/reset"}))
		decode(t, r, &changed)
		if r.status != http.StatusOK || len(changed.Changed) != 3 {
			t.Fatalf("POST /routes/reset = %v", r)
		}
		eventually(proxy.ModeGateway)
		if m := b.modeOf(t, "GET", "/anything"); m != proxy.ModeLegacy {
			t.Fatalf("b's default after reset: %s", m)
		}

		// Each change is audited with the acting admin, old and new.
		rows := a.auditRows(t, audit.Filter{Action: audit.ActionRouteModeChanged}, rowsExactly(9))
		if len(rows) != 9 {
			t.Fatalf("%d route.mode.changed rows, want 9", len(rows))
		}
		oldest := rows[len(rows)-1]
		if oldest.UserID != admin.ID || oldest.Details["by"] != admin.ID || oldest.Details["by_email"] != admin.Email ||
			oldest.Details["old"] != "gateway" || oldest.Details["new"] != "legacy" || oldest.ResourceID != "/api/samples" || oldest.Details["request_id"] == nil {
			t.Fatalf("first route row = %+v", oldest)
		}
	})
}
