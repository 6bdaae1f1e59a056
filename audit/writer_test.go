package audit_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// testTimeout bounds each writer test.
const testTimeout = 25 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// TestWriterDurable checks the basic promise on both dialects: once Record
// returns, the row is there; Enqueue'd events arrive within the flush
// interval; events keep their order; a zero CreatedAt comes from the
// injected clock.
func TestWriterDurable(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := testCtx(t)
		store := audit.NewStore(db)
		cfg := testConfig(t)
		now := time.Date(2030, 1, 2, 3, 4, 5, 6789, time.UTC)
		cfg.Now = func() time.Time { return now }
		w := newWriter(t, store, cfg)

		user := "0b8f7a4e-0f43-4c8c-9c5e-111111111111"
		if err := w.Record(ctx, audit.Event{Action: audit.ActionLoginSucceeded, UserID: user, IP: "10.1.1.1",
			UserAgent: "ua", Details: map[string]any{"method": "password"}}); err != nil {
			t.Fatalf("Record: %v", err)
		}
		got, _, err := store.Query(ctx, audit.Filter{})
		if err != nil || len(got) != 1 {
			t.Fatalf("right after Record: %d rows, %v", len(got), err)
		}
		if ev := got[0]; ev.UserID != user || ev.Action != audit.ActionLoginSucceeded ||
			!ev.CreatedAt.Equal(now.Truncate(time.Microsecond)) || ev.Details["method"] != "password" || len(ev.ID) != 36 {
			t.Errorf("stored %+v", ev)
		}

		for i := range 100 {
			if err := w.Enqueue(audit.Event{Action: "test.enqueue", Details: map[string]any{"i": i}}); err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
		}
		// Record waits behind the queued events, so when it returns they
		// are all written, and before it.
		if err := w.Record(ctx, audit.Event{Action: "test.last"}); err != nil {
			t.Fatalf("Record: %v", err)
		}
		all, _, err := store.Query(ctx, audit.Filter{Action: "test", Limit: 1000})
		if err != nil || len(all) != 101 {
			t.Fatalf("Query: %d rows, %v", len(all), err)
		}
		if all[0].Action != "test.last" {
			t.Errorf("newest = %s, want test.last", all[0].Action)
		}
		for k, ev := range all[1:] {
			if want := float64(99 - k); ev.Details["i"] != want {
				t.Fatalf("row %d: i = %v, want %v", k, ev.Details["i"], want)
			}
		}
		if st := w.Stats(); st.Written != 102 || st.Spooled != 0 || st.Dropped != 0 || st.QueueDepth != 0 {
			t.Errorf("Stats = %+v", st)
		}
		if err := w.Healthy(); err != nil {
			t.Errorf("Healthy = %v", err)
		}
	})
}

// TestWriterOutage cuts the connection to PostgreSQL in the middle of a
// load (first refusing connections, later hanging them), restores it, and
// counts exactly N rows, each once, in the order each producer made them.
func TestWriterOutage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name                   string
		producers, perProducer int
	}{
		{"one producer", 1, 600},
		{"four producers", 4, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			env := newPGEnv(t)
			direct, proxied, proxy := env.direct, env.proxied, env.proxy
			w := newWriter(t, audit.NewStore(proxied), testConfig(t))
			n := tt.producers * tt.perProducer
			// The path is cut at 1/5 of the load, back at 2/5, hung at 3/5
			// and back at 4/5.
			var produced atomic.Int64
			phase := func() {
				switch produced.Add(1) {
				case int64(n / 5):
					proxy.set(proxyRefuse)
				case int64(2 * n / 5):
					proxy.set(proxyUp)
				case int64(3 * n / 5):
					proxy.set(proxyBlackhole)
				case int64(4 * n / 5):
					proxy.set(proxyUp)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, tt.producers)
			for p := range tt.producers {
				wg.Go(func() {
					for i := range tt.perProducer {
						phase()
						ev := seqEvent(p, i)
						var err error
						if i%5 == 0 {
							err = w.Record(ctx, ev)
						} else {
							err = w.Enqueue(ev)
						}
						if err != nil {
							errs <- fmt.Errorf("producer %d event %d: %w", p, i, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			eventually(t, 15*time.Second, "spool not drained", func() bool {
				st := w.Stats()
				return st.QueueDepth == 0 && st.SpoolEvents == 0 && countRows(t, direct) >= n
			})
			checkSeqs(t, storedSeqs(t, direct), tt.producers, tt.perProducer)
			st := w.Stats()
			if st.Spooled == 0 || st.DBErrors == 0 || st.Drained != st.Spooled || st.Dropped != 0 || st.Refused != 0 {
				t.Errorf("Stats = %+v: want events spooled during the outage and all drained", st)
			}
			t.Logf("stats: %+v", st)
		})
	}
}

// TestWriterRestart: a writer spools while the database is down and is
// closed; a new writer on the same spool, with the database back, delivers
// everything in order.
func TestWriterRestart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	env := newPGEnv(t)
	direct, proxied, proxy := env.direct, env.proxied, env.proxy
	cfg := testConfig(t)
	proxy.set(proxyRefuse)
	w1 := newWriter(t, audit.NewStore(proxied), cfg)
	const n = 300
	for i := range n {
		var err error
		if i%3 == 0 {
			err = w1.Record(ctx, seqEvent(0, i))
		} else {
			err = w1.Enqueue(seqEvent(0, i))
		}
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if err := w1.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := w1.Stats(); st.Spooled != n || st.Written != 0 {
		t.Fatalf("first writer: %+v, want all %d spooled", st, n)
	}
	if c := countRows(t, direct); c != 0 {
		t.Fatalf("%d rows while the database was unreachable", c)
	}

	proxy.set(proxyUp)
	w2 := newWriter(t, audit.NewStore(proxied), cfg)
	if st := w2.Stats(); st.SpoolEvents != n && st.Drained == 0 {
		t.Errorf("second writer found %d spooled events, want %d", st.SpoolEvents, n)
	}
	eventually(t, 10*time.Second, "spool from the first run not drained", func() bool {
		return w2.Stats().SpoolEvents == 0
	})
	checkSeqs(t, storedSeqs(t, direct), 1, n)
	if segs, _ := filepath.Glob(filepath.Join(cfg.SpoolDir, "*.seg")); len(segs) != 0 {
		t.Errorf("segments left after the drain: %v", segs)
	}
}

// TestWriterCloseFlushes: events still queued (the flush interval is an
// hour away) are written by Close, to the database when it answers and to
// the spool when it does not; none is lost.
func TestWriterCloseFlushes(t *testing.T) {
	t.Parallel()
	for _, down := range []bool{false, true} {
		t.Run(fmt.Sprintf("database down %v", down), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			env := newPGEnv(t)
			direct, proxied, proxy := env.direct, env.proxied, env.proxy
			cfg := testConfig(t)
			cfg.FlushInterval = time.Hour
			cfg.BatchSize = 100000
			cfg.QueueSize = 100000
			w := newWriter(t, audit.NewStore(proxied), cfg)
			const n = 500
			for i := range n {
				if err := w.Enqueue(seqEvent(0, i)); err != nil {
					t.Fatal(err)
				}
			}
			if st := w.Stats(); st.QueueDepth != n {
				t.Fatalf("queue depth %d, want %d", st.QueueDepth, n)
			}
			if down {
				proxy.set(proxyBlackhole) // the slow kind: Close must not hang on it
			}
			if err := w.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := w.Enqueue(seqEvent(0, n)); !errors.Is(err, audit.ErrClosed) {
				t.Errorf("Enqueue after Close = %v, want ErrClosed", err)
			}
			if !down {
				checkSeqs(t, storedSeqs(t, direct), 1, n)
				return
			}
			if st := w.Stats(); st.Spooled != n {
				t.Fatalf("Stats after Close with the database down: %+v", st)
			}
			proxy.set(proxyUp)
			w2 := newWriter(t, audit.NewStore(proxied), cfg)
			eventually(t, 10*time.Second, "spool not drained", func() bool { return w2.Stats().SpoolEvents == 0 })
			checkSeqs(t, storedSeqs(t, direct), 1, n)
		})
	}
}

// TestWriterSpoolFull fills a tiny spool while the database is down, under
// each policy.
func TestWriterSpoolFull(t *testing.T) {
	t.Parallel()
	small := func(t *testing.T) audit.WriterConfig {
		cfg := testConfig(t)
		cfg.SpoolMaxBytes = 16 << 10
		cfg.BatchSize = 8
		return cfg
	}

	t.Run("fail_closed Record", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		env := newPGEnv(t)
		direct, proxied, proxy := env.direct, env.proxied, env.proxy
		cfg := small(t)
		cfg.OnSpoolFull = audit.FailClosed
		w := newWriter(t, audit.NewStore(proxied), cfg)
		proxy.set(proxyRefuse)
		accepted := 0
		var err error
		for i := 0; i < 2000; i++ {
			if err = w.Record(ctx, seqEvent(0, accepted)); err != nil {
				break
			}
			accepted++
		}
		if !errors.Is(err, audit.ErrSpoolFull) || accepted == 0 {
			t.Fatalf("after %d accepted, Record = %v; want ErrSpoolFull", accepted, err)
		}
		if err := w.Healthy(); !errors.Is(err, audit.ErrSpoolFull) {
			t.Errorf("Healthy = %v, want ErrSpoolFull", err)
		}
		if err := w.Enqueue(seqEvent(0, accepted)); !errors.Is(err, audit.ErrSpoolFull) {
			t.Errorf("Enqueue = %v, want ErrSpoolFull", err)
		}
		if st := w.Stats(); !st.SpoolFull || st.Refused < 2 || st.Dropped != 0 || st.Spooled != uint64(accepted) {
			t.Errorf("Stats = %+v", st)
		}
		proxy.set(proxyUp)
		eventually(t, 10*time.Second, "spool not drained", func() bool { return w.Stats().SpoolEvents == 0 })
		if err := w.Healthy(); err != nil {
			t.Errorf("Healthy after the drain = %v", err)
		}
		if err := w.Record(ctx, seqEvent(0, accepted)); err != nil {
			t.Fatalf("Record after the drain: %v", err)
		}
		// Exactly the accepted events: none refused has a row.
		checkSeqs(t, storedSeqs(t, direct), 1, accepted+1)
	})

	t.Run("fail_closed Enqueue", func(t *testing.T) {
		t.Parallel()
		env := newPGEnv(t)
		direct, proxied, proxy := env.direct, env.proxied, env.proxy
		cfg := small(t)
		w := newWriter(t, audit.NewStore(proxied), cfg) // FailClosed is the default
		proxy.set(proxyRefuse)
		accepted := 0
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if err := w.Enqueue(seqEvent(0, accepted)); err != nil {
				if !errors.Is(err, audit.ErrSpoolFull) {
					t.Fatalf("Enqueue: %v", err)
				}
				break
			}
			accepted++
		}
		if w.Healthy() == nil {
			t.Fatalf("spool never filled (%d accepted)", accepted)
		}
		// The accepted events that fit nowhere are held, not dropped, and
		// delivered once the database is back.
		proxy.set(proxyUp)
		eventually(t, 10*time.Second, "held events not delivered", func() bool {
			st := w.Stats()
			return st.SpoolEvents == 0 && st.QueueDepth == 0 && w.Healthy() == nil && countRows(t, direct) >= accepted
		})
		checkSeqs(t, storedSeqs(t, direct), 1, accepted)
		if st := w.Stats(); st.Dropped != 0 {
			t.Errorf("Stats = %+v", st)
		}
	})

	t.Run("fail_open", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t)
		env := newPGEnv(t)
		direct, proxied, proxy := env.direct, env.proxied, env.proxy
		cfg := small(t)
		cfg.OnSpoolFull = audit.FailOpen
		w := newWriter(t, audit.NewStore(proxied), cfg)
		proxy.set(proxyRefuse)
		const n = 400
		sawFull := false
		for i := range n {
			var err error
			if i%2 == 0 {
				err = w.Record(ctx, seqEvent(0, i))
			} else {
				err = w.Enqueue(seqEvent(0, i))
			}
			if err != nil {
				t.Fatalf("event %d: %v (fail_open never refuses)", i, err)
			}
			if err := w.Healthy(); errors.Is(err, audit.ErrSpoolFull) {
				sawFull = true
			}
		}
		eventually(t, 5*time.Second, "queue not flushed", func() bool {
			st := w.Stats()
			return st.Spooled+st.Dropped == n
		})
		st := w.Stats()
		if st.Dropped == 0 || st.Refused != 0 || !sawFull {
			t.Fatalf("Stats = %+v, Healthy reported the full spool: %v; want drops counted and reported", st, sawFull)
		}
		proxy.set(proxyUp)
		eventually(t, 10*time.Second, "spool not drained", func() bool { return w.Stats().SpoolEvents == 0 })
		if err := w.Healthy(); err != nil {
			t.Errorf("Healthy after the drain = %v", err)
		}
		rows := storedSeqs(t, direct)
		if uint64(len(rows)) != st.Spooled {
			t.Errorf("%d rows, want the %d spooled", len(rows), st.Spooled)
		}
		for k := 1; k < len(rows); k++ {
			if rows[k].I <= rows[k-1].I {
				t.Fatalf("rows out of order at %d: %v then %v", k, rows[k-1], rows[k])
			}
		}
	})
}

// TestWriterKill runs a writer in a child process, cuts the database in the
// middle of its load, and SIGKILLs it. Every event whose Record returned
// must then be stored (after a new writer drains the spool), with no
// duplicate and no gap: what survives is a prefix of what was produced.
func TestWriterKill(t *testing.T) {
	t.Parallel()
	env := newPGEnv(t)
	direct, proxied, proxy := env.direct, env.proxied, env.proxy
	cfg := testConfig(t)

	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.v")
	cmd.Env = append(os.Environ(), "AUDIT_KILL_CHILD=1", "AUDIT_KILL_DB="+env.proxiedURL, "AUDIT_KILL_SPOOL="+cfg.SpoolDir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	acked := -1
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "acked "); ok {
			acked, _ = strconv.Atoi(v)
			switch {
			case acked >= 900:
				_ = cmd.Process.Signal(os.Kill)
				killed = true
			case acked >= 450:
				proxy.set(proxyRefuse)
			}
			if killed {
				break
			}
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed (last ack %d)", acked)
	}
	proxy.set(proxyUp)
	w := newWriter(t, audit.NewStore(proxied), cfg)
	eventually(t, 10*time.Second, "spool of the killed writer not drained", func() bool { return w.Stats().SpoolEvents == 0 })
	rows := storedSeqs(t, direct)
	for k, r := range rows {
		if r.I != k {
			t.Fatalf("row %d holds event %d: a gap, a duplicate or a reordering", k, r.I)
		}
	}
	if len(rows) <= acked {
		t.Fatalf("%d rows, but event %d was acknowledged by Record", len(rows), acked)
	}
	if st := w.Stats(); st.Drained == 0 {
		t.Errorf("nothing came from the killed writer's spool: %+v", st)
	}
	t.Logf("acknowledged through %d, stored %d (the rest were in memory when killed), %d from the spool",
		acked, len(rows), w.Stats().Drained)
}

// TestKillChild is the child process of TestWriterKill.
func TestKillChild(t *testing.T) {
	if os.Getenv("AUDIT_KILL_CHILD") == "" {
		t.Skip("only run as TestWriterKill's child")
	}
	ctx := context.Background()
	db, err := storage.Open(ctx, os.Getenv("AUDIT_KILL_DB"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.SpoolDir = os.Getenv("AUDIT_KILL_SPOOL")
	w, err := audit.NewWriter(audit.NewStore(db), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if i%3 == 0 {
			if err := w.Record(ctx, seqEvent(0, i)); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("acked %d\n", i)
			continue
		}
		if err := w.Enqueue(seqEvent(0, i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriterTornSpool: power lost in the middle of a spool append leaves a
// torn record at the end of the last segment. A new writer delivers every
// record before it, counts the damaged bytes and keeps the segment as
// *.corrupt.
func TestWriterTornSpool(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	env := newPGEnv(t)
	cfg := testConfig(t)
	env.proxy.set(proxyRefuse)
	w1 := newWriter(t, audit.NewStore(env.proxied), cfg)
	const n = 50
	for i := range n {
		if err := w1.Record(ctx, seqEvent(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(cfg.SpoolDir, "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no spool segment")
	}
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0, 0, 1, 0, 0xde, 0xad, 0xbe, 0xef, '{', '"'}); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	env.proxy.set(proxyUp)
	w2 := newWriter(t, audit.NewStore(env.proxied), cfg)
	eventually(t, 10*time.Second, "spool not drained", func() bool { return w2.Stats().SpoolEvents == 0 })
	checkSeqs(t, storedSeqs(t, env.direct), 1, n)
	if st := w2.Stats(); st.SpoolCorruptBytes != 10 {
		t.Errorf("SpoolCorruptBytes = %d, want 10", st.SpoolCorruptBytes)
	}
	if m, _ := filepath.Glob(filepath.Join(cfg.SpoolDir, "*.corrupt")); len(m) != 1 {
		t.Errorf("corrupt segments kept: %v, want 1", m)
	}
}

// fakeStore is an Inserter with hand-set failures, for what a real
// database will not do on demand (refuse one row).
type fakeStore struct {
	mu     sync.Mutex
	rows   []audit.Event
	seen   map[string]bool
	insert func(events []audit.Event) error // consulted first, when set
}

func (f *fakeStore) Insert(_ context.Context, events []audit.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.insert != nil {
		if err := f.insert(events); err != nil {
			return err
		}
	}
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	for _, ev := range events {
		if !f.seen[ev.ID] {
			f.seen[ev.ID] = true
			f.rows = append(f.rows, ev)
		}
	}
	return nil
}

func (f *fakeStore) stored() []audit.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rows)
}

// TestWriterRejectedRow: a row the database refuses (not a failure to
// answer) is set aside in rejected.ndjson instead of blocking the spool; the
// rows around it are stored in order.
func TestWriterRejectedRow(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	store := &fakeStore{insert: func(events []audit.Event) error {
		for _, ev := range events {
			if ev.Action == "poison" {
				return fmt.Errorf("%w: row %s", audit.ErrRejected, ev.ID)
			}
		}
		return nil
	}}
	cfg := testConfig(t)
	cfg.FlushInterval = time.Hour
	w := newWriter(t, store, cfg)
	poisonID := "0b8f7a4e-0f43-4c8c-9c5e-222222222222"
	for i := range 20 {
		ev := seqEvent(0, i)
		if i == 7 {
			ev.Action, ev.ID = "poison", poisonID
		}
		if err := w.Enqueue(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Record(ctx, seqEvent(0, 20)); err != nil {
		t.Fatalf("Record: %v", err)
	}
	eventually(t, 5*time.Second, "not drained", func() bool { return w.Stats().SpoolEvents == 0 })
	rows := store.stored()
	if len(rows) != 20 {
		t.Fatalf("%d rows, want 20", len(rows))
	}
	for k, ev := range rows {
		want := k
		if k >= 7 {
			want = k + 1
		}
		if ev.Details["i"] != float64(want) {
			t.Fatalf("row %d = event %v, want %d", k, ev.Details["i"], want)
		}
	}
	st := w.Stats()
	if st.Rejected != 1 || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want 1 rejected", st)
	}
	data, err := os.ReadFile(filepath.Join(cfg.SpoolDir, "rejected.ndjson"))
	if err != nil || !strings.Contains(string(data), poisonID) || strings.Count(string(data), "\n") != 1 {
		t.Errorf("rejected.ndjson = %q, %v", data, err)
	}
}

// TestWriterRecordContext: a Record whose context ends while the database
// hangs returns the context's error; the event is still written once the
// database answers.
func TestWriterRecordContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	store := &fakeStore{insert: func([]audit.Event) error { <-release; return nil }}
	cfg := testConfig(t)
	cfg.InsertTimeout = time.Hour // the store ignores it anyway
	w := newWriter(t, store, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Record(ctx, seqEvent(0, 0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Record = %v, want DeadlineExceeded", err)
	}
	close(release)
	eventually(t, 5*time.Second, "event not stored", func() bool { return len(store.stored()) == 1 })
}

func TestWriterRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	cfg := testConfig(t)
	if _, err := audit.NewWriter(&fakeStore{}, audit.WriterConfig{}); err == nil {
		t.Error("NewWriter without a spool directory succeeded")
	}
	bad := cfg
	bad.OnSpoolFull = "sometimes"
	if _, err := audit.NewWriter(&fakeStore{}, bad); err == nil {
		t.Error("NewWriter with an unknown policy succeeded")
	}
	w := newWriter(t, &fakeStore{}, cfg)
	if _, err := audit.NewWriter(&fakeStore{}, cfg); !errors.Is(err, audit.ErrSpoolLocked) {
		t.Errorf("second writer on one spool = %v, want ErrSpoolLocked", err)
	}
	if err := w.Record(ctx, audit.Event{}); !errors.Is(err, audit.ErrInvalidEvent) {
		t.Errorf("Record(no action) = %v", err)
	}
	if err := w.Enqueue(audit.Event{Action: "a", UserID: "7"}); !errors.Is(err, audit.ErrInvalidEvent) {
		t.Errorf("Enqueue(bad user) = %v", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if err := w.Record(ctx, seqEvent(0, 0)); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Record after Close = %v", err)
	}
	if err := w.Healthy(); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Healthy after Close = %v", err)
	}
	// The lock is released by Close.
	w2, err := audit.NewWriter(&fakeStore{}, cfg)
	if err != nil {
		t.Fatalf("NewWriter after Close: %v", err)
	}
	_ = w2.Close(ctx)
}
