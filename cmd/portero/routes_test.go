package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portero/portero/configs"
	"github.com/portero/portero/sessions/sessionstest"
	"github.com/portero/portero/storage/storagetest"
)

// cliEnv is a configuration file on a fresh database and a way to run
// portero's commands in this process against it.
type cliEnv struct {
	cfg    string
	getenv func(string) string
}

// newCLIEnv writes a configuration for storageURL with extra YAML appended.
func newCLIEnv(t *testing.T, storageURL, extra string) *cliEnv {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portero.yaml")
	yaml := fmt.Sprintf("storage: {url: %q}\naudit: {spool_dir: %q}\nsecret_key: \"cli-test-secret-key-0123456789abcdef\"\n%s", storageURL, filepath.Join(dir, "spool"), extra)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"USER": "ops"}
	return &cliEnv{cfg: cfg, getenv: func(k string) string { return env[k] }}
}

// run runs portero with args (and --config), stdin as given; it returns
// the exit code, stdout and stderr.
func (e *cliEnv) run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, append(args, "--config", e.cfg), e.getenv, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

const routesYAML = `default_mode: legacy
routes:
  - {path: /api/samples, mode: gateway}
  - {path: /api/x, methods: [GET], mode: public}
  - {path: /static, mode: public}
`

func TestRoutesCLI(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t, storagetest.NewPostgresURL(t), routesYAML)

	code, out, errOut := e.run(t, "", "routes", "list")
	if code != 0 || !strings.Contains(out, "/api/samples  gateway  gateway  file") || !strings.Contains(out, "default       legacy   legacy   file") {
		t.Fatalf("routes list (%d):\n%s%s", code, out, errOut)
	}
	if code, _, errOut := e.run(t, "", "routes", "set", "/api/nope", "legacy"); code != 1 || !strings.Contains(errOut, "no route of the file") {
		t.Fatalf("set of a path not in the file (%d): %s", code, errOut)
	}
	if code, _, errOut := e.run(t, "", "routes", "set", "/api/samples", "open"); code != 1 || !strings.Contains(errOut, "invalid route mode") {
		t.Fatalf("set of a bad mode (%d): %s", code, errOut)
	}
	if code, _, _ := e.run(t, "", "routes", "set", "/api/samples"); code != 2 {
		t.Fatalf("set without a mode: exit %d, want 2", code)
	}
	if code, out, errOut := e.run(t, "", "routes", "set", "/api/samples", "LEGACY"); code != 0 || !strings.Contains(out, "/api/samples: gateway -> legacy") {
		t.Fatalf("set (%d): %s%s", code, out, errOut)
	}
	if code, out, _ := e.run(t, "", "routes", "set", "default", "gateway"); code != 0 || !strings.Contains(out, "default: legacy -> gateway") {
		t.Fatalf("set default (%d): %s", code, out)
	}
	code, out, _ = e.run(t, "", "routes", "list", "--json")
	var view struct {
		Version int64 `json:"version"`
		Routes  []struct {
			Name, Mode, Source string
			Override           *struct{ By string } `json:"override"`
		} `json:"routes"`
	}
	if err := json.Unmarshal([]byte(out), &view); err != nil || code != 0 || view.Version != 2 {
		t.Fatalf("routes list --json (%d): %v\n%s", code, err, out)
	}
	for _, r := range view.Routes {
		if r.Name == "/api/samples" && (r.Mode != "legacy" || r.Source != "override" || r.Override == nil || r.Override.By != "cli:ops") {
			t.Fatalf("/api/samples in the list: %+v", r)
		}
	}
	if code, out, _ := e.run(t, "", "routes", "unset", "/api/samples"); code != 0 || !strings.Contains(out, "/api/samples: legacy -> gateway") {
		t.Fatalf("unset (%d): %s", code, out)
	}
	if code, out, _ := e.run(t, "", "routes", "reset", "/api/samples"); code != 0 || !strings.Contains(out, "nothing changed") {
		t.Fatalf("reset PATH without an override (%d): %s", code, out)
	}
	if code, out, _ := e.run(t, "", "routes", "reset"); code != 0 || !strings.Contains(out, "default: gateway -> legacy") {
		t.Fatalf("reset (%d): %s", code, out)
	}
}

// instance is one `portero serve` running in this process.
type instance struct {
	public, ops string
	stop        func()
}

// startInstance runs serve with the configuration file path until the test ends.
func startInstance(t *testing.T, path string, getenv func(string) string) instance {
	t.Helper()
	cfg, err := configs.Load(path, getenv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, path, getenv, io.Discard, zap.NewNop(), func(public, ops net.Addr) {
			ready <- [2]string{"http://" + public.String(), "http://" + ops.String()}
		})
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case u := <-ready:
		return instance{public: u[0], ops: u[1], stop: stop}
	case err := <-done:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	return instance{}
}

// TestTwoInstancesShareTogglesAndSessions: two Portero instances share
// PostgreSQL and Redis. A session made on one works on the other; a route
// toggled through the admin API of one, or by the CLI, is in force on both
// within a second or two; reset rolls both back.
func TestTwoInstancesShareTogglesAndSessions(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
	t.Cleanup(upstream.Close)
	redisURL := os.Getenv("PORTERO_TEST_REDIS")
	if redisURL == "" {
		redisURL = sessionstest.DefaultRedis
	}
	// Keys of its own: the per-IP login throttle is keyed by 127.0.0.1,
	// which every other test's logins share.
	_, prefix := sessionstest.RedisClient(t, "two-instances")
	pgURL := storagetest.NewPostgresURL(t)
	extra := fmt.Sprintf(`listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
upstream: {url: %q, timeout: 5s}
sessions: {url: %q, key_prefix: %q, cookie_secure: false, cookie_name: portero_session}
log: {level: error}
%s`, upstream.URL, redisURL, prefix, routesYAML)
	a := newCLIEnv(t, pgURL, extra)
	b := newCLIEnv(t, pgURL, extra) // the same database, its own spool
	adminEmail := "admin-" + fmt.Sprint(time.Now().UnixNano()) + "@example.test"
	env := map[string]string{"PORTERO_ADMIN_EMAIL": adminEmail, "PORTERO_ADMIN_PASSWORD": "Adm1n-Pass-2026!", "USER": "ops"}
	getenv := func(k string) string { return env[k] }
	ia := startInstance(t, a.cfg, getenv)
	ib := startInstance(t, b.cfg, getenv)

	do := func(method, url, bearer, body string) (int, string) {
		t.Helper()
		return jsonCall(t, method, url, bearer, body)
	}
	code, body := do("POST", ia.public+"/auth/login", "", `{"username":"`+adminEmail+`","password":"Adm1n-Pass-2026!"}`)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body), &tok); code != 200 || err != nil {
		t.Fatalf("login on a: %d %s", code, body)
	}
	// The session made on a works on b.
	if code, body := do("GET", ib.public+"/users/me", tok.AccessToken, ""); code != 200 || !strings.Contains(body, adminEmail) {
		t.Fatalf("a's session on b: %d %s", code, body)
	}
	// Each instance keeps validated sessions in memory for a moment
	// (sessions.cache_ttl); a logout on a still ends the session on b's
	// very next request, b's copy notwithstanding.
	for i := range 10 {
		code, body := do("POST", ia.public+"/auth/login", "", `{"username":"`+adminEmail+`","password":"Adm1n-Pass-2026!"}`)
		var s struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal([]byte(body), &s); code != 200 || err != nil {
			t.Fatalf("login #%d: %d %s", i, code, body)
		}
		for range 3 {
			if code, _ := do("GET", ib.public+"/users/me", s.AccessToken, ""); code != 200 {
				t.Fatalf("session #%d on b before the logout: %d", i, code)
			}
		}
		if code, body := do("POST", ia.public+"/auth/logout", s.AccessToken, ""); code/100 != 2 {
			t.Fatalf("logout #%d on a: %d %s", i, code, body)
		}
		if code, _ := do("GET", ib.public+"/users/me", s.AccessToken, ""); code != 401 {
			t.Fatalf("session #%d on b right after its logout on a: %d, want 401", i, code)
		}
	}
	if hits := scrapeMetrics(t, ib.ops).value("portero_session_cache_hits_total"); hits < 10 {
		t.Fatalf("b answered only %v session checks from its cache: the logouts above proved nothing", hits)
	}
	// gateway: no session, no entry, on both.
	for _, in := range []instance{ia, ib} {
		if code, _ := do("GET", in.public+"/api/samples/1", "", ""); code != 401 {
			t.Fatalf("gateway route without a session: %d", code)
		}
	}
	within := func(in instance, wantStatus int) {
		t.Helper()
		start := time.Now()
		for {
			code, _ := do("GET", in.public+"/api/samples/1", "", "")
			if code == wantStatus {
				t.Logf("%s: %d after %s", in.public, code, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("%s still answers %d after 2s, want %d", in.public, code, wantStatus)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Rolled back to legacy through a's admin API: b forwards it too.
	if code, body := do("PUT", ia.public+"/routes/api/samples/mode", tok.AccessToken, `{"mode":"legacy"}`); code != 200 {
		t.Fatalf("PUT mode on a: %d %s", code, body)
	}
	within(ia, 200)
	within(ib, 200)
	// A config reload on b keeps the override.
	if err := os.WriteFile(b.cfg, append(mustRead(t, b.cfg), []byte("  - {path: /new, mode: public}\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file watcher polls every second and acts once the file has
	// stayed the same for a whole interval: within about 2s.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, _ := do("GET", ib.public+"/new", "", "")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b did not reload its file: /new answers %d", code)
		}
	}
	if code, _ := do("GET", ib.public+"/api/samples/1", "", ""); code != 200 {
		t.Fatalf("b's reload dropped the override: %d", code)
	}
	// The CLI's reset rolls every instance back to the file's table.
	if code, out, errOut := a.run(t, "", "routes", "reset"); code != 0 {
		t.Fatalf("routes reset (%d): %s%s", code, out, errOut)
	}
	within(ia, 401)
	within(ib, 401)
	if code, body := do("GET", ib.public+"/routes", tok.AccessToken, ""); code != 200 || !strings.Contains(body, `"version":2`) {
		t.Fatalf("GET /routes on b: %d %s", code, body)
	}

	// The example dashboard charts every series an instance exports.
	_, scrape := do("GET", ia.ops+"/-/metrics", "", "")
	if !strings.Contains(scrape, "portero_route_overrides_version 2") || !strings.Contains(scrape, `portero_route_mode_changes_total{operation="set"} 1`) {
		t.Errorf("a's metrics lack the toggles:\n%s", scrape)
	}
	dashboard := string(mustRead(t, "../../configs/grafana-dashboard.json"))
	for _, line := range strings.Split(scrape, "\n") {
		name, _, _ := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
		if !strings.HasPrefix(line, "# TYPE portero_") {
			continue
		}
		if !strings.Contains(dashboard, name) {
			t.Errorf("configs/grafana-dashboard.json has no panel for %s", name)
		}
	}
}

// jsonCall sends body (JSON, if any) with the bearer token (if any) and
// returns the status and the answer's body.
func jsonCall(t *testing.T, method, url, bearer, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
