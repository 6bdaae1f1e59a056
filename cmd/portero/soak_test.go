//go:build soak

package main

// The soak suite: faults injected into the real portero binary's
// dependencies (its own Redis, PostgreSQL and upstream, on loopback
// ports), with assertions on what clients see during the fault and after
// recovery. Run it with `make soak`; RELIABILITY.md summarises a run. Lines
// starting "figure:" are the measurements RELIABILITY.md quotes.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	soakAdminEmail    = "root@soak.example"
	soakAdminPassword = "Gw-Soak-Pass-2026!"
	soakSecret        = "soak-secret-key-with-enough-bytes-0123456789"
)

// TestSoak runs the fault scenarios one after another (they share one
// PostgreSQL cluster and stop it, so never in parallel).
func TestSoak(t *testing.T) {
	pg := newSoakPostgres(t)
	_, m := start(t, regexp.MustCompile(`addr=(\S+)`), "demo-upstream", "-listen", "127.0.0.1:0")
	upstream := m[1]
	env := soakEnv{pg: pg, upstream: upstream}
	t.Run("Redis", func(t *testing.T) { soakRedisFaults(t, env) })
	t.Run("Postgres", func(t *testing.T) { soakPostgresFaults(t, env) })
	t.Run("Upstream", func(t *testing.T) { soakUpstreamFaults(t, env) })
	t.Run("Restart", func(t *testing.T) { soakRestart(t, env) })
	t.Run("Reload", func(t *testing.T) { soakReload(t, env) })
	t.Run("Floods", func(t *testing.T) { soakFloods(t, env) })
}

type soakEnv struct {
	pg       *soakPostgres
	upstream string // host:port of demo-upstream
}

// soakStack is one running portero.
type soakStack struct {
	public, ops string
	proc        *proc
	config      string // path of its config file
}

type soakOpts struct {
	upstream string // host:port
	storage  string
	sessions string
	spool    string // "" for a fresh one
	extra    string // more YAML (keys not set above)
	routes   string // YAML list items under routes:; "" for the default set
}

const soakRoutes = `  - {path: /anything/app, mode: gateway, audit: true}
  - {path: /anything/dual, mode: dual}
  - {path: /anything/static, mode: public}
  - {path: /stream, mode: gateway}
`

func soakYAML(t *testing.T, o soakOpts) string {
	t.Helper()
	if o.spool == "" {
		o.spool = filepath.Join(t.TempDir(), "spool")
	}
	if o.routes == "" {
		o.routes = soakRoutes
	}
	return fmt.Sprintf(`listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
upstream: {url: "http://%s", timeout: 1s, dial_timeout: 500ms, idle_conn_timeout: 2s}
storage: {url: %q}
sessions: {url: %q, cookie_name: portero_session, cookie_secure: false, cache_ttl: `+soakCacheTTL.String()+`}
secret_key: %q
server: {shutdown_grace: 5s, read_header_timeout: 3s, own_timeout: 2s}
audit: {spool_dir: %q}
lockout: {ip_max_attempts: 1000000}
legacy: {jwt_secret: "soak-legacy-secret-0123456789abcdef"}
log: {level: info, format: json}
%sroutes:
%s`, o.upstream, o.storage, o.sessions, soakSecret, o.spool, o.extra, o.routes)
}

// soakCacheTTL is sessions.cache_ttl, stated so the Redis scenarios can
// rely on it: a session validated this recently is answered from memory.
const soakCacheTTL = 2 * time.Second

func soakStart(t *testing.T, o soakOpts) *soakStack {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "portero.yaml")
	if err := os.WriteFile(cfg, []byte(soakYAML(t, o)), 0o600); err != nil {
		t.Fatal(err)
	}
	return soakStartFile(t, cfg)
}

func soakStartFile(t *testing.T, cfg string) *soakStack {
	t.Helper()
	p, m := startWithEnv(t, []string{"PORTERO_ADMIN_EMAIL=" + soakAdminEmail, "PORTERO_ADMIN_PASSWORD=" + soakAdminPassword},
		regexp.MustCompile(`"listen":"([^"]+)","ops_listen":"([^"]+)"`), "portero", "serve", "--config", cfg)
	return &soakStack{public: "http://" + m[1], ops: "http://" + m[2], proc: p, config: cfg}
}

// soakClient never waits longer than 15s: a hang shows as an error with
// its duration, not as a stuck test.
var soakClient = &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type result struct {
	status int
	body   string
	took   time.Duration
	err    error
}

func call(method, url, token, body string) result {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return result{err: err}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	res, err := soakClient.Do(req)
	if err != nil {
		return result{err: err, took: time.Since(start)}
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return result{status: res.StatusCode, body: string(b), took: time.Since(start)}
}

func loginBody(email, password string) string {
	b, _ := json.Marshal(map[string]string{"username": email, "password": password})
	return string(b)
}

// login returns a bearer token or fails the test.
func login(t *testing.T, public, email, password string) string {
	t.Helper()
	r := call("POST", public+"/auth/login", "", loginBody(email, password))
	if r.err != nil || r.status != 200 {
		t.Fatalf("login %s: %d %v %s", email, r.status, r.err, r.body)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.AccessToken == "" {
		t.Fatalf("login body %q", r.body)
	}
	return out.AccessToken
}

// expect checks a result's status and that it came within bound (0: any).
func expect(t *testing.T, what string, r result, status int, bound time.Duration) {
	t.Helper()
	switch {
	case r.err != nil:
		t.Errorf("%s: %v after %v, want %d", what, r.err, r.took, status)
	case r.status != status:
		t.Errorf("%s: %d %s, want %d", what, r.status, strings.TrimSpace(r.body), status)
	case bound > 0 && r.took > bound:
		t.Errorf("%s: answered %d after %v, want within %v", what, r.status, r.took, bound)
	}
}

// figure logs a measurement for RELIABILITY.md.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("figure: %s: "+format, append([]any{t.Name()}, args...)...)
}

// latencies collects durations from concurrent callers.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

func (l *latencies) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return "n=0"
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))].Round(time.Millisecond) }
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", len(s), q(0.5), q(0.99), s[len(s)-1].Round(time.Millisecond))
}

// eventually retries f until it reports true or the deadline passes, and
// returns how long it took.
func eventually(t *testing.T, what string, within time.Duration, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// soakRedisFaults: Redis killed, frozen, flapping and restarted empty.
// Gateway routes answer 503 within the configured Redis timeouts (500ms
// read, one retry) and never hang; legacy and public routes and /-/healthz
// are untouched; logins fail with 503; a returning Redis serves the old
// sessions with no restart of portero; an empty one makes users log in
// again (401), nothing else.
func soakRedisFaults(t *testing.T, env soakEnv) {
	rd := newSoakRedis(t)
	st := soakStart(t, soakOpts{upstream: env.upstream, storage: env.pg.newDatabase(t),
		sessions: rd.url("read_timeout=500ms&write_timeout=500ms&dial_timeout=300ms")})
	tok := login(t, st.public, soakAdminEmail, soakAdminPassword)
	expect(t, "gateway route, Redis up", call("GET", st.public+"/anything/app/x", tok, ""), 200, 0)
	soakClient.CloseIdleConnections()
	before := metricsOf(t, st.ops)

	// Two tries of a 500ms read, plus a dial: answers must come well
	// within 1.5s.
	const bound = 1500 * time.Millisecond
	duringFault := func(phase string) {
		t.Helper()
		var gw, lg latencies
		for i := range 10 {
			r := call("GET", st.public+"/anything/app/x", tok, "")
			gw.add(r.took)
			expect(t, phase+": gateway route", r, 503, bound)
			r = call("GET", st.public+"/anything/dual/x", tok, "")
			expect(t, phase+": dual route", r, 503, bound)
			r = call("GET", st.public+"/anything/legacy", "", "")
			expect(t, phase+": legacy route", r, 200, 0)
			expect(t, phase+": public route", call("GET", st.public+"/anything/static", "", ""), 200, 0)
			if i < 3 {
				r = call("POST", st.public+"/auth/login", "", loginBody(soakAdminEmail, soakAdminPassword))
				lg.add(r.took)
				expect(t, phase+": login", r, 503, bound+time.Second) // plus one argon2 hash
			}
		}
		expect(t, phase+": healthz", call("GET", st.public+"/-/healthz", "", ""), 200, 200*time.Millisecond)
		r := call("GET", st.ops+"/-/readyz", "", "")
		if r.status != 503 || !strings.Contains(r.body, `"redis":"unavailable"`) {
			t.Errorf("%s: readyz %d %s", phase, r.status, r.body)
		}
		figure(t, "%s: gateway 503 latency %v; login 503 latency %v", phase, &gw, &lg)
	}
	recovered := func(phase string) {
		t.Helper()
		took := eventually(t, phase+": the old session works again", 5*time.Second, func() bool {
			return call("GET", st.public+"/anything/app/x", tok, "").status == 200
		})
		figure(t, "%s: old session served again %v after Redis returned (no portero restart)", phase, took.Round(time.Millisecond))
	}

	rd.kill()
	// The session cache hears of a dead Redis as soon as its subscription
	// breaks, a moment after the kill: the promise is 503s within
	// sessions.cache_ttl, so that is what is checked (as when frozen).
	time.Sleep(soakCacheTTL)
	duringFault("killed")
	rd.start()
	recovered("killed")

	rd.freeze()
	// A frozen Redis breaks no connection, so nothing tells Portero at
	// once: sessions it validated in the last sessions.cache_ttl are
	// still answered from memory (a revocation cannot complete meanwhile:
	// it needs Redis too). Past that, every check goes to Redis and fails
	// within the timeouts; after 3 s of silence the cache stands aside.
	time.Sleep(soakCacheTTL)
	duringFault("frozen")
	rd.thaw()
	recovered("frozen")

	// Flapping: frozen 700ms (past the read timeout), thawed 300ms, six
	// times, under 8 clients.
	var mu sync.Mutex
	codes := map[int]int{}
	var worst latencies
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := call("GET", st.public+"/anything/app/x", tok, "")
				worst.add(r.took)
				mu.Lock()
				if r.err != nil {
					codes[-1]++
				} else {
					codes[r.status]++
				}
				mu.Unlock()
			}
		}()
	}
	for range 6 {
		rd.freeze()
		time.Sleep(700 * time.Millisecond)
		rd.thaw()
		time.Sleep(300 * time.Millisecond)
	}
	rd.thaw()
	close(stop)
	wg.Wait()
	figure(t, "flapping: answers by status %v; latency %v", codes, &worst)
	for code, n := range codes {
		if code != 200 && code != 503 {
			t.Errorf("flapping: %d answers with status %d (want only 200 and 503)", n, code)
		}
	}
	if codes[200] == 0 || codes[503] == 0 {
		t.Errorf("flapping: want both 200s and 503s, got %v", codes)
	}
	recovered("flapping")

	// An empty Redis: the session is gone, so 401 (never 500); a new login works.
	// Emptying Redis revokes nothing, so no broadcast drops the copy this
	// instance holds: it goes when the subscription breaks, a moment after
	// the kill, and the promise is within sessions.cache_ttl (as above). A
	// restart quicker than that moment (25 ms in one CI run) could still
	// meet the copy, so the restart waits as long.
	rd.kill()
	rd.wipe()
	time.Sleep(soakCacheTTL)
	rd.start()
	expect(t, "empty Redis: old session", call("GET", st.public+"/anything/app/x", tok, ""), 401, bound)
	expect(t, "empty Redis: legacy route", call("GET", st.public+"/anything/legacy", "", ""), 200, 0)
	tok = login(t, st.public, soakAdminEmail, soakAdminPassword)
	expect(t, "empty Redis: after a new login", call("GET", st.public+"/anything/app/x", tok, ""), 200, 0)
	expect(t, "empty Redis: readyz", call("GET", st.ops+"/-/readyz", "", ""), 200, 0)

	// Nothing left behind by the outages: go-redis's pool holds no
	// goroutines, and the requests that failed released theirs. (Pooled
	// upstream connections, two goroutines each, close after the soak's
	// 2s idle_conn_timeout.)
	soakClient.CloseIdleConnections()
	var after map[string]float64
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		after = metricsOf(t, st.ops)
		if after["go_goroutines"] <= before["go_goroutines"]+3 {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Errorf("goroutines %v before the faults, %v 10s after", before["go_goroutines"], after["go_goroutines"])
			_ = st.proc.cmd.Process.Signal(syscall.SIGQUIT) // the stacks go to the log printed below
			time.Sleep(time.Second)
			break
		}
	}
	figure(t, "goroutines before the faults %v, after %v", before["go_goroutines"], after["go_goroutines"])
}

// soakPostgresFaults: PostgreSQL stopped and frozen. Logins and admin calls
// answer 503 within bounds; requests with a live session keep being proxied
// (the identity is in the Redis session); their audit events are spooled
// and all delivered, exactly once, after recovery.
func soakPostgresFaults(t *testing.T, env soakEnv) {
	rd := newSoakRedis(t)
	db := env.pg.newDatabase(t)
	st := soakStart(t, soakOpts{upstream: env.upstream, storage: db, sessions: rd.url("")})
	tok := login(t, st.public, soakAdminEmail, soakAdminPassword)
	audited := 0
	get := func(phase string) {
		t.Helper()
		r := call("GET", st.public+"/anything/app/x", tok, "")
		expect(t, phase+": gateway route with a live session", r, 200, time.Second)
		audited++
	}
	for range 20 {
		get("up")
	}
	expect(t, "up: admin list", call("GET", st.public+"/users", tok, ""), 200, 0)

	const bound = 3 * time.Second
	duringFault := func(phase string) {
		t.Helper()
		var lg, adm latencies
		for i := range 30 {
			get(phase)
			if i%10 == 0 {
				r := call("POST", st.public+"/auth/login", "", loginBody(soakAdminEmail, soakAdminPassword))
				lg.add(r.took)
				expect(t, phase+": login", r, 503, bound)
				r = call("GET", st.public+"/users", tok, "")
				adm.add(r.took)
				expect(t, phase+": admin list", r, 503, bound)
			}
		}
		expect(t, phase+": healthz", call("GET", st.public+"/-/healthz", "", ""), 200, 200*time.Millisecond)
		figure(t, "%s: login 503 latency %v; admin 503 latency %v", phase, &lg, &adm)
	}

	// Frozen first, while the pool holds live connections: a query on one
	// of them must not wait forever.
	env.pg.freeze()
	duringFault("frozen")
	env.pg.thaw()
	for range 10 {
		get("thawed")
	}
	expect(t, "thawed: admin list", call("GET", st.public+"/users", tok, ""), 200, 0)

	env.pg.stop()
	duringFault("stopped")
	env.pg.start()
	for range 10 {
		get("restarted")
	}
	eventually(t, "restarted: admin list", 10*time.Second, func() bool {
		return call("GET", st.public+"/users", tok, "").status == 200
	})

	q := `SELECT count(*) FROM audit_logs WHERE action = 'proxy.access'`
	var rows int
	took := eventually(t, "spooled audit events delivered", 30*time.Second, func() bool {
		rows = env.pg.count(t, db, q)
		if rows < audited {
			t.Logf("%d of %d access rows so far", rows, audited)
		}
		return rows >= audited
	})
	time.Sleep(time.Second) // anything extra would show now
	rows = env.pg.count(t, db, q)
	distinct := env.pg.count(t, db, `SELECT count(DISTINCT event_id) FROM audit_logs WHERE action = 'proxy.access'`)
	figure(t, "audited requests %d; proxy.access rows %d (%d distinct); spool drained %v after the last recovery", audited, rows, distinct, took.Round(time.Millisecond))
	if rows != audited || distinct != audited {
		t.Errorf("audit_logs has %d access rows (%d distinct), want exactly %d", rows, distinct, audited)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
