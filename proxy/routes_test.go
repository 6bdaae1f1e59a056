package proxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/portero/portero/configs"
)

func testTable(t testing.TB) *Table {
	t.Helper()
	tbl, err := NewTable("legacy", []configs.Route{
		{Path: "/api", Mode: "public"},
		{Path: "/api/samples", Mode: "gateway", Roles: []string{"analyst"}},
		{Path: "/api/samples", Methods: []string{"GET"}, Mode: "dual"},
		{Path: "/static", Mode: "public"},
		{Path: "/admin", Mode: "gateway"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func TestRouteMatching(t *testing.T) {
	t.Parallel()
	tbl := testTable(t)
	for _, tc := range []struct {
		method, path, want string
	}{
		{"GET", "/", "default"},
		{"GET", "/api", "/api"},
		{"GET", "/api/other", "/api"},
		{"GET", "/apix", "default"},
		{"POST", "/api/samples", "/api/samples"},
		{"POST", "/api/samples/1/files", "/api/samples"},
		{"GET", "/api/samples/1", "/api/samples GET"},
		{"HEAD", "/api/samples/1", "/api/samples GET"},
		{"POST", "/api/samplesX", "/api"},
		{"GET", "/api/samples/", "/api/samples GET"},
		{"GET", "/static/app.js", "/static"},
		{"GET", "/admin", "/admin"},
		{"GET", "/api/samples/caf%C3%A9", "/api/samples GET"},
		{"GET", "/api/samples/a%20b", "/api/samples GET"},
	} {
		r, err := tbl.Decide(tc.method, tc.path)
		if err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.path, err)
			continue
		}
		if r.Name != tc.want {
			t.Errorf("%s %s: route %q, want %q", tc.method, tc.path, r.Name, tc.want)
		}
	}
}

// TestPathTricksCannotDodgeARule tries the classic ways of reaching a gateway
// route (/api/samples, /admin) while looking like a public or legacy path.
// Each must be refused or land on the protected route.
func TestPathTricksCannotDodgeARule(t *testing.T) {
	t.Parallel()
	tbl := testTable(t)
	protected := map[string]bool{"/api/samples": true, "/api/samples GET": true, "/admin": true}
	for _, path := range []string{
		"/api/x/../samples",
		"/api/./samples",
		"/api/x/%2e%2e/samples",
		"/api/x/%2E%2E/samples",
		"/api/x/.%2e/samples",
		"/api/x/..;/samples",
		"/api/x/..%3b/samples",
		"/api//samples",
		"//admin",
		"/api/x%2F..%2Fsamples",
		"/api/x%2f%2e%2e%2fsamples",
		"/api/x\\..\\samples",
		"/api/x%5C..%5Csamples",
		"/api/%73amples",
		"/api/SAMPLES",
		"/Admin",
		"/ADMIN/users",
		"/%61dmin",
		"/admin;jsessionid=1",
		"/api/samples;x=1",
		"/api;x=/samples",
		"/static/%252e%252e/admin",
		"/static/..%252fadmin",
		"/admin%00.js",
		"/static%2f..%2fadmin",
		"/api/samples%",
		"/api/samples%zz",
		"/api/samples%0a",
		"/static/.",
		"/static/..",
	} {
		r, err := tbl.Decide("POST", path)
		if err != nil {
			if !errors.Is(err, ErrBadPath) && !errors.Is(err, ErrAmbiguousPath) {
				t.Errorf("%s: unexpected error %v", path, err)
			}
			continue
		}
		if !protected[r.Name] {
			t.Errorf("%s: decided by %q, which is not the protected route", path, r.Name)
		}
	}
}

func TestMethodOverrideCannotDodgeAMethodRule(t *testing.T) {
	t.Parallel()
	tbl := testTable(t)
	if _, err := tbl.Decide("GET", "/api/samples/1", "DELETE"); !errors.Is(err, ErrAmbiguousPath) {
		t.Errorf("GET overridden to DELETE on a GET-only rule: %v", err)
	}
	if r, err := tbl.Decide("POST", "/api/samples/1", "POST"); err != nil || r.Name != "/api/samples" {
		t.Errorf("override to the same method: %v %v", r, err)
	}
}

func TestNewTableRefusesBadModes(t *testing.T) {
	t.Parallel()
	if _, err := NewTable("sideways", nil); !errors.Is(err, ErrInvalidRoute) {
		t.Errorf("bad default mode: %v", err)
	}
	if _, err := NewTable("legacy", []configs.Route{{Path: "/x", Mode: "open"}}); !errors.Is(err, ErrInvalidRoute) {
		t.Errorf("bad route mode: %v", err)
	}
}

// TestRouteNameIgnoresMethodOrder: a route's name keys its fleet-wide
// override, so listing the same methods in another order must keep it.
func TestRouteNameIgnoresMethodOrder(t *testing.T) {
	t.Parallel()
	var names []string
	for _, methods := range [][]string{{"GET", "POST"}, {"POST", "GET"}} {
		tbl, err := NewTable("legacy", []configs.Route{{Path: "/api/x", Methods: methods, Mode: "gateway"}})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tbl.routes[0].Name)
	}
	if names[0] != names[1] || names[0] != "/api/x GET,POST" {
		t.Errorf("route names %q and %q, want both %q", names[0], names[1], "/api/x GET,POST")
	}
}

func FuzzDecide(f *testing.F) {
	for _, s := range []string{"/", "/api/samples", "/api/x/%2e%2e/samples", "/a;b/c", "/%2F", "//x", "/a\\b", "*", "/api/SAMPLES"} {
		f.Add("GET", s)
	}
	tbl := testTable(f)
	f.Fuzz(func(t *testing.T, method, path string) {
		r, err := tbl.Decide(method, path)
		if err != nil {
			if r != nil {
				t.Fatal("route and error")
			}
			return
		}
		// An accepted path is free of what upstreams read differently.
		if path != "*" && (strings.Contains(path, "\\") || strings.Contains(path, "//") || strings.Contains(path, "/../") || strings.HasSuffix(path, "/..")) {
			t.Fatalf("accepted %q", path)
		}
		// Whatever reading, a path under /admin is decided by /admin.
		if all, _, derr := decodePath(path); derr == nil && underPrefix(stripParams(all), "/admin", true) && r.Name != "/admin" {
			t.Fatalf("%q reads as under /admin but was decided by %q", path, r.Name)
		}
	})
}
