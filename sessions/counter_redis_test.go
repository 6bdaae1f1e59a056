package sessions_test

import (
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/counterstest"
)

func TestRedisCountersContract(t *testing.T) {
	t.Parallel()
	counterstest.Run(t, counterstest.RedisEnv)
}

func newRedisCounters(t *testing.T) (*sessions.RedisCounters, string) {
	t.Helper()
	rdb, prefix := counterstest.RedisClient(t)
	c, err := sessions.NewRedisCounters(rdb, sessions.WithCounterKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return c, prefix
}

// TestRedisCountersLayout checks what the contract cannot see: the keys and
// TTLs Redis holds, so Redis itself ends windows and locks, and that ended
// attempts leave no keys behind.
func TestRedisCountersLayout(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c, prefix := newRedisCounters(t)
	rdb, _ := counterstest.RedisClient(t) // a second client to look with
	lim := sessions.Limit{Max: 2, Window: 10 * time.Minute, LockFor: 30 * time.Minute}
	nKey, lKey := prefix+"{user:42}:n", prefix+"{user:42}:l"
	keys := func() []string {
		t.Helper()
		k, err := counterstest.PrefixKeys(ctx, rdb, prefix)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(k)
		return k
	}
	near := func(k string, want time.Duration) {
		t.Helper()
		got := rdb.PTTL(ctx, k).Val()
		if got > want || got < want-2*time.Second {
			t.Fatalf("PTTL %s = %v, want about %v", k, got, want)
		}
	}

	if _, err := c.Reserve(ctx, "user:42", lim); err != nil {
		t.Fatal(err)
	}
	if got := keys(); !slices.Equal(got, []string{nKey}) {
		t.Fatalf("keys after Reserve = %v, want [%s]", got, nKey)
	}
	near(nKey, lim.Window)
	if _, err := c.Reserve(ctx, "user:42", lim); err != nil {
		t.Fatal(err)
	}
	near(nKey, lim.Window) // not pushed forward, still within the first window
	for range 2 {
		if _, _, err := c.Fail(ctx, "user:42", lim); err != nil {
			t.Fatal(err)
		}
	}
	if got := keys(); !slices.Equal(got, []string{lKey}) {
		t.Fatalf("keys after the lock = %v, want only [%s]", got, lKey)
	}
	near(lKey, lim.LockFor)
	if _, err := c.Unlock(ctx, "user:42"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reserve(ctx, "user:42", lim); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Succeed(ctx, "user:42"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reserve(ctx, "ip:192.0.2.1", lim); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, "ip:192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	if got := keys(); len(got) != 0 {
		t.Fatalf("keys left after every attempt ended: %v", got)
	}
}

// TestRedisCountersOneSlot: a counter and its lock hash to the same Redis
// Cluster slot whatever the key, so the scripts that touch both work on a
// Cluster.
func TestRedisCountersOneSlot(t *testing.T) {
	t.Parallel()
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16 check value = %#x, want 0x31c3", got)
	}
	for _, key := range []string{"user:8d0f6a9e-3c1f-4b7e-9d2a-0a1b2c3d4e5f", "ip:2001:db8::/64", "email:abc", "x"} {
		for _, prefix := range []string{sessions.DefaultCounterKeyPrefix, "", "p:"} {
			n, l := prefix+"{"+key+"}:n", prefix+"{"+key+"}:l"
			if clusterSlot(n) != clusterSlot(l) || clusterSlot(n) != clusterSlot("{"+key+"}") {
				t.Errorf("%s and %s are in different slots", n, l)
			}
		}
	}
}

// clusterSlot is Redis Cluster's key-to-slot mapping (CRC16/XMODEM of the
// hash tag, or of the whole key without one, mod 16384).
func clusterSlot(key string) uint16 {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	return crc16([]byte(key)) % 16384
}

func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// TestRedisCountersShared: two Portero instances (two clients, two stores)
// share one count. 50 attempts spread over both still give exactly Max
// checks and one lock.
func TestRedisCountersShared(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	a, prefix := newRedisCounters(t)
	rdb2, _ := counterstest.RedisClient(t)
	b, err := sessions.NewRedisCounters(rdb2, sessions.WithCounterKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	stores := []*sessions.RedisCounters{a, b}
	lim := sessions.Limit{Max: 5, Window: time.Minute, LockFor: time.Minute}
	var checks, locks atomic.Int32
	var wg sync.WaitGroup
	startCh := make(chan struct{})
	for i := range 50 {
		st := stores[i%2]
		wg.Go(func() {
			<-startCh
			r, err := st.Reserve(ctx, "acct", lim)
			if err != nil || !r.Allowed {
				return
			}
			checks.Add(1)
			if _, locked, _ := st.Fail(ctx, "acct", lim); locked {
				locks.Add(1)
			}
		})
	}
	close(startCh)
	wg.Wait()
	if checks.Load() != 5 || locks.Load() != 1 {
		t.Fatalf("%d checks, %d locks over two instances; want 5 and 1", checks.Load(), locks.Load())
	}
	for i, st := range stores {
		if r, err := st.Reserve(ctx, "acct", lim); err != nil || !r.Locked {
			t.Fatalf("instance %d: Reserve = %+v, %v; want locked", i, r, err)
		}
	}
	if was, err := b.Unlock(ctx, "acct"); err != nil || !was {
		t.Fatalf("Unlock on the other instance = %v, %v", was, err)
	}
	if r, err := a.Reserve(ctx, "acct", lim); err != nil || !r.Allowed {
		t.Fatalf("Reserve after an unlock elsewhere = %+v, %v", r, err)
	}
}

// TestRedisCountersDown: with Redis unreachable every call fails fast with
// ErrUnavailable, so login can answer 503 at once.
func TestRedisCountersDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there any more
	rdb, err := sessions.NewRedisClient("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := sessions.NewRedisCounters(rdb)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	lim := sessions.Limit{Max: 5, Window: time.Minute, LockFor: time.Minute}
	calls := map[string]func() error{
		"Reserve": func() error { _, err := c.Reserve(ctx, "k", lim); return err },
		"Fail":    func() error { _, _, err := c.Fail(ctx, "k", lim); return err },
		"Succeed": func() error { _, err := c.Succeed(ctx, "k"); return err },
		"Release": func() error { return c.Release(ctx, "k") },
		"Unlock":  func() error { _, err := c.Unlock(ctx, "k"); return err },
		"Status":  func() error { _, err := c.Status(ctx, "k"); return err },
		"Ping":    func() error { return c.Ping(ctx) },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			err := call()
			if took := time.Since(began); took > time.Second {
				t.Errorf("took %v with Redis down, want under 1s", took)
			}
			if !errors.Is(err, sessions.ErrUnavailable) {
				t.Errorf("with Redis down: %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestNewRedisCountersRefuses(t *testing.T) {
	t.Parallel()
	if _, err := sessions.NewRedisCounters(nil); err == nil {
		t.Error("nil client accepted")
	}
	rdb, _ := counterstest.RedisClient(t)
	if _, err := sessions.NewRedisCounters(rdb, sessions.WithCounterKeyPrefix("p{x}:")); err == nil {
		t.Error("prefix with braces accepted")
	}
}
