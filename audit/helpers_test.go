package audit_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// tcpProxy forwards TCP connections to a target (the test's PostgreSQL)
// and lets a test cut and restore the path, so an outage is simulated
// without touching the machine's PostgreSQL.
type tcpProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  proxyMode
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

type proxyMode int

const (
	// proxyUp forwards.
	proxyUp proxyMode = iota
	// proxyRefuse closes every connection at once: a database that is down.
	proxyRefuse
	// proxyBlackhole accepts and holds connections but forwards nothing: a
	// database (or network) that hangs.
	proxyBlackhole
)

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &tcpProxy{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		if mode == proxyRefuse {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		if mode == proxyBlackhole {
			continue // held open, never answered; closed by set or cleanup
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *tcpProxy) forward(c net.Conn) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		p.drop(c)
		return
	}
	p.mu.Lock()
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.mu.Lock()
				hole := p.mode == proxyBlackhole
				p.mu.Unlock()
				if !hole {
					if _, werr := dst.Write(buf[:n]); werr != nil {
						break
					}
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	p.drop(c)
	p.drop(up)
	<-done
}

func (p *tcpProxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *tcpProxy) closeAll() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// set switches the mode. Cutting (refuse) and restoring close every open
// connection, as a database restart would; a blackhole leaves them open
// and silent.
func (p *tcpProxy) set(m proxyMode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
	if m != proxyBlackhole {
		p.closeAll()
	}
}

// pgEnv is a fresh migrated PostgreSQL database reachable directly (for
// the test's own checks) and through a proxy the test controls (for the
// code under test).
type pgEnv struct {
	direct     *pgxpool.Pool
	proxied    *storage.DB
	proxiedURL string
	proxy      *tcpProxy
}

func newPGEnv(t testing.TB) pgEnv {
	t.Helper()
	dbURL := storagetest.NewPostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := storage.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	p := newTCPProxy(t, u.Host)
	u.Host = p.addr()
	q := u.Query()
	q.Set("connect_timeout", "1")
	u.RawQuery = q.Encode()
	proxied, err := storage.Open(ctx, u.String())
	if err != nil {
		t.Fatalf("open via proxy: %v", err)
	}
	t.Cleanup(func() { _ = proxied.Close() })
	return pgEnv{direct: db.Pool(), proxied: proxied, proxiedURL: u.String(), proxy: p}
}

// testConfig is a Writer configuration with the timings shrunk so that
// outages and retries take milliseconds.
func testConfig(t testing.TB) audit.WriterConfig {
	return audit.WriterConfig{
		SpoolDir:      t.TempDir(),
		BatchSize:     32,
		FlushInterval: 5 * time.Millisecond,
		InsertTimeout: 300 * time.Millisecond,
		RetryInterval: 20 * time.Millisecond,
		RetryMax:      100 * time.Millisecond,
	}
}

func newWriter(t testing.TB, store audit.Inserter, cfg audit.WriterConfig) *audit.Writer {
	t.Helper()
	w, err := audit.NewWriter(store, cfg)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil && !errors.Is(err, audit.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// eventually polls cond every few milliseconds until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// seqRow is one stored event of a sequence test: producer and number.
type seqRow struct{ P, I int }

// storedSeqs returns (details.p, details.i) of every row, in row id order.
func storedSeqs(t testing.TB, pool *pgxpool.Pool) []seqRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, `SELECT (details->>'p')::int, (details->>'i')::int FROM audit_logs ORDER BY id`)
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	defer rows.Close()
	var out []seqRow
	for rows.Next() {
		var r seqRow
		if err := rows.Scan(&r.P, &r.I); err != nil {
			t.Fatalf("scan: %v", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("rows: %v", err)
	}
	return out
}

func countRows(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_logs`).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

// checkSeqs fails unless rows hold exactly i = 0..perProducer-1 of every
// producer, each once, and each producer's events in the order produced.
func checkSeqs(t testing.TB, rows []seqRow, producers, perProducer int) {
	t.Helper()
	if len(rows) != producers*perProducer {
		t.Errorf("%d rows, want %d", len(rows), producers*perProducer)
	}
	next := make([]int, producers)
	for k, r := range rows {
		if r.P < 0 || r.P >= producers {
			t.Fatalf("row %d: producer %d", k, r.P)
		}
		if r.I != next[r.P] {
			t.Fatalf("row %d: producer %d event %d, want %d (lost, duplicated or out of order)", k, r.P, r.I, next[r.P])
		}
		next[r.P]++
	}
}

// seqEvent is event i of producer p.
func seqEvent(p, i int) audit.Event {
	return audit.Event{Action: audit.ActionProxyAccess, IP: "192.0.2.1", Details: map[string]any{"p": p, "i": i}}
}
