package main

import (
	"path/filepath"
	"strings"
	"testing"
)

const explainYAML = `default_mode: legacy
routes:
  - {path: /api/samples, mode: shadow, roles: [admin]}
  - {path: /static, mode: public}
`

// TestRoutesExplain: explain names the matching route, its mode and
// source, refuses what the router refuses, and says what gateway would
// decide for a user.
func TestRoutesExplain(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t, "sqlite://"+filepath.Join(t.TempDir(), "portero.db"), explainYAML)
	if code, out, errOut := e.run(t, "", "migrate", "up"); code != 0 {
		t.Fatalf("migrate up (%d): %s%s", code, out, errOut)
	}
	for _, u := range [][]string{{"boss@example.com", "--admin"}, {"plain@example.com"}} {
		if code, out, errOut := e.run(t, "Cli-Pass-2026!x\n", append([]string{"users", "create", "--email"}, u...)...); code != 0 {
			t.Fatalf("users create %v (%d): %s%s", u, code, out, errOut)
		}
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"file route", []string{"GET", "/api/samples/7"}, []string{"route:  /api/samples", "mode:   shadow", "source: file", "roles:  any of admin"}},
		{"query string pasted with the path", []string{"GET", "/api/samples?id=1#top"}, []string{"route:  /api/samples", "mode:   shadow"}},
		{"default", []string{"post", "/elsewhere"}, []string{"route:  default", "mode:   legacy"}},
		{"refused path", []string{"GET", "/static/../api/samples"}, []string{"refused with 400 INVALID_PATH"}},
		{"allowed user", []string{"GET", "/api/samples", "--user", "boss@example.com"}, []string{"gateway would: allow", "now (shadow)"}},
		{"wrong role", []string{"GET", "/api/samples", "--user", "plain@example.com"}, []string{"gateway would: deny (403, reason role"}},
	}
	for _, tc := range cases {
		code, out, errOut := e.run(t, "", append([]string{"routes", "explain"}, tc.args...)...)
		if code != 0 {
			t.Errorf("%s: exit %d: %s%s", tc.name, code, out, errOut)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, out)
			}
		}
	}
	if code, _, errOut := e.run(t, "", "routes", "explain", "GET", "/x", "--user", "nobody@example.com"); code != 1 || !strings.Contains(errOut, "no user") {
		t.Errorf("unknown user: exit %d: %s", code, errOut)
	}
	if code, _, _ := e.run(t, "", "routes", "explain", "GET"); code != 2 {
		t.Errorf("missing PATH: exit %d, want 2", code)
	}
	// An override shows as the source.
	if code, out, errOut := e.run(t, "", "routes", "set", "/static", "gateway"); code != 0 {
		t.Fatalf("routes set (%d): %s%s", code, out, errOut)
	}
	if code, out, _ := e.run(t, "", "routes", "explain", "GET", "/static/app.js"); code != 0 || !strings.Contains(out, "mode:   gateway") || !strings.Contains(out, "source: override by") {
		t.Errorf("overridden route (%d):\n%s", code, out)
	}
}
