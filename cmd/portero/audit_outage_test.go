package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portero/portero/storage/storagetest"
)

// tcpGate forwards a local port to a target and can cut every connection
// and refuse new ones, like a database that went away, without touching
// the real server.
type tcpGate struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	open   bool
	conns  map[net.Conn]struct{}
}

func newTCPGate(t *testing.T, target string) *tcpGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &tcpGate{ln: ln, target: target, open: true, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { ln.Close(); g.cut() })
	go g.serve()
	return g
}

func (g *tcpGate) addr() string { return g.ln.Addr().String() }

func (g *tcpGate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		g.mu.Lock()
		if !g.open {
			g.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", g.target, 2*time.Second)
		if err != nil {
			g.mu.Unlock()
			c.Close()
			continue
		}
		g.conns[c], g.conns[up] = struct{}{}, struct{}{}
		g.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close() }()
		go func() { _, _ = io.Copy(c, up); c.Close() }()
	}
}

// cut closes every connection and refuses new ones until restore.
func (g *tcpGate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = false
	for c := range g.conns {
		c.Close()
	}
	clear(g.conns)
}

func (g *tcpGate) restore() {
	g.mu.Lock()
	g.open = true
	g.mu.Unlock()
}

// TestAuditSurvivesDatabaseOutageAndRestart runs the binary against
// PostgreSQL through a gate the test controls. Requests to an audited route
// keep being served while the database is cut, their access events go to
// the spool; SIGTERM during the outage keeps them; a restarted Portero
// delivers every one of them, exactly once.
func TestAuditSurvivesDatabaseOutageAndRestart(t *testing.T) {
	t.Parallel()
	pgURL := storagetest.NewPostgresURL(t)
	direct, err := pgx.ParseConfig(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	target := fmt.Sprintf("%s:%d", direct.Host, direct.Port)
	gate := newTCPGate(t, target)
	gated := strings.Replace(pgURL, target, gate.addr(), 1)
	extra := fmt.Sprintf("storage: {url: %q}\naudit: {spool_dir: %q}\nroutes:\n  - {path: /anything/audited, mode: public, audit: true}\n", gated, t.TempDir())

	public, _, portero := startStack(t, extra)
	get := func() {
		res, err := http.Get(public + "/anything/audited")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("audited route answered %d", res.StatusCode)
		}
	}
	const before, during = 20, 30
	for range before {
		get()
	}
	gate.cut()
	for range during {
		get() // served: the events wait in the spool
	}
	if err := portero.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-portero.done:
		if err != nil {
			t.Errorf("portero exited with %v during the outage", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("portero did not stop")
	}
	gate.restore()
	startStack(t, extra) // the same spool directory: drained at start

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, distinct int
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id) FROM audit_logs WHERE action = 'proxy.access'`).Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		if rows >= before+during || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rows != before+during || distinct != before+during {
		t.Errorf("audit_logs has %d access rows (%d distinct), want exactly %d", rows, distinct, before+during)
	}
}
