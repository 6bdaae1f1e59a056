//go:build loadharness

package main

// The load harness of `make bench` (issue #10): every system under test is a
// process of its own (demo-upstream, a bare httputil.ReverseProxy, and
// Portero in each mode), driven over loopback by the closed-loop generator
// of loadgen_test.go, rounds interleaved so machine noise hits every row
// alike. It prints one table and writes it as Markdown for BENCHMARKS.md.
//
//	go test -tags loadharness -run '^TestLoadHarness$' -v -timeout 30m ./cmd/portero
//
// Environment (scripts/bench.sh sets the services and BENCH_OUT):
//
//	BENCH_QUICK=1       fewer, shorter rounds: under two minutes
//	BENCH_ROUNDS=N      rounds per row (default 7, quick 3)
//	BENCH_DURATION=3s   length of one measured run (default 3s, quick 1s)
//	BENCH_PROFILE=DIR   CPU and heap profiles of Portero in gateway mode (DIR/audited: with access audit)
//	BENCH_OUT=DIR       where results.md goes (default ../../.tmp/bench)

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/sessions/sessionstest"
	"github.com/portero/portero/storage/storagetest"
)

// harnessSettings are the knobs of one harness run.
type harnessSettings struct {
	quick    bool
	rounds   int
	run      time.Duration // one measured run
	warm     time.Duration // per target, before the rounds
	conns    int           // throughput pass
	lowConns int           // latency pass (p99 added)
	manyConn int           // the RSS check's keep-alive connections
	login    time.Duration
	rawHash  time.Duration
	profile  string // directory for profiles, "" for none
	out      string
}

// benchSlice is how long one side of a pair runs before the other takes
// over: short enough that both meet the same moments of a wandering
// machine, long enough (thousands of requests) that switching costs
// nothing measurable.
const benchSlice = 500 * time.Millisecond

func loadHarnessSettings(t *testing.T) harnessSettings {
	s := harnessSettings{rounds: 7, run: 3 * time.Second, warm: time.Second, conns: 50, lowConns: 10,
		manyConn: 1000, login: 8 * time.Second, rawHash: 5 * time.Second, out: "../../.tmp/bench"}
	if os.Getenv("BENCH_QUICK") == "1" {
		s.quick, s.rounds, s.run, s.warm, s.login, s.rawHash = true, 3, time.Second, 300*time.Millisecond, 3*time.Second, 2*time.Second
	}
	if v := os.Getenv("BENCH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BENCH_ROUNDS=%q: want a positive number", v)
		}
		s.rounds = n
	}
	if v := os.Getenv("BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("BENCH_DURATION=%q: want a duration such as 4s", v)
		}
		s.run = d
	}
	if v := os.Getenv("BENCH_OUT"); v != "" {
		s.out = v
	}
	s.profile = os.Getenv("BENCH_PROFILE")
	return s
}

// The harness's fixed facts.
const (
	benchSecret       = "bench-secret-key-with-enough-bytes-0123456789"
	benchLegacySecret = "bench-legacy-app-secret"
	benchPassword     = "Tq7!vZp2wK-harness"
	benchEmail        = "bench@example.com"
	// benchPath is what every row requests: demo-upstream answers 64 fixed
	// bytes with a Content-Length, about the cheapest answer it has, so the
	// table shows what the proxies add rather than the upstream's work
	// (/anything would JSON-encode every request header, and more of them
	// on authenticated routes).
	benchPath = "/bytes/64"
)

func TestLoadHarness(t *testing.T) {
	s := loadHarnessSettings(t)
	started := time.Now()
	loadBefore := loadAverage()
	progress := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "harness %6.1fs  %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}

	// --- the systems under test ---------------------------------------------
	dir := t.TempDir()
	for _, yardstick := range []string{"bareproxy", "hashrate"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, yardstick), "./testdata/"+yardstick)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", yardstick, err, out)
		}
	}
	hashrate := filepath.Join(dir, "hashrate")
	addrLine := regexp.MustCompile(`addr=(\S+)`)
	upstream, m := startBenchProc(t, "demo-upstream", addrLine, filepath.Join(binDir, "demo-upstream"), "-listen", "127.0.0.1:0")
	upstreamURL := "http://" + m[1]
	bare, m := startBenchProc(t, "bareproxy", addrLine, filepath.Join(dir, "bareproxy"), "-listen", "127.0.0.1:0", "-upstream", upstreamURL)
	bareURL := "http://" + m[1]

	redisURL := os.Getenv("PORTERO_TEST_REDIS")
	if redisURL == "" {
		redisURL = sessionstest.DefaultRedis
	}
	_, prefix := sessionstest.RedisClient(t, "bench") // its keys are deleted at the end
	base := fmt.Sprintf(`listen: "127.0.0.1:0"
ops_listen: "127.0.0.1:0"
upstream: {url: %q, timeout: 10s}
storage: {url: %q}
sessions: {url: %q, key_prefix: %q}
secret_key: %q
legacy: {jwt_secret: %q, subject: email}
log: {level: info, format: json}
default_mode: legacy
`, upstreamURL, storagetest.NewPostgresURL(t), redisURL, prefix, benchSecret, benchLegacySecret)

	// One Portero process per configuration, all sharing the database and
	// the Redis prefix (as instances of one deployment do), so one login
	// serves every row. Each row's peak RSS is its own process's.
	instance := func(name, extra string) *benchPortero {
		cfg := base + fmt.Sprintf("audit: {spool_dir: %q}\n", filepath.Join(dir, "spool-"+name)) + extra
		return startBenchPortero(t, name, filepath.Join(dir, name+".yaml"), cfg)
	}
	route := func(mode, more string) string {
		return fmt.Sprintf("routes:\n  - {path: /bytes, mode: %s%s}\n", mode, more)
	}
	pprofYAML := ""
	if s.profile != "" {
		pprofYAML = "debug: {pprof: true}\n"
	}
	login := instance("login", "")
	legacy := instance("legacy", "")
	gateway := instance("gateway", route("gateway", "")+pprofYAML)
	dual := instance("dual", route("dual", ""))
	audited := instance("audited", route("gateway", ", audit: true")+pprofYAML)
	many := instance("conns", route("gateway", ""))
	progress("started demo-upstream, bareproxy and 6 Portero processes")

	// --- credentials --------------------------------------------------------
	loginWorkers := 2 * runtime.NumCPU()
	register(t, login.public, benchEmail)
	for w := range loginWorkers {
		register(t, login.public, loginEmail(w))
	}
	cookie := cookieLogin(t, login.public, benchEmail)
	bearer := "Bearer " + tokenLogin(t, login.public, benchEmail)
	lt, err := authn.NewLegacyTokens(authn.LegacyConfig{Secret: []byte(benchLegacySecret), Subject: authn.LegacySubjectEmail})
	if err != nil {
		t.Fatal(err)
	}
	legacyJWT, err := lt.Mint(authn.LegacySubject{Email: benchEmail}, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	progress("registered %d users, signed in", loginWorkers+1)

	// --- the rows -----------------------------------------------------------
	get := func(base string, header ...string) func(ctx context.Context, _ int) *http.Request {
		return func(ctx context.Context, _ int) *http.Request {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+benchPath, nil)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			return req
		}
	}
	// Every row has a bare twin: the same request (the same cookie or
	// token) sent through the bare proxy, which forwards it as it is. The
	// row's ratio is to its twin, so both sides carry the same bytes from
	// the client.
	type target struct {
		name           string
		proc           *benchProc
		req, bareReq   func(ctx context.Context, w int) *http.Request
		clients        loadClients // keep-alive connections to proc, kept across runs
		runs, bareRuns []loadRun
		anonymous      bool // carries no credentials
	}
	newTarget := func(name string, proc *benchProc, base string, header ...string) *target {
		c := newLoadClients(s.conns)
		t.Cleanup(c.close)
		return &target{name: name, proc: proc, req: get(base, header...), bareReq: get(bareURL, header...), clients: c, anonymous: len(header) == 0}
	}
	bareClients := newLoadClients(s.conns)
	t.Cleanup(bareClients.close)
	bareT := newTarget("bare httputil.ReverseProxy", bare, bareURL)
	gatewayCookie := newTarget("Portero gateway, Redis session (cookie)", gateway.proc, gateway.public, "Cookie", cookie)
	auditedCookie := newTarget("Portero gateway + access audit (cookie)", audited.proc, audited.public, "Cookie", cookie)
	targets := []*target{
		newTarget("upstream direct (demo-upstream)", upstream, upstreamURL),
		newTarget("Portero legacy", legacy.proc, legacy.public),
		gatewayCookie,
		newTarget("Portero gateway, Redis session (bearer)", gateway.proc, gateway.public, "Authorization", bearer),
		newTarget("Portero dual, legacy JWT", dual.proc, dual.public, "Authorization", "Bearer "+legacyJWT),
		auditedCookie,
	}
	for _, tg := range append([]*target{bareT}, targets...) {
		if r := driveLoad(1, 100*time.Millisecond, http.StatusOK, tg.req); r.requests == 0 {
			t.Fatalf("%s answers no request with 200: %s", tg.name, r.firstErr)
		}
		tg.clients.drive(s.warm, http.StatusOK, tg.req)
		bareClients.drive(s.warm/4, http.StatusOK, tg.bareReq)
	}
	progress("warmed up; %d rounds of %s per row at %d connections", s.rounds, s.run, s.conns)

	var tableSteal machineCPU // summed over the table's runs
	// side is one half of a pair: a server, its clients and its request,
	// and what its slices added up to.
	type side struct {
		proc                                *benchProc
		clients                             loadClients
		req                                 func(ctx context.Context, w int) *http.Request
		sample                              loadSample
		cpu, upstreamCPU, machine, postgres time.Duration
	}
	// measurePair runs a row and its bare twin for s.run each, in slices
	// of benchSlice taken in turn (twin, row, twin, row, …), so both meet
	// the same moments of a machine whose speed wanders by tens of
	// percent within seconds; each slice's CPU time (the server's, the
	// upstream's, the machine's) is charged to that side.
	measurePair := func(twin, row *side) (twinRun, rowRun loadRun) {
		slices := max(1, int(s.run/benchSlice))
		for range slices {
			for _, sd := range []*side{twin, row} {
				// postgresCPU walks /proc; its own CPU stays outside the
				// machine's readings (operands run left to right).
				pg0, cpu0, up0, m0 := postgresCPU(t), procCPU(t, sd.proc.pid()), procCPU(t, upstream.pid()), readMachineCPU(t)
				sd.sample.add(sd.clients.drive(s.run/time.Duration(slices), http.StatusOK, sd.req))
				m1 := readMachineCPU(t)
				sd.cpu += procCPU(t, sd.proc.pid()) - cpu0
				sd.upstreamCPU += procCPU(t, upstream.pid()) - up0
				sd.machine += m1.busy - m0.busy
				sd.postgres += postgresCPU(t) - pg0
				tableSteal.busy += m1.busy - m0.busy
				tableSteal.steal += m1.steal - m0.steal
			}
		}
		result := func(sd *side) loadRun {
			run := sd.sample.run()
			if n := time.Duration(run.requests); n > 0 {
				run.cpuPerReq, run.upstreamCPUPerReq, run.machineCPUPerReq = sd.cpu/n, sd.upstreamCPU/n, sd.machine/n
				run.postgresCPUPerReq = sd.postgres / n
			}
			return run
		}
		return result(twin), result(row)
	}

	// Every run goes to runs.tsv as well, in the order it ran.
	runsTSV := []string{"round\trow\trun\treq/s\tCPU µs/req\tupstream µs/req\tmachine µs/req\tpostgres µs/req"}
	logPair := func(round int, name string, twin, row loadRun) {
		for _, r := range []struct {
			kind string
			m    loadRun
		}{{"twin", twin}, {"row", row}} {
			runsTSV = append(runsTSV, fmt.Sprintf("%d\t%s\t%s\t%.0f\t%d\t%d\t%d\t%d", round, name, r.kind, r.m.rps,
				r.m.cpuPerReq.Microseconds(), r.m.upstreamCPUPerReq.Microseconds(), r.m.machineCPUPerReq.Microseconds(),
				r.m.postgresCPUPerReq.Microseconds()))
		}
	}

	// Throughput: every row paired with its bare twin, in every round. The
	// bare row itself is the twins that carried no credentials.
	for r := range s.rounds {
		for _, tg := range targets {
			twin, run := measurePair(&side{proc: bare, clients: bareClients, req: tg.bareReq},
				&side{proc: tg.proc, clients: tg.clients, req: tg.req})
			tg.bareRuns = append(tg.bareRuns, twin)
			if tg.anonymous {
				bareT.runs = append(bareT.runs, twin)
			}
			tg.runs = append(tg.runs, run)
			logPair(r+1, tg.name, twin, run)
		}
		progress("round %d/%d done", r+1, s.rounds)
	}

	// Latency at low concurrency: the p99 a request gains through Portero.
	var lowBare, lowGateway []loadRun
	lowBareClients, lowGatewayClients := newLoadClients(s.lowConns), newLoadClients(s.lowConns)
	t.Cleanup(lowBareClients.close)
	t.Cleanup(lowGatewayClients.close)
	for r := range s.rounds {
		twin, run := measurePair(&side{proc: bare, clients: lowBareClients, req: gatewayCookie.bareReq},
			&side{proc: gateway.proc, clients: lowGatewayClients, req: gatewayCookie.req})
		lowBare, lowGateway = append(lowBare, twin), append(lowGateway, run)
		logPair(r+1, fmt.Sprintf("%s, %d connections", gatewayCookie.name, s.lowConns), twin, run)
	}
	progress("latency pass at %d connections done", s.lowConns)

	// Logins against the raw hash rate of the same argon2id parameters,
	// measured by a fresh process of its own while every server idles;
	// alternated three times like the proxy rows, since other work on the
	// machine moves both. The raw rate is golang.org/x/crypto's argon2id,
	// the yardstick; Portero's hashing pool computes the same
	// function in reused memory and is measured alone too (no HTTP, no
	// stores), so the table shows both what the hashing gained and what a
	// login costs beyond it.
	loginReq := func(ctx context.Context, w int) *http.Request {
		body := fmt.Sprintf(`{"username":%q,"password":%q}`, loginEmail(w), benchPassword)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, login.public+"/auth/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return req
	}
	// Warmed up like every other row: a fresh instance's first logins grow
	// its database and Redis pools and its heap, and take up to a second.
	driveLoad(loginWorkers, time.Second, http.StatusOK, loginReq)
	var rawRates, poolRates []float64
	var loginRuns []loadRun
	for range 3 {
		rawRates = append(rawRates, hashRate(t, hashrate, "xcrypto", s.rawHash/2))
		poolRates = append(poolRates, hashRate(t, hashrate, "pool", s.rawHash/2))
		loginRuns = append(loginRuns, driveLoad(loginWorkers, s.login/2, http.StatusOK, loginReq))
	}
	rawRate, poolRate, loginRun := median(rawRates), median(poolRates), medianRun(loginRuns)
	var loginPerRound, loginPerPool []float64
	for i, run := range loginRuns {
		loginPerRound = append(loginPerRound, run.rps/rawRates[i])
		loginPerPool = append(loginPerPool, run.rps/poolRates[i])
	}
	progress("logins done: %.1f/s against %.1f raw hashes/s (x/crypto), %.1f through Portero's hashing pool alone", loginRun.rps, rawRate, poolRate)

	// Memory at many keep-alive connections, on a Portero of its own so its
	// peak is that of this check alone.
	manyErrs := holdConnections(t, many.public, s.manyConn, "Cookie", cookie)
	manyRSS := procMemory(t, many.proc.pid(), "VmRSS")
	manyHWM := procMemory(t, many.proc.pid(), "VmHWM")
	progress("%d keep-alive connections: RSS %.1f MiB, peak %.1f MiB", s.manyConn, manyRSS, manyHWM)

	// Profiles last, on a run of their own: profiling costs CPU, and the
	// table's runs must not pay it.
	var profileTop string
	if s.profile != "" {
		profileTop = profileInstance(t, s, s.profile, gateway, gatewayCookie.req)
		profileInstance(t, s, filepath.Join(s.profile, "audited"), audited, auditedCookie.req)
		progress("profiles written to %s (gateway) and %s", s.profile, filepath.Join(s.profile, "audited"))
	}

	// --- the table ----------------------------------------------------------
	bareMed := medianRun(bareT.runs)
	row := func(name string, conns int, m loadRun, p *benchProc, base float64) tableRow {
		r := tableRow{name: name, conns: conns, rps: m.rps, p50: m.p50, p99: m.p99, p999: m.p999,
			errors: m.errors, rssMiB: procMemory(t, p.pid(), "VmHWM"), cpu: m.cpuPerReq, upstreamCPU: m.upstreamCPUPerReq, machineCPU: m.machineCPUPerReq,
			postgresCPU: m.postgresCPUPerReq, bareRPS: base}
		if base > 0 {
			r.ratio = m.rps / base
		}
		return r
	}
	rows := []tableRow{row(bareT.name, s.conns, bareMed, bare, bareMed.rps)}
	for _, tg := range targets {
		r := row(tg.name, s.conns, medianRun(tg.runs), tg.proc, medianRun(tg.bareRuns).rps)
		r.paired(pairRatios(tg.runs, tg.bareRuns))
		rows = append(rows, r)
	}
	lowBareMed, lowGatewayMed := medianRun(lowBare), medianRun(lowGateway)
	lowRow := row(gatewayCookie.name, s.lowConns, lowGatewayMed, gateway.proc, lowBareMed.rps)
	lowRow.paired(pairRatios(lowGateway, lowBare))
	rows = append(rows,
		row(bareT.name, s.lowConns, lowBareMed, bare, lowBareMed.rps),
		lowRow,
		tableRow{name: fmt.Sprintf("raw argon2id, x/crypto (m=%d KiB, t=%d, p=%d), hashes/s", authn.DefaultArgon2Params().Memory, authn.DefaultArgon2Params().Time, authn.DefaultArgon2Params().Threads),
			conns: runtime.NumCPU(), rps: rawRate, errors: -1, ratio: 1},
		tableRow{name: "Portero's hashing pool alone, same parameters, hashes/s",
			conns: runtime.NumCPU(), rps: poolRate, errors: -1, ratio: poolRate / rawRate},
		tableRow{name: "Portero POST /auth/login, logins/s", conns: loginWorkers, rps: loginRun.rps, p50: loginRun.p50,
			p99: loginRun.p99, p999: loginRun.p999, errors: loginRun.errors, rssMiB: procMemory(t, login.proc.pid(), "VmHWM"),
			ratio: median(loginPerRound), perRound: loginPerRound},
		tableRow{name: fmt.Sprintf("Portero gateway, %d keep-alive conns held", s.manyConn), conns: s.manyConn,
			errors: manyErrs, rssMiB: manyHWM},
	)

	var report strings.Builder
	fmt.Fprintf(&report, "date %s, commit %s, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), gitCommit(), runtime.Version())
	fmt.Fprintf(&report, "machine: %d cores (%s), load average before %s, after %s\n", runtime.NumCPU(), cpuModel(), loadBefore, loadAverage())
	fmt.Fprintf(&report, "method: %d rounds of %s per row and as much for its bare twin (the same request through the bare proxy), taken in turns of %s on kept-alive connections; figures are medians across rounds, and a ratio is the median of the rounds' ratios of a row to its twin (\"per round\": the lowest and highest of them); GET %s\n",
		s.rounds, s.run, min(s.run, benchSlice), benchPath)
	fmt.Fprintf(&report, "ratios: each row to its bare twin (same connections, same cookie or token; \"bare req/s\"); hashes and logins to the raw x/crypto hash rate\n")
	if tableSteal.busy > 0 {
		fmt.Fprintf(&report, "steal: the hypervisor took %.1f %% of the CPU time the table's runs had (/proc/stat)\n",
			100*float64(tableSteal.steal)/float64(tableSteal.busy+tableSteal.steal))
	}
	fmt.Fprintf(&report, "logins: %.2f× the raw x/crypto argon2id rate, %.2f× Portero's hashing pool alone\n", median(loginPerRound), median(loginPerPool))
	fmt.Fprintf(&report, "p99 added at %d connections (gateway, cookie): %.2f ms\n", s.lowConns,
		float64(lowGatewayMed.p99-lowBareMed.p99)/float64(time.Millisecond))
	if manyRSS > 0 {
		fmt.Fprintf(&report, "%d keep-alive connections held: RSS %.1f MiB now, %.1f MiB peak\n", s.manyConn, manyRSS, manyHWM)
	}

	text := report.String() + "\n" + formatText(rows)
	fmt.Println("\n" + text)
	if profileTop != "" {
		fmt.Println(profileTop)
	}
	md := "```\n" + report.String() + "```\n\n" + formatMarkdown(rows)
	if profileTop != "" {
		md += "\nCPU profile of the gateway run (cookie), by cumulative time:\n\n```\n" + profileTop + "```\n"
	}
	if err := os.MkdirAll(s.out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.out, "runs.tsv"), []byte(strings.Join(runsTSV, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(s.out, "results.md")
	if err := os.WriteFile(outFile, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("table written to %s\n", outFile)

	for _, r := range rows {
		if r.errors > 0 {
			t.Errorf("%s: %d requests failed", r.name, r.errors)
		}
	}
	for _, tg := range append([]*target{bareT}, targets...) {
		if m := medianRun(tg.runs); m.firstErr != "" {
			t.Logf("%s: first failure: %s", tg.name, m.firstErr)
		}
	}
	if loginRun.firstErr != "" {
		t.Logf("logins: first failure: %s", loginRun.firstErr)
	}
}

func loginEmail(w int) string { return fmt.Sprintf("login-%d@example.com", w) }

// --- processes -----------------------------------------------------------

// benchProc is a server process under test. Its output is kept only as a
// tail: the access log of a load run is hundreds of megabytes.
type benchProc struct {
	name string
	cmd  *exec.Cmd
	tail *tailBuffer
}

func (p *benchProc) pid() int { return p.cmd.Process.Pid }

// startBenchProc runs a binary and waits for a line of its stderr that
// matches waitFor; the rest of its output is drained into a tail buffer.
func startBenchProc(t *testing.T, name string, waitFor *regexp.Regexp, path string, args ...string) (*benchProc, []string) {
	t.Helper()
	p := &benchProc{name: name, cmd: exec.Command(path, args...), tail: &tailBuffer{max: 64 << 10}}
	p.cmd.Env = append(os.Environ(), "PORTERO_CONFIG=")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan []string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReaderSize(stderr, 64<<10)
		for {
			line, err := br.ReadString('\n')
			_, _ = p.tail.Write([]byte(line))
			if m := waitFor.FindStringSubmatch(line); m != nil {
				found <- m
				break
			}
			if err != nil {
				return
			}
		}
		_, _ = io.Copy(p.tail, br)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("%s output (tail):\n%s", name, p.tail)
		}
	})
	select {
	case m := <-found:
		return p, m
	case <-done:
		_ = p.cmd.Wait()
		t.Fatalf("%s exited early:\n%s", name, p.tail)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start:\n%s", name, p.tail)
	}
	return nil, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// benchPortero is one `portero serve` process.
type benchPortero struct {
	proc        *benchProc
	public, ops string // base URLs
}

func startBenchPortero(t *testing.T, name, cfgPath, cfg string) *benchPortero {
	t.Helper()
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p, m := startBenchProc(t, "portero "+name, regexp.MustCompile(`"listen":"([^"]+)","ops_listen":"([^"]+)"`),
		filepath.Join(binDir, "portero"), "serve", "--config", cfgPath)
	return &benchPortero{proc: p, public: "http://" + m[1], ops: "http://" + m[2]}
}

// procMemory reads a memory figure (VmRSS, VmHWM) of a process, in MiB.
func procMemory(t *testing.T, pid int, field string) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Logf("reading the memory of pid %d: %v", pid, err)
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

// machineCPU is the whole machine's CPU time from /proc/stat: busy is what
// every process and the kernel ran (user, nice, system, irq, softirq);
// steal is time the hypervisor gave to other guests while this one had
// work.
type machineCPU struct{ busy, steal time.Duration }

func readMachineCPU(t *testing.T) machineCPU {
	t.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Logf("reading /proc/stat: %v", err)
		return machineCPU{}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machineCPU{}
	}
	tick := func(i int) time.Duration {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(n) * 10 * time.Millisecond // USER_HZ
	}
	// user nice system idle iowait irq softirq steal
	return machineCPU{busy: tick(1) + tick(2) + tick(3) + tick(6) + tick(7), steal: tick(8)}
}

// procCPU reads the user plus system CPU time a process has used so far.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Logf("reading the CPU time of pid %d: %v", pid, err)
		return 0
	}
	return statCPU(string(data), false)
}

// postgresCPU is the CPU time every PostgreSQL process has used so far:
// the postmaster, its backends and workers, and (through the postmaster's
// cutime and cstime) the backends and workers that have exited.
func postgresCPU(t *testing.T) time.Duration {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Logf("listing processes: %v", err)
		return 0
	}
	var sum time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // gone meanwhile
		}
		if !strings.Contains(string(data), " (postgres) ") {
			continue
		}
		sum += statCPU(string(data), true)
	}
	return sum
}

// --- credentials ---------------------------------------------------------

func postJSON(t *testing.T, url, body string) *http.Response {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func register(t *testing.T, public, email string) {
	t.Helper()
	res := postJSON(t, public+"/auth/register", fmt.Sprintf(`{"email":%q,"password":%q}`, email, benchPassword))
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(res.Body)
		t.Fatalf("register %s: %d %s", email, res.StatusCode, body)
	}
}

// cookieLogin signs in the browser way and returns the Cookie header value.
func cookieLogin(t *testing.T, public, email string) string {
	t.Helper()
	res := postJSON(t, public+"/auth/cookie/login", fmt.Sprintf(`{"username":%q,"password":%q}`, email, benchPassword))
	defer res.Body.Close()
	for _, c := range res.Cookies() {
		if c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	body, _ := io.ReadAll(res.Body)
	t.Fatalf("cookie login: %d %s (no cookie)", res.StatusCode, body)
	return ""
}

// tokenLogin signs in the API way and returns the bearer token.
func tokenLogin(t *testing.T, public, email string) string {
	t.Helper()
	res := postJSON(t, public+"/auth/login", fmt.Sprintf(`{"username":%q,"password":%q}`, email, benchPassword))
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("login: %d %v", res.StatusCode, err)
	}
	return out.AccessToken
}

// --- the special rows ----------------------------------------------------

// hashRate runs the hashrate yardstick (testdata/hashrate) with impl
// ("xcrypto" or "pool") for d and returns its verifications per second.
func hashRate(t *testing.T, bin, impl string, d time.Duration) float64 {
	t.Helper()
	out, err := exec.Command(bin, "-impl", impl, "-duration", d.String()).Output()
	if err != nil {
		t.Fatalf("hashrate -impl %s: %v", impl, err)
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "hashes/s=")
	rate, perr := strconv.ParseFloat(v, 64)
	if !ok || perr != nil {
		t.Fatalf("hashrate -impl %s printed %q", impl, out)
	}
	return rate
}

// holdConnections opens n keep-alive connections to public, sends three
// requests on each (all connections at once) and leaves them open while the
// caller reads the server's memory; they close when the test ends. It
// returns how many requests failed.
func holdConnections(t *testing.T, public string, n int, header, value string) int {
	t.Helper()
	host := strings.TrimPrefix(public, "http://")
	request := []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n%s: %s\r\n\r\n", benchPath, host, header, value))
	conns := make([]net.Conn, n)
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	})
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", host, 10*time.Second)
			if err != nil {
				failed.Add(3)
				return
			}
			conns[i] = c
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			br := bufio.NewReader(c)
			for range 3 {
				if _, err := c.Write(request); err != nil {
					failed.Add(1)
					continue
				}
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // let the server settle before its memory is read
	return int(failed.Load())
}

// profileInstance takes a CPU profile of a Portero process during a load
// run like the table's, then its heap and allocation profiles, writes them
// to dir and returns the top of the CPU profile by cumulative time.
func profileInstance(t *testing.T, s harnessSettings, dir string, gw *benchPortero, req func(ctx context.Context, w int) *http.Request) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The ops listener's write timeout (30 s) bounds a profile's length.
	secs := 10
	if s.quick {
		secs = 4
	}
	fetch := func(path, file string) error {
		res, err := http.Get(gw.ops + path)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(res.Body)
			return fmt.Errorf("%s: %d %s", path, res.StatusCode, body)
		}
		data, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, file), data, 0o644)
	}
	cpuErr := make(chan error, 1)
	go func() { cpuErr <- fetch(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), "cpu.pprof") }()
	driveLoad(s.conns, time.Duration(secs)*time.Second+500*time.Millisecond, http.StatusOK, req)
	if err := <-cpuErr; err != nil {
		t.Fatalf("CPU profile: %v", err)
	}
	for _, p := range []struct{ path, file string }{{"/debug/pprof/heap", "heap.pprof"}, {"/debug/pprof/allocs", "allocs.pprof"}} {
		if err := fetch(p.path, p.file); err != nil {
			t.Fatalf("profile %s: %v", p.path, err)
		}
	}
	var top bytes.Buffer
	cmd := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=30", filepath.Join(dir, "cpu.pprof"))
	cmd.Stdout, cmd.Stderr = &top, io.Discard
	if err := cmd.Run(); err != nil {
		t.Logf("go tool pprof: %v", err)
		return ""
	}
	_ = os.WriteFile(filepath.Join(dir, "cpu-top-cum.txt"), top.Bytes(), 0o644)
	flat := exec.Command("go", "tool", "pprof", "-top", "-nodecount=40", filepath.Join(dir, "cpu.pprof"))
	if out, err := flat.Output(); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "cpu-top-flat.txt"), out, 0o644)
	}
	return top.String()
}

// --- the record ----------------------------------------------------------

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "+dirty"
	}
	return c
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
