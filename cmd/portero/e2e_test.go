package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/portero/portero/storage/storagetest"
)

// binDir holds portero and demo-upstream built once for the end-to-end tests,
// which run the real binaries the way an operator does.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portero-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir, "github.com/portero/portero/cmd/portero", "github.com/portero/portero/cmd/demo-upstream")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running binary whose stderr is scanned for a line.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan error
}

func start(t *testing.T, waitFor *regexp.Regexp, name string, args ...string) (*proc, []string) {
	t.Helper()
	return startWithEnv(t, nil, waitFor, name, args...)
}

// startWithEnv runs a binary with extra environment variables and waits
// for a line matching waitFor on its stderr.
func startWithEnv(t *testing.T, env []string, waitFor *regexp.Regexp, name string, args ...string) (*proc, []string) {
	t.Helper()
	p := &proc{cmd: exec.Command(filepath.Join(binDir, name), args...), done: make(chan error, 1)}
	p.cmd.Env = append(append(os.Environ(), "PORTERO_CONFIG="), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			if m := waitFor.FindStringSubmatch(line); m != nil {
				select {
				case found <- m:
				default:
				}
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	select {
	case m := <-found:
		return p, m
	case err := <-p.done:
		t.Fatalf("%s exited early (%v):\n%s", name, err, p.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not start:\n%s", name, p.output())
	}
	return nil, nil
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// startStack runs demo-upstream and portero (legacy mode everywhere) and
// returns portero's public and ops base URLs.
func startStack(t *testing.T, extraYAML string) (public, ops string, portero *proc) {
	t.Helper()
	storageURL := "sqlite://" + filepath.Join(t.TempDir(), "portero.db")
	spoolLine := ""
	if !strings.Contains(extraYAML, "audit:") {
		spoolLine = fmt.Sprintf("audit: {spool_dir: %q}", filepath.Join(t.TempDir(), "spool"))
	}
	if !strings.Contains(extraYAML, "storage:") {
		extraYAML += fmt.Sprintf("storage: {url: %q}\n", storageURL)
	}
	_, m := start(t, regexp.MustCompile(`addr=(\S+)`), "demo-upstream", "-listen", "127.0.0.1:0")
	upstream := m[1]
	cfg := filepath.Join(t.TempDir(), "portero.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
upstream: {url: "http://%s", timeout: 2s}
secret_key: "test-secret-key-with-enough-bytes-0123456789"
server: {shutdown_grace: 5s}
%s
log: {level: info, format: json}
%s`, upstream, spoolLine, extraYAML)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	portero, m = start(t, regexp.MustCompile(`"listen":"([^"]+)","ops_listen":"([^"]+)"`), "portero", "serve", "--config", cfg)
	return "http://" + m[1], "http://" + m[2], portero
}

func TestConfigCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("listen: \":8080\"\nupstream:\n  url: \"ftp://x\"\n  timeout: soon\nbogus: 1\nroutes:\n  - path: /a\n    mode: sideways\n"), 0o600)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"config", "check", bad}, func(string) string { return "" }, nil, &stdout, &stderr)
	if code == 0 {
		t.Fatalf("invalid file accepted: %s", stdout.String())
	}
	for _, want := range []string{"bad.yaml:3: upstream.url", "bad.yaml:4: upstream.timeout", "bad.yaml:5: bogus", "bad.yaml:8: routes[0].mode"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("config check output lacks %q:\n%s", want, stderr.String())
		}
	}

	good := filepath.Join(dir, "good.yaml")
	_ = os.WriteFile(good, []byte("upstream: {url: \"http://127.0.0.1:8000\"}\nsecret_key: \"${K}\"\n"), 0o600)
	stdout.Reset()
	stderr.Reset()
	getenv := func(k string) string {
		if k == "K" {
			return "a-very-secret-value-that-is-long-enough-123"
		}
		return ""
	}
	if code := run(context.Background(), []string{"config", "check", good}, getenv, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("valid file refused (%d): %s", code, stderr.String())
	}
	stdout.Reset()
	if code := run(context.Background(), []string{"config", "print", good}, getenv, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("config print failed: %s", stderr.String())
	}
	if strings.Contains(stdout.String(), "a-very-secret-value") {
		t.Errorf("config print shows the secret:\n%s", stdout.String())
	}
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version"}, os.Getenv, nil, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "portero ") {
		t.Errorf("version: %d %q", code, out.String())
	}
	if code := run(context.Background(), []string{"frobnicate"}, os.Getenv, nil, &out, &errOut); code != 2 {
		t.Errorf("unknown command exit %d", code)
	}
}

func TestServeProxiesAndSeparatesOps(t *testing.T) {
	t.Parallel()
	public, ops, portero := startStack(t, "")

	req, _ := http.NewRequest("GET", public+"/anything/x?y=1", nil)
	req.Header.Set("X-Auth-User-Id", "forged")
	req.Header.Set("X-Request-Id", "e2e-1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var echo struct {
		RequestURI string              `json:"request_uri"`
		Headers    map[string][]string `json:"headers"`
	}
	if err := json.NewDecoder(res.Body).Decode(&echo); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if echo.RequestURI != "/anything/x?y=1" || echo.Headers["X-Auth-User-Id"] != nil || echo.Headers["X-Request-Id"][0] != "e2e-1" {
		t.Errorf("upstream saw %+v", echo)
	}

	for _, tc := range []struct {
		base, path string
		status     int
	}{
		{public, "/-/healthz", 200},
		{public, "/-/readyz", 200},
		{public, "/-/metrics", 404},
		{ops, "/-/healthz", 200},
		{ops, "/-/readyz", 200},
		{ops, "/-/metrics", 200},
	} {
		res, err := http.Get(tc.base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s%s: %d, want %d", tc.base, tc.path, res.StatusCode, tc.status)
		}
	}

	res, err = http.Get(ops + "/-/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`portero_http_requests_total{code="2xx",mode="legacy",route="default"}`, "portero_build_info{", "portero_audit_events_written_total"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/-/metrics lacks %s", want)
		}
	}

	// One access-log line per request with the fields operators filter on.
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(portero.output(), `"request_id":"e2e-1"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	var line map[string]any
	for _, l := range strings.Split(portero.output(), "\n") {
		if strings.Contains(l, `"request_id":"e2e-1"`) {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	for _, k := range []string{"method", "path", "route", "mode", "status", "bytes", "duration", "upstream_duration"} {
		if _, ok := line[k]; !ok {
			t.Errorf("access log line lacks %q: %v", k, line)
		}
	}
	if strings.Contains(portero.output(), "test-secret-key") {
		t.Error("the secret key reached the log")
	}
}

func TestGracefulShutdownFinishesStreams(t *testing.T) {
	t.Parallel()
	public, ops, portero := startStack(t, "")

	res, err := http.Get(public + "/stream?n=10&interval_ms=100")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := portero.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Readiness flips at once so a load balancer stops sending traffic.
	deadline := time.Now().Add(2 * time.Second)
	for {
		r, err := http.Get(ops + "/-/readyz")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 503 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz did not turn 503 during shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream cut during shutdown: %v", err)
	}
	if got := strings.Count(string(rest), "data: "); got != 9 {
		t.Errorf("after SIGTERM the stream delivered %d more events, want 9", got)
	}
	select {
	case err := <-portero.done:
		if err != nil {
			t.Errorf("portero exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("portero did not exit")
	}
}

func TestMigrateAndReadinessAgainstPostgresAndRedis(t *testing.T) {
	t.Parallel()
	pgURL := storagetest.NewPostgresURL(t)
	redisURL := os.Getenv("PORTERO_TEST_REDIS")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	cfg := filepath.Join(t.TempDir(), "p.yaml")
	_ = os.WriteFile(cfg, []byte(fmt.Sprintf("storage: {url: %q}\n", pgURL)), 0o600)
	getenv := func(string) string { return "" }

	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "status", "--config", cfg}, getenv, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "pending") {
		t.Fatalf("migrate status on an empty database (%d): %s %s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"migrate", "up", "--config", cfg}, getenv, nil, &out, &errOut); code != 0 || strings.Contains(out.String(), "pending") {
		t.Fatalf("migrate up (%d): %s %s", code, out.String(), errOut.String())
	}

	public, _, _ := startStack(t, fmt.Sprintf("storage: {url: %q, migrate_on_start: false}\nsessions: {url: %q}\n", pgURL, redisURL))
	res, err := http.Get(public + "/-/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`"postgres":"ok"`, `"redis":"ok"`, `"upstream":"ok"`} {
		if res.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("readyz %d %s lacks %s", res.StatusCode, body, want)
		}
	}

	// Redis that does not answer makes the instance unready, and says which.
	public, _, _ = startStack(t, "sessions: {url: \"redis://127.0.0.1:1/0\"}\n")
	res, err = http.Get(public + "/-/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || !strings.Contains(string(body), `"redis":"unavailable"`) {
		t.Errorf("readyz with Redis down: %d %s", res.StatusCode, body)
	}
}

func TestUsersCLICreatesAndUnlocks(t *testing.T) {
	t.Parallel()
	pgURL := storagetest.NewPostgresURL(t)
	cfg := filepath.Join(t.TempDir(), "p.yaml")
	_ = os.WriteFile(cfg, []byte(fmt.Sprintf("storage: {url: %q}\naudit: {spool_dir: %q}\nsecret_key: \"cli-test-secret-key-0123456789abcdef\"\n", pgURL, filepath.Join(t.TempDir(), "spool"))), 0o600)
	getenv := func(string) string { return "" }
	cli := func(stdin string, args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append(args, "--config", cfg), getenv, strings.NewReader(stdin), &out, &errOut)
		return code, out.String() + errOut.String()
	}

	if code, out := cli("Cli-Pass-2026!x\n", "users", "create", "--email", "ops@example.com", "--admin"); code != 0 || !strings.Contains(out, "created ops@example.com") {
		t.Fatalf("create (%d): %s", code, out)
	}
	if code, out := cli("Cli-Pass-2026!x\n", "users", "create", "--email", "OPS@example.com"); code == 0 {
		t.Errorf("a second user with the same e-mail was created: %s", out)
	}
	if code, out := cli("short\n", "users", "create", "--email", "weak@example.com"); code == 0 || !strings.Contains(out, "password refused") {
		t.Errorf("weak password accepted (%d): %s", code, out)
	}
	if code, out := cli("", "users", "create", "--email", "x@example.com", "Secret-On-Argv-1!"); code != 2 || !strings.Contains(out, "never taken from the command line") {
		t.Errorf("password on the command line: (%d) %s", code, out)
	}
	if code, out := cli("", "users", "unlock", "ops@example.com"); code != 0 || !strings.Contains(out, "unlocked") {
		t.Errorf("unlock (%d): %s", code, out)
	}
	if code, _ := cli("", "users", "unlock", "nobody@example.com"); code != 1 {
		t.Errorf("unlock of an unknown user exit %d", code)
	}

	// The user logs in through the gateway with the password given on stdin.
	public, _, _ := startStack(t, fmt.Sprintf("storage: {url: %q}\n", pgURL))
	res, err := http.Post(public+"/auth/login", "application/json", strings.NewReader(`{"username":"ops@example.com","password":"Cli-Pass-2026!x"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "access_token") {
		t.Errorf("login as the CLI-made user: %d %s", res.StatusCode, body)
	}
}

func TestGracefulShutdownGivesWebSocketsTheGrace(t *testing.T) {
	t.Parallel()
	public, _, portero := startStack(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(public, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	echo := func(msg string) error {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			return err
		}
		_, got, err := c.Read(ctx)
		if err == nil && string(got) != msg {
			err = fmt.Errorf("echo %q for %q", got, msg)
		}
		return err
	}
	if err := echo("before"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := portero.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := echo("during the grace period"); err != nil {
		t.Fatalf("the WebSocket broke as soon as shutdown began: %v", err)
	}
	// shutdown_grace is 5s: then the tunnel is cut and the process exits 0.
	select {
	case err := <-portero.done:
		if err != nil {
			t.Errorf("portero exited with %v", err)
		}
		if took := time.Since(start); took < 4*time.Second || took > 10*time.Second {
			t.Errorf("portero exited %v after SIGTERM with a WebSocket open, want about the 5s grace", took)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("portero did not exit after the grace period")
	}
	if err := echo("after"); err == nil {
		t.Error("the WebSocket still works after portero exited")
	}
}
