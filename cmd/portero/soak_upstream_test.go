//go:build soak

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// faultyUpstream is an upstream that misbehaves by path: /ok answers 200
// (and closes, so Portero keeps no pooled connection and goroutine counts
// compare cleanly), /slow never answers, /reset resets the connection
// after reading the request, /garbage answers bytes that are not HTTP,
// /truncated promises a body it never finishes. down closes the listener
// (connection refused) until up.
type faultyUpstream struct {
	t     *testing.T
	addr  string
	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func newFaultyUpstream(t *testing.T) *faultyUpstream {
	t.Helper()
	u := &faultyUpstream{t: t, conns: map[net.Conn]struct{}{}}
	u.up()
	u.addr = u.ln.Addr().String()
	t.Cleanup(func() { u.down(); u.closeAll() })
	return u
}

func (u *faultyUpstream) up() {
	u.t.Helper()
	addr := "127.0.0.1:0"
	if u.addr != "" {
		addr = u.addr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		u.t.Fatal(err)
	}
	u.mu.Lock()
	u.ln = ln
	u.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns[c] = struct{}{}
			u.mu.Unlock()
			go u.serve(c)
		}
	}()
}

func (u *faultyUpstream) down() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ln != nil {
		u.ln.Close()
		u.ln = nil
	}
}

func (u *faultyUpstream) closeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for c := range u.conns {
		c.Close()
	}
}

func (u *faultyUpstream) serve(c net.Conn) {
	defer func() {
		u.mu.Lock()
		delete(u.conns, c)
		u.mu.Unlock()
		c.Close()
	}()
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	switch {
	case strings.HasSuffix(req.URL.Path, "/ok"):
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	case strings.HasSuffix(req.URL.Path, "/slow"):
		io.Copy(io.Discard, c) // until Portero gives up and closes
	case strings.HasSuffix(req.URL.Path, "/reset"):
		c.(*net.TCPConn).SetLinger(0) // close sends RST
	case strings.HasSuffix(req.URL.Path, "/garbage"):
		io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http at all\r\n\r\n")
	case strings.HasSuffix(req.URL.Path, "/truncated"):
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a little")
	}
}

// soakUpstreamFaults: an upstream that is down, hangs, resets or answers
// garbage gets 502/504 within the configured timeouts (dial 500ms,
// response 1s); after a long mixed run Portero's goroutines and open file
// descriptors are back at their baseline; its own endpoints answer
// throughout.
func soakUpstreamFaults(t *testing.T, env soakEnv) {
	up := newFaultyUpstream(t)
	rd := newSoakRedis(t)
	st := soakStart(t, soakOpts{upstream: up.addr, storage: env.pg.newDatabase(t), sessions: rd.url("")})
	client := &http.Client{Timeout: 15 * time.Second}
	get := func(path string) result {
		start := time.Now()
		res, err := client.Get(st.public + path)
		if err != nil {
			return result{err: err, took: time.Since(start)}
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		return result{status: res.StatusCode, body: string(b), took: time.Since(start), err: err}
	}
	cases := []struct {
		path   string
		status int
		bound  time.Duration
	}{
		{"/f/ok", 200, 500 * time.Millisecond},
		{"/f/slow", 504, 2 * time.Second}, // upstream.timeout 1s
		{"/f/reset", 502, 500 * time.Millisecond},
		{"/f/garbage", 502, 500 * time.Millisecond},
	}
	for _, c := range cases {
		expect(t, c.path, get(c.path), c.status, c.bound)
	}
	// A body cut short: the status line was already sent, so the client
	// sees the connection end early rather than a status.
	if r := get("/f/truncated"); r.err == nil {
		t.Errorf("/f/truncated: a body cut short upstream reached the client whole (%d %q)", r.status, r.body)
	}
	client.CloseIdleConnections()
	time.Sleep(500 * time.Millisecond)
	before := metricsOf(t, st.ops)

	// The long run: 16 clients for 8s, every kind of failure mixed.
	var wg sync.WaitGroup
	var mu sync.Mutex
	lat := map[string]*latencies{}
	bad := map[string]int{}
	var n atomic.Int64
	deadline := time.Now().Add(8 * time.Second)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; time.Now().Before(deadline); i++ {
				c := cases[i%len(cases)]
				r := get(c.path)
				n.Add(1)
				mu.Lock()
				if lat[c.path] == nil {
					lat[c.path] = &latencies{}
				}
				lat[c.path].add(r.took)
				if r.err != nil || r.status != c.status || r.took > c.bound {
					bad[fmt.Sprintf("%s: %d %v", c.path, r.status, r.err)]++
				}
				mu.Unlock()
			}
		}()
	}
	var health latencies
	for time.Now().Before(deadline) {
		r := call("GET", st.public+"/-/healthz", "", "")
		health.add(r.took)
		expect(t, "healthz during the run", r, 200, 500*time.Millisecond)
		r = call("POST", st.public+"/auth/login", "", loginBody(soakAdminEmail, soakAdminPassword))
		expect(t, "login during the run", r, 200, 2*time.Second)
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	for what, k := range bad {
		t.Errorf("long run: %d × %s", k, what)
	}
	for _, c := range cases {
		figure(t, "long run %s → %d: %v", c.path, c.status, lat[c.path])
	}
	figure(t, "long run: %d requests; own /-/healthz %v", n.Load(), &health)

	// Down: connection refused, 502 at once.
	up.down()
	var down latencies
	for range 20 {
		r := get("/f/ok")
		down.add(r.took)
		expect(t, "upstream down", r, 502, 500*time.Millisecond)
	}
	expect(t, "upstream down: own endpoint", call("POST", st.public+"/auth/login", "", loginBody(soakAdminEmail, soakAdminPassword)), 200, 0)
	up.up()
	expect(t, "upstream back", get("/f/ok"), 200, 0)
	figure(t, "upstream down → 502: %v", &down)

	client.CloseIdleConnections()
	soakClient.CloseIdleConnections()
	var after map[string]float64
	settle := eventually(t, "goroutines and descriptors back to the baseline", 15*time.Second, func() bool {
		after = metricsOf(t, st.ops)
		return after["go_goroutines"] <= before["go_goroutines"]+3 && after["process_open_fds"] <= before["process_open_fds"]+3
	})
	figure(t, "goroutines before %v after %v; open fds before %v after %v (settled in %v)",
		before["go_goroutines"], after["go_goroutines"], before["process_open_fds"], after["process_open_fds"], settle.Round(time.Millisecond))
}

// soakRestart: SIGTERM while clients stream requests. Nothing Portero
// accepted fails (requests in flight and SSE streams finish; a client
// whose connection is refused moves to the second instance), the second
// instance serves the same sessions without a new login, and every access
// to the audited route is in audit_logs exactly once.
func soakRestart(t *testing.T, env soakEnv) {
	rd := newSoakRedis(t)
	db := env.pg.newDatabase(t)
	opts := soakOpts{upstream: env.upstream, storage: db, sessions: rd.url("")}
	a := soakStart(t, opts)
	b := soakStart(t, opts) // the same stores; a spool of its own
	tok := login(t, a.public, soakAdminEmail, soakAdminPassword)

	var served, refused, failed atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			target := a.public
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", target+"/anything/app/x", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				res, err := client.Do(req)
				var op *net.OpError
				switch {
				case err != nil && errors.As(err, &op) && op.Op == "dial":
					refused.Add(1) // never accepted: the load balancer's job, here ours
					target = b.public
				case err != nil:
					failed.Add(1)
					failures.Store(err.Error(), true)
				default:
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode == 200 {
						served.Add(1)
					} else {
						failed.Add(1)
						failures.Store(res.Status, true)
					}
				}
			}
		}()
	}
	// Two event streams of 2s each, started on A before the signal.
	streams := make(chan string, 2)
	for range 2 {
		req, _ := http.NewRequest("GET", a.public+"/stream?n=20&interval_ms=100", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			streams <- fmt.Sprintf("%d %d events %v", res.StatusCode, strings.Count(string(body), "data: "), err)
		}()
	}
	time.Sleep(time.Second)
	sigAt := time.Now()
	if err := a.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a.proc.done:
		if err != nil {
			t.Errorf("instance A exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("instance A did not stop")
	}
	exitAfter := time.Since(sigAt)
	time.Sleep(time.Second) // B carries the load alone for a while
	close(stop)
	wg.Wait()
	for range 2 {
		if s := <-streams; s != "200 20 events <nil>" {
			t.Errorf("a stream open across SIGTERM ended with %s, want all 20 events", s)
		}
	}
	failures.Range(func(k, _ any) bool { t.Errorf("a client saw: %v", k); return true })
	if failed.Load() != 0 {
		t.Errorf("%d accepted requests failed", failed.Load())
	}
	expect(t, "instance B with the session made on A", call("GET", b.public+"/anything/app/x", tok, ""), 200, 0)
	want := int(served.Load()) + 1
	q := `SELECT count(*) FROM audit_logs WHERE action = 'proxy.access'`
	var rows int
	eventually(t, "every access audited", 20*time.Second, func() bool { rows = env.pg.count(t, db, q); return rows >= want })
	time.Sleep(500 * time.Millisecond)
	rows = env.pg.count(t, db, q)
	if rows != want {
		t.Errorf("audit_logs has %d access rows, want exactly %d", rows, want)
	}
	figure(t, "served %d, accepted-and-failed %d, refused-then-retried-on-B %d; A exited %v after SIGTERM; 2/2 streams complete; access rows %d of %d",
		served.Load(), failed.Load(), refused.Load(), exitAfter.Round(time.Millisecond), rows, want)
}
