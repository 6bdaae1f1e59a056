package authn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/authn"
	"github.com/portero/portero/configs"
	"github.com/portero/portero/proxy"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/storage"
)

// adminKit is an e2eApp whose service, session store and route toggles the
// test can reach, for what the HTTP answers alone do not show (a role
// change rewriting live sessions, an import followed by logins).
type adminKit struct {
	*e2eApp
	svc      *authn.Service
	sessions sessions.Store
	writer   *audit.Writer
	router   *proxy.Router
	toggles  *proxy.Toggles
}

// adminRouteTable is the file's route table of the kits.
func adminRouteTable(t testing.TB) *proxy.Table {
	t.Helper()
	tbl, err := proxy.NewTable("legacy", []configs.Route{
		{Path: "/api/samples", Mode: "gateway"},
		{Path: "/api/x", Methods: []string{"GET"}, Mode: "public"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// newAdminKit wires an app as newE2EApp does (real clock), on db when
// given (several kits sharing one database are several instances).
func newAdminKit(t testing.TB, be backend, db *storage.DB) *adminKit {
	t.Helper()
	if db == nil {
		db = be.db(t)
	}
	a := &e2eApp{be: be, db: db}
	a.users = authn.NewUserStore(db)
	a.audit = audit.NewStore(db)
	k := &adminKit{e2eApp: a}
	var counters sessions.CounterStore
	var err error
	if be.redis {
		a.rdb, a.prefix = testRedis(t)
		if k.sessions, err = sessions.NewRedisStore(a.rdb, time.Hour, 12*time.Hour, sessions.WithKeyPrefix(a.prefix+"sess:")); err != nil {
			t.Fatal(err)
		}
		if counters, err = sessions.NewRedisCounters(a.rdb, sessions.WithCounterKeyPrefix(a.prefix+"cnt:")); err != nil {
			t.Fatal(err)
		}
	} else {
		if k.sessions, err = sessions.NewMemoryStore(time.Hour, 12*time.Hour); err != nil {
			t.Fatal(err)
		}
		if counters, err = sessions.NewMemoryCounters(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = k.sessions.Close(context.Background())
		_ = counters.Close(context.Background())
	})
	lockout, err := authn.NewLockout(counters, authn.LockoutPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	if a.hasher, err = authn.NewHasher(cheapArgon2, 0, 64, authn.DefaultHasherMaxWait); err != nil {
		t.Fatal(err)
	}
	ring, err := authn.NewKeyring([]byte(e2eSecret))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := authn.NewSessionTokens(ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.writer, err = audit.NewWriter(a.audit, audit.WriterConfig{SpoolDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := k.writer.Close(ctx); err != nil {
			t.Errorf("audit writer close: %v", err)
		}
	})
	log := zap.NewNop()
	k.svc = authn.NewService(authn.ServiceDeps{
		Users: a.users, Sessions: k.sessions, Hasher: a.hasher, Lockout: lockout, Tokens: tokens, Audit: k.writer, Log: log,
	}, authn.ServiceConfig{Registration: "admin", IdleTimeout: time.Hour, AbsoluteTimeout: 12 * time.Hour, Policy: authn.DefaultPasswordPolicy()})

	k.router = proxy.NewRouter(adminRouteTable(t), nil, nil, nil, http.NotFoundHandler(), proxy.RouterOptions{}, log)
	k.toggles = proxy.NewToggles(k.router.Table(), k.router.Swap, proxy.NewOverrideStore(db), k.writer, log, proxy.TogglesOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := k.toggles.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	creds := authn.NewCredentials(k.svc, e2eCookie, nil)
	own := authn.NewHandlers(k.svc, creds, authn.HandlerConfig{CookieName: e2eCookie, CookieSecure: true, Routes: k.toggles}, log).Echo()
	front := proxy.NewFront(proxy.FrontOptions{
		Own:         own,
		OwnPrefixes: []string{"/auth", "/users", "/roles", "/routes"},
		Health:      http.NotFoundHandler(),
		Forward:     k.router,
		IPs:         proxy.NewIPResolver([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}),
		Log:         log,
	})
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	a.url, a.client = srv.URL, srv.Client()
	a.client.Timeout = 30 * time.Second
	return k
}

// userListPage is GET /users's answer.
type userListPage struct {
	Items []struct {
		ID       string `json:"id"`
		Email    string `json:"email"`
		RoleID   int    `json:"role_id"`
		IsActive bool   `json:"is_active"`
	} `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func TestAdminUsersAPI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		k := newAdminKit(t, be, nil)
		admin := k.newAccount(t, true)
		as := creds{bearer: k.login(t, admin.Email, admin.password)}
		user := k.newAccount(t, false)
		for range 4 {
			k.newAccount(t, false)
		}
		ctx := context.Background()
		inactive := false
		if _, err := k.users.UpdateUser(ctx, user.ID, authn.UserUpdate{IsActive: &inactive}); err != nil {
			t.Fatal(err)
		}

		// Only admins list users.
		userCreds := creds{bearer: k.login(t, k.newAccount(t, false).Email, e2ePassword)}
		wantDetail(t, k.do(t, userCreds.on(req{method: "GET", path: "/users"})), http.StatusForbidden, "FORBIDDEN")
		wantDetail(t, k.do(t, req{method: "GET", path: "/users"}), http.StatusUnauthorized, nil)

		list := func(q url.Values) userListPage {
			t.Helper()
			r := k.do(t, as.on(req{method: "GET", path: "/users?" + q.Encode()}))
			if r.status != http.StatusOK {
				t.Fatalf("GET /users?%s: %v", q.Encode(), r)
			}
			var p userListPage
			decode(t, r, &p)
			return p
		}
		// Paging by cursor visits everyone once, in e-mail order.
		var seen []string
		q := url.Values{"limit": {"2"}}
		for {
			p := list(q)
			for _, it := range p.Items {
				seen = append(seen, it.Email)
			}
			if p.NextCursor == nil {
				break
			}
			if len(p.Items) != 2 {
				t.Fatalf("a page before the last has %d items", len(p.Items))
			}
			q.Set("cursor", *p.NextCursor)
		}
		if len(seen) != 7 || !slices.IsSorted(seen) {
			t.Fatalf("paged through %v, want 7 users in order", seen)
		}
		if p := list(url.Values{"q": {user.Email[:len(user.Email)-4]}}); len(p.Items) != 1 || p.Items[0].ID != user.ID {
			t.Fatalf("search for %s = %+v", user.Email, p.Items)
		}
		if p := list(url.Values{"active": {"false"}}); len(p.Items) != 1 || p.Items[0].ID != user.ID || p.Items[0].IsActive {
			t.Fatalf("active=false = %+v", p.Items)
		}
		if p := list(url.Values{"role_id": {"1"}}); len(p.Items) != 1 || p.Items[0].Email != admin.Email {
			t.Fatalf("role_id=1 = %+v", p.Items)
		}
		for _, bad := range []struct{ q, field string }{
			{"limit=0", "limit"}, {"limit=501", "limit"}, {"limit=x", "limit"},
			{"role_id=admin", "role_id"}, {"active=maybe", "active"}, {"cursor=not-a-cursor", "cursor"},
		} {
			r := k.do(t, as.on(req{method: "GET", path: "/users?" + bad.q}))
			if r.status != http.StatusUnprocessableEntity || !bytesContain(r.body, `["query","`+bad.field+`"]`) {
				t.Errorf("GET /users?%s = %v, want 422 naming query.%s", bad.q, r, bad.field)
			}
		}

		// POST /users creates with the role asked for, and says who did it.
		r := k.do(t, as.on(req{method: "POST", path: "/users", json: map[string]any{
			"email": "new.analyst@example.test", "password": e2ePassword, "role_id": 1, "first_name": "Nu",
		}}))
		if r.status != http.StatusCreated {
			t.Fatalf("POST /users: %v", r)
		}
		created := r.object(t)
		if created["role_id"] != float64(1) || created["login_attempts"] == nil {
			t.Fatalf("created %v, want role 1 and the admin view", created)
		}
		wantDetail(t, k.do(t, as.on(req{method: "POST", path: "/users", json: map[string]any{"email": "new.analyst@example.test", "password": e2ePassword}})),
			http.StatusBadRequest, "REGISTER_USER_ALREADY_EXISTS")
		wantValidation(t, k.do(t, as.on(req{method: "POST", path: "/users", json: map[string]any{"email": "nope"}})), "email")
		wantDetail(t, k.do(t, userCreds.on(req{method: "POST", path: "/users", json: map[string]any{"email": "x@example.test", "password": e2ePassword}})),
			http.StatusForbidden, "FORBIDDEN")
		rows := k.auditRows(t, audit.Filter{UserID: created["id"].(string), Action: audit.ActionRegister}, rowsExactly(1))
		if len(rows) != 1 || rows[0].Details["by"] != admin.ID {
			t.Fatalf("register rows %+v, want one by %s", rows, admin.ID)
		}
	})
}

func TestAdminRolesAPI(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, be backend) {
		k := newAdminKit(t, be, nil)
		admin := k.newAccount(t, true)
		as := creds{bearer: k.login(t, admin.Email, admin.password)}
		ctx := context.Background()

		r := k.do(t, as.on(req{method: "POST", path: "/roles", json: map[string]any{"name": "analyst", "permissions": []string{"samples:read"}}}))
		if r.status != http.StatusCreated {
			t.Fatalf("POST /roles: %v", r)
		}
		roleID := int(r.object(t)["id"].(float64))
		rolePath := "/roles/" + strconv.Itoa(roleID)
		wantDetail(t, k.do(t, as.on(req{method: "POST", path: "/roles", json: map[string]any{"name": "analyst"}})), http.StatusBadRequest, "ROLE_ALREADY_EXISTS")
		wantValidation(t, k.do(t, as.on(req{method: "POST", path: "/roles", json: map[string]any{"name": " "}})), "name")
		wantDetail(t, k.do(t, as.on(req{method: "GET", path: "/roles/999"})), http.StatusNotFound, "ROLE_NOT_FOUND")
		wantDetail(t, k.do(t, as.on(req{method: "GET", path: "/roles/x"})), http.StatusNotFound, "ROLE_NOT_FOUND")

		r = k.do(t, as.on(req{method: "GET", path: "/roles"}))
		var roles []struct {
			ID          int      `json:"id"`
			Name        string   `json:"name"`
			Permissions []string `json:"permissions"`
		}
		decode(t, r, &roles)
		if len(roles) != 3 || roles[0].Name != "admin" || roles[2].Name != "analyst" || !slices.Equal(roles[2].Permissions, []string{"samples:read"}) {
			t.Fatalf("GET /roles = %+v", roles)
		}

		// Two analysts signed in: renaming the role and changing its
		// permissions reaches their live sessions at once.
		var analysts []account
		for range 2 {
			acct := k.newAccount(t, false)
			if _, err := k.users.UpdateUser(ctx, acct.ID, authn.UserUpdate{RoleID: &roleID}); err != nil {
				t.Fatal(err)
			}
			k.login(t, acct.Email, acct.password)
			analysts = append(analysts, acct)
		}
		r = k.do(t, as.on(req{method: "PATCH", path: rolePath, json: map[string]any{"name": "scientist", "permissions": []string{"samples:read", "samples:write"}}}))
		if r.status != http.StatusOK || r.object(t)["name"] != "scientist" {
			t.Fatalf("PATCH %s: %v", rolePath, r)
		}
		for _, acct := range analysts {
			live, err := k.sessions.ListByUser(ctx, acct.ID)
			if err != nil || len(live) != 1 {
				t.Fatalf("sessions of %s: %v, %v", acct.Email, live, err)
			}
			if !slices.Equal(live[0].Roles, []string{"scientist"}) || !slices.Equal(live[0].Permissions, []string{"samples:read", "samples:write"}) {
				t.Fatalf("live session of %s has roles %v, permissions %v after the role change", acct.Email, live[0].Roles, live[0].Permissions)
			}
		}

		// The seeded roles are protected; a role in use cannot go.
		wantDetail(t, k.do(t, as.on(req{method: "PATCH", path: "/roles/1", json: map[string]any{"name": "boss"}})), http.StatusConflict, "ROLE_PROTECTED")
		wantDetail(t, k.do(t, as.on(req{method: "DELETE", path: "/roles/1"})), http.StatusConflict, "ROLE_PROTECTED")
		wantDetail(t, k.do(t, as.on(req{method: "DELETE", path: "/roles/2"})), http.StatusConflict, "ROLE_PROTECTED")
		wantDetail(t, k.do(t, as.on(req{method: "DELETE", path: rolePath})), http.StatusConflict, "ROLE_IN_USE")
		if r := k.do(t, as.on(req{method: "PATCH", path: "/roles/1", json: map[string]any{"permissions": []string{"*"}}})); r.status != http.StatusOK {
			t.Fatalf("admin's permissions may be rewritten: %v", r)
		}
		two := 2
		for _, acct := range analysts {
			if _, err := k.svc.UpdateUser(ctx, authn.Principal{Session: sessions.Session{UserID: admin.ID, Roles: []string{"admin"}}}, acct.ID, authn.AdminUpdate{UserUpdate: authn.UserUpdate{RoleID: &two}}, authn.ClientMeta{}); err != nil {
				t.Fatal(err)
			}
		}
		if r := k.do(t, as.on(req{method: "DELETE", path: rolePath})); r.status != http.StatusNoContent {
			t.Fatalf("DELETE unused role: %v", r)
		}
		wantDetail(t, k.do(t, as.on(req{method: "DELETE", path: rolePath})), http.StatusNotFound, "ROLE_NOT_FOUND")

		// Every change is audited with the acting admin.
		rows := k.auditRows(t, audit.Filter{Action: "role."}, rowsExactly(4))
		if len(rows) != 4 {
			t.Fatalf("%d role rows, want created, updated ×2, deleted: %+v", len(rows), rows)
		}
		for _, row := range rows {
			if row.UserID != admin.ID || row.Details["by"] != admin.ID || row.Resource != "role" {
				t.Errorf("role row %+v does not name the admin", row)
			}
		}
		if rows[2].Action != "role.updated" || rows[2].Details["old_name"] != "analyst" || rows[2].Details["users"] != float64(2) {
			t.Errorf("rename row = %+v", rows[2])
		}
	})
}

// decode reads a JSON answer into v.
func decode(t testing.TB, r resp, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
}

func bytesContain(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
