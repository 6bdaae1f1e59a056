package proxy

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/configs"
	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// toggleRoutes is the file's table of the toggle tests.
var toggleRoutes = []configs.Route{
	{Path: "/api/samples", Mode: "gateway"},
	{Path: "/api/x", Methods: []string{"GET"}, Mode: "public"},
	{Path: "/api/x", Methods: []string{"POST"}, Mode: "gateway"},
	{Path: "/static/", Mode: "public"},
}

func toggleTable(t testing.TB, routes []configs.Route) *Table {
	t.Helper()
	tbl, err := NewTable("legacy", routes)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// recorder is a ChangeAuditor that keeps events, or fails when told to.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
	fail   error
}

func (r *recorder) Record(_ context.Context, ev audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) all() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.events...)
}

// instance is one Portero's router and toggles over a shared store.
type instance struct {
	router  *Router
	toggles *Toggles
	audit   *recorder
}

func newInstance(t testing.TB, store OverrideStore, poll time.Duration) *instance {
	t.Helper()
	in := &instance{audit: &recorder{}}
	in.router = NewRouter(toggleTable(t, toggleRoutes), nil, nil, nil, nil, RouterOptions{}, zap.NewNop())
	in.toggles = NewToggles(in.router.Table(), in.router.Swap, store, in.audit, zap.NewNop(), TogglesOptions{Poll: poll})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.toggles.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	return in
}

func (in *instance) mode(t testing.TB, method, path string) Mode {
	t.Helper()
	r, err := in.router.Table().Decide(method, path)
	if err != nil {
		t.Fatal(err)
	}
	return r.Mode
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestOverrideStoreContract(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := testCtx(t)
		s := NewOverrideStore(db)
		if v, err := s.Version(ctx); err != nil || v != 0 {
			t.Fatalf("Version = %d, %v; want 0", v, err)
		}
		at := time.Date(2026, 3, 1, 9, 0, 0, 123456000, time.UTC)
		replaced, v1, err := s.Put(ctx, []Override{{Route: "/a", Mode: ModeLegacy, By: "ana@x", At: at}, {Route: "/b GET", Mode: ModeGateway, By: "ana@x", At: at}})
		if err != nil || len(replaced) != 0 || v1 != 1 {
			t.Fatalf("Put = %v, %d, %v; want nothing replaced, version 1", replaced, v1, err)
		}
		replaced, v2, err := s.Put(ctx, []Override{{Route: "/a", Mode: ModeDual, By: "bo@x", At: at.Add(time.Minute)}})
		if err != nil || v2 != 2 || len(replaced) != 1 || replaced[0].Mode != ModeLegacy || replaced[0].By != "ana@x" || replaced[0].Version != 1 {
			t.Fatalf("Put = %+v, %d, %v; want /a's legacy override replaced at version 2", replaced, v2, err)
		}
		list, v, err := s.List(ctx)
		if err != nil || v != 2 || len(list) != 2 {
			t.Fatalf("List = %+v, %d, %v", list, v, err)
		}
		if got := list[0]; got.Route != "/a" || got.Mode != ModeDual || got.By != "bo@x" || !got.At.Equal(at.Add(time.Minute)) || got.Version != 2 {
			t.Fatalf("List[0] = %+v", got)
		}
		if got := list[1]; got.Route != "/b GET" || got.Mode != ModeGateway || !got.At.Equal(at) || got.Version != 1 {
			t.Fatalf("List[1] = %+v", got)
		}
		// Removing nothing changes nothing, the version included.
		removed, v, err := s.Delete(ctx, []string{"/nope"})
		if err != nil || len(removed) != 0 || v != 2 {
			t.Fatalf("Delete(/nope) = %v, %d, %v; want nothing at version 2", removed, v, err)
		}
		removed, v, err = s.Delete(ctx, []string{"/a"})
		if err != nil || len(removed) != 1 || removed[0].Route != "/a" || v != 3 {
			t.Fatalf("Delete(/a) = %v, %d, %v", removed, v, err)
		}
		if _, _, err := s.Put(ctx, []Override{{Route: "/c", Mode: ModePublic}}); err != nil {
			t.Fatal(err)
		}
		removed, v, err = s.Delete(ctx, nil)
		if err != nil || len(removed) != 2 || v != 5 {
			t.Fatalf("Delete(all) = %v, %d, %v; want /b GET and /c at version 5", removed, v, err)
		}
		if list, v, err := s.List(ctx); err != nil || len(list) != 0 || v != 5 {
			t.Fatalf("List after reset = %v, %d, %v", list, v, err)
		}
		if _, _, err := s.Put(ctx, []Override{{Route: "", Mode: ModePublic}}); err == nil {
			t.Fatal("Put without a route succeeded")
		}
		if v, _ := s.Version(ctx); v != 5 {
			t.Fatalf("a refused Put moved the version to %d", v)
		}
	})
}

func TestTogglesApplyOverridesOnTheFileTable(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := testCtx(t)
		in := newInstance(t, NewOverrideStore(db), time.Hour)
		admin := Actor{ID: "0190c6a2-7d0e-7a44-8f3c-2b1d4c5e6f70", Email: "root@example.test", IP: "10.0.0.1"}

		// A path not in the file is refused, and so is a mode that is not one.
		if _, err := in.toggles.Set(ctx, "/api/nothing", ModeLegacy, admin); !errors.Is(err, ErrUnknownRoute) {
			t.Fatalf("Set(unknown path) = %v, want ErrUnknownRoute", err)
		}
		if _, err := in.toggles.Set(ctx, "/api/samples", "open", admin); !errors.Is(err, ErrInvalidMode) {
			t.Fatalf("Set(bad mode) = %v, want ErrInvalidMode", err)
		}

		changes, err := in.toggles.Set(ctx, "/api/samples/", ModeLegacy, admin)
		if err != nil || len(changes) != 1 || changes[0] != (ModeChange{Route: "/api/samples", Old: ModeGateway, New: ModeLegacy}) {
			t.Fatalf("Set = %+v, %v", changes, err)
		}
		if m := in.mode(t, "GET", "/api/samples/1"); m != ModeLegacy {
			t.Fatalf("mode after Set = %s, want legacy at once on this instance", m)
		}
		// A path with several method routes overrides each of them.
		changes, err = in.toggles.Set(ctx, "/api/x", ModeLegacy, admin)
		if err != nil || len(changes) != 2 || changes[0].Route != "/api/x GET" || changes[1].Route != "/api/x POST" {
			t.Fatalf("Set(/api/x) = %+v, %v", changes, err)
		}
		if _, err := in.toggles.Set(ctx, "default", ModeGateway, admin); err != nil {
			t.Fatal(err)
		}
		if m := in.mode(t, "GET", "/anything"); m != ModeGateway {
			t.Fatalf("default mode = %s, want the override's gateway", m)
		}
		// Naming one route exactly leaves its sibling alone.
		if _, err := in.toggles.Unset(ctx, "/api/x POST", admin); err != nil {
			t.Fatal(err)
		}
		if g, p := in.mode(t, "GET", "/api/x"), in.mode(t, "POST", "/api/x"); g != ModeLegacy || p != ModeGateway {
			t.Fatalf("after unset of POST: GET %s, POST %s; want legacy, gateway", g, p)
		}

		// A config reload keeps the overrides; one whose route left the file
		// is kept but not applied, and listed as such.
		in.toggles.Swap(toggleTable(t, []configs.Route{{Path: "/api/samples", Mode: "dual"}, {Path: "/static", Mode: "public"}}))
		if m := in.mode(t, "GET", "/api/samples"); m != ModeLegacy {
			t.Fatalf("after reload /api/samples is %s, want the override's legacy", m)
		}
		view := in.toggles.View()
		if len(view.Orphans) != 1 || view.Orphans[0].Route != "/api/x GET" {
			t.Fatalf("orphans = %+v", view.Orphans)
		}
		byName := map[string]RouteState{}
		for _, r := range view.Routes {
			byName[r.Name] = r
		}
		if r := byName["/api/samples"]; r.FileMode != ModeDual || r.Mode != ModeLegacy || r.Source != "override" || r.Override == nil || r.Override.By != admin.Email {
			t.Fatalf("view of /api/samples = %+v", r)
		}
		if r := byName["/static"]; r.Mode != ModePublic || r.Source != "file" || r.Override != nil {
			t.Fatalf("view of /static = %+v", r)
		}
		if r := byName["default"]; r.FileMode != ModeLegacy || r.Mode != ModeGateway || view.Routes[len(view.Routes)-1].Name != "default" {
			t.Fatalf("view of default = %+v (last: %s)", r, view.Routes[len(view.Routes)-1].Name)
		}
		// The orphan can still be removed by name.
		if ch, err := in.toggles.Unset(ctx, "/api/x GET", admin); err != nil || len(ch) != 1 || ch[0].New != "" {
			t.Fatalf("Unset(orphan) = %+v, %v", ch, err)
		}

		// Reset is the rollback to the file's table.
		changes, err = in.toggles.Reset(ctx, admin)
		if err != nil || len(changes) != 2 {
			t.Fatalf("Reset = %+v, %v", changes, err)
		}
		if m := in.mode(t, "GET", "/api/samples"); m != ModeDual {
			t.Fatalf("after reset /api/samples is %s, want the file's dual", m)
		}
		if m := in.mode(t, "GET", "/x"); m != ModeLegacy {
			t.Fatalf("after reset default is %s, want the file's legacy", m)
		}
		if ch, err := in.toggles.Reset(ctx, admin); err != nil || len(ch) != 0 {
			t.Fatalf("second Reset = %+v, %v; want no change", ch, err)
		}

		// Every change is audited with the actor, old and new.
		evs := in.audit.all()
		if len(evs) != 8 { // 1 + 2 + 1 set, 1 + 1 unset, 2 reset
			t.Fatalf("%d audit events, want 8: %+v", len(evs), evs)
		}
		first := evs[0]
		if first.Action != audit.ActionRouteModeChanged || first.UserID != admin.ID || first.ResourceID != "/api/samples" ||
			first.Details["by"] != admin.ID || first.Details["by_email"] != admin.Email ||
			first.Details["old"] != "gateway" || first.Details["new"] != "legacy" || first.IP != admin.IP {
			t.Fatalf("first audit event = %+v", first)
		}
	})
}

func TestToggleNotAuditedIsNotMade(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := NewOverrideStore(storagetest.NewSQLite(t))
	in := newInstance(t, store, time.Hour)
	in.audit.fail = errors.New("spool full")
	if _, err := in.toggles.Set(ctx, "/api/samples", ModeLegacy, Actor{ID: "cli:ops"}); err == nil {
		t.Fatal("Set succeeded without its audit row")
	}
	if list, _, _ := store.List(ctx); len(list) != 0 {
		t.Fatalf("the unaudited override stayed: %+v", list)
	}
	if m := in.mode(t, "GET", "/api/samples"); m != ModeGateway {
		t.Fatalf("mode = %s, want the file's gateway", m)
	}
	// A CLI actor is not a user id: the row names it in details only.
	in.audit.fail = nil
	if _, err := in.toggles.Set(ctx, "/api/samples", ModeLegacy, Actor{ID: "cli:ops"}); err != nil {
		t.Fatal(err)
	}
	if evs := in.audit.all(); len(evs) != 1 || evs[0].UserID != "" || evs[0].Details["by"] != "cli:ops" {
		t.Fatalf("events = %+v", evs)
	}
}

// TestTogglesReachEveryInstance: two instances share one database; a
// change made on one is in force on the other within two seconds, through
// PostgreSQL's NOTIFY or, on SQLite, the one-second poll.
func TestTogglesReachEveryInstance(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := testCtx(t)
		a := newInstance(t, NewOverrideStore(db), time.Second)
		// b polls only once a minute on PostgreSQL: NOTIFY must carry it.
		poll := time.Second
		if db.Dialect() == storage.Postgres {
			poll = time.Minute
		}
		b := newInstance(t, NewOverrideStore(db), poll)
		runCtx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); b.toggles.Run(runCtx) }()
		t.Cleanup(func() { stop(); wg.Wait() })
		time.Sleep(200 * time.Millisecond) // let b's LISTEN start

		set := func(m Mode) func() error {
			return func() error { _, err := a.toggles.Set(ctx, "/api/samples", m, Actor{ID: "cli:ops"}); return err }
		}
		reset := func() error { _, err := a.toggles.Reset(ctx, Actor{ID: "cli:ops"}); return err }
		for _, step := range []struct {
			do   func() error
			want Mode
		}{{set(ModeLegacy), ModeLegacy}, {set(ModeDual), ModeDual}, {reset, ModeGateway}} {
			start := time.Now()
			if err := step.do(); err != nil {
				t.Fatal(err)
			}
			for b.mode(t, "GET", "/api/samples") != step.want {
				if time.Since(start) > 2*time.Second {
					t.Fatalf("instance b still has %s after 2s, want %s", b.mode(t, "GET", "/api/samples"), step.want)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("%s: b applied %s after %s", db.Dialect(), step.want, time.Since(start).Round(time.Millisecond))
		}
	})
}
