//go:build soak

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The soak suite (make soak) owns its PostgreSQL and Redis: it kills,
// pauses and restarts them, so it never uses the machine's own services.
// Both listen on free loopback ports and live in temporary directories.

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// soakRedis is a redis-server the test can kill, freeze (SIGSTOP: accepts
// connections, answers nothing) and restart on the same port. appendfsync
// always makes a kill -9 lose nothing, like a crash of a durable Redis;
// wipe makes the next start an empty one.
type soakRedis struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func newSoakRedis(t *testing.T) *soakRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("the soak suite needs redis-server (apt-get install redis-server): %v", err)
	}
	r := &soakRedis{t: t, port: freePort(t), dir: t.TempDir()}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *soakRedis) url(query string) string {
	u := fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	if query != "" {
		u += "?" + query
	}
	return u
}

func (r *soakRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	deadline := time.Now().Add(10 * time.Second)
	for !redisPing(r.port) {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			r.t.Fatalf("redis-server did not start on %d:\n%s", r.port, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server at once (SIGKILL; a frozen one is thawed first so
// it can die).
func (r *soakRedis) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT)
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// wipe deletes the append-only files: the next start is an empty Redis.
func (r *soakRedis) wipe() {
	r.t.Helper()
	if r.cmd != nil {
		r.t.Fatal("wipe a running redis")
	}
	entries, _ := os.ReadDir(r.dir)
	for _, e := range entries {
		if e.Name() != "redis.log" {
			_ = os.RemoveAll(filepath.Join(r.dir, e.Name()))
		}
	}
}

func (r *soakRedis) freeze() { _ = r.cmd.Process.Signal(syscall.SIGSTOP) }
func (r *soakRedis) thaw()   { _ = r.cmd.Process.Signal(syscall.SIGCONT) }

func redisPing(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// soakPostgres is a throwaway PostgreSQL cluster the test can stop and
// start again on the same port. PostgreSQL refuses to run as root, so as
// root it runs as PORTERO_TEST_PG_OS_USER or postgres.
type soakPostgres struct {
	t       *testing.T
	bin     string // directory of initdb, pg_ctl
	dir     string
	port    int
	osUser  string // "" runs as ourselves
	running bool
}

func newSoakPostgres(t *testing.T) *soakPostgres {
	t.Helper()
	p := &soakPostgres{t: t, bin: postgresBinDir(t), port: freePort(t)}
	if os.Getuid() == 0 {
		p.osUser = os.Getenv("PORTERO_TEST_PG_OS_USER")
		if p.osUser == "" {
			p.osUser = "postgres"
		}
		if _, err := user.Lookup(p.osUser); err != nil {
			t.Fatalf("running as root, the soak PostgreSQL needs a non-root OS user: %q: %v (set PORTERO_TEST_PG_OS_USER)", p.osUser, err)
		}
	}
	// Not t.TempDir, nor a root's private TMPDIR: the PostgreSQL user must
	// be able to reach the data directory.
	parent := ""
	if p.osUser != "" {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "portero-soak-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() { p.stop(); _ = os.RemoveAll(dir) })
	_ = os.Chmod(dir, 0o755)
	_ = os.Mkdir(filepath.Join(dir, "sock"), 0o755)
	if p.osUser != "" {
		if out, err := exec.Command("chown", "-R", p.osUser, dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	if out, err := p.run("initdb", "-D", p.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start()
	return p
}

func postgresBinDir(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p)
	}
	t.Fatal("the soak suite needs PostgreSQL's server binaries (apt-get install postgresql)")
	return ""
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func (p *soakPostgres) data() string { return filepath.Join(p.dir, "data") }

func (p *soakPostgres) run(tool string, args ...string) ([]byte, error) {
	name, full := filepath.Join(p.bin, tool), args
	if p.osUser != "" {
		name, full = "runuser", append([]string{"-u", p.osUser, "--", filepath.Join(p.bin, tool)}, args...)
	}
	cmd := exec.Command(name, full...)
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

func (p *soakPostgres) start() {
	p.t.Helper()
	// fsync off is safe here (the machine does not crash, only PostgreSQL
	// does); synchronous_commit stays on, or an immediate stop would drop
	// commits already acknowledged, and the audit count would be wrong for
	// reasons that are not Portero's.
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c full_page_writes=off -c max_connections=200",
		p.port, filepath.Join(p.dir, "sock"))
	if out, err := p.run("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		p.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	p.running = true
}

// freeze stops the postmaster and every backend (SIGSTOP): connections
// are accepted by the kernel and then nothing answers, like a database
// stuck on I/O. thaw resumes them.
func (p *soakPostgres) freeze() { p.signalAll(syscall.SIGSTOP) }
func (p *soakPostgres) thaw()   { p.signalAll(syscall.SIGCONT) }

// signalAll signals the postmaster (by the pid it recorded) and its
// children (found in /proc by parent pid): only this cluster's processes.
func (p *soakPostgres) signalAll(sig syscall.Signal) {
	p.t.Helper()
	raw, err := os.ReadFile(filepath.Join(p.data(), "postmaster.pid"))
	if err != nil {
		p.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(raw), "\n", 2)[0])
	if err != nil {
		p.t.Fatal(err)
	}
	pids := []int{pid}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces, so split after ')'.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		if f := strings.Fields(rest); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			pids = append(pids, child)
		}
	}
	for _, id := range pids {
		_ = syscall.Kill(id, sig)
	}
}

// stop is an immediate shutdown: connections are cut as in a crash.
func (p *soakPostgres) stop() {
	if !p.running {
		return
	}
	if out, err := p.run("pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "-t", "30", "stop"); err != nil {
		p.t.Logf("pg_ctl stop: %v\n%s", err, out)
	}
	p.running = false
}

func (p *soakPostgres) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=2", p.port, db)
}

// newDatabase creates an empty database for one scenario.
func (p *soakPostgres) newDatabase(t *testing.T) string {
	t.Helper()
	name := "soak_" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	return p.url(name)
}

// count runs a count(*) query against a scenario's database.
func (p *soakPostgres) count(t *testing.T, dbURL, query string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// metricsOf scrapes the ops listener and returns the unlabelled series
// (go_goroutines, process_resident_memory_bytes, process_open_fds, …) and
// the labelled ones under their full name.
func metricsOf(t *testing.T, ops string) map[string]float64 {
	t.Helper()
	res, err := http.Get(ops + "/-/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}
