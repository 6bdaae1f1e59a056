package sessions_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/sessionstest"
)

// testRedis is a Redis client and key prefix of the test's own.
func testRedis(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	return sessionstest.RedisClient(tb, "sessions")
}

func newRedisStore(t *testing.T, p sessionstest.Params) sessions.Store {
	t.Helper()
	rdb, prefix := testRedis(t)
	st, err := sessions.NewRedisStore(rdb, p.Idle, p.Absolute,
		sessions.WithClock(p.Clock.Now), sessions.WithTouchThrottle(p.TouchThrottle), sessions.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRedisStoreContract(t *testing.T) {
	t.Parallel()
	sessionstest.Run(t, newRedisStore)
}

// TestRedisTTL checks what the contract suite cannot see through the clock:
// the TTL Redis itself holds, so Redis drops dead sessions even if nothing
// ever reads them again.
func TestRedisTTL(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	rdb, prefix := testRedis(t)
	clock := start()
	const idle, absolute = 10 * time.Minute, 25 * time.Minute
	st, err := sessions.NewRedisStore(rdb, idle, absolute, sessions.WithClock(clock.Now), sessions.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := sessions.NewToken()
	s, err := st.Create(ctx, tok, sessions.Session{UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	skey, ukey := prefix+"s:"+tok.Key(), prefix+"u:{u1}"
	pttl := func(k string) time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	near := func(what string, got, want time.Duration) {
		t.Helper()
		if got > want || got < want-2*time.Second {
			t.Fatalf("%s TTL = %v, want about %v", what, got, want)
		}
	}
	near("session after create", pttl(skey), idle)
	near("index after create", pttl(ukey), absolute)

	clock.Advance(9 * time.Minute)
	if _, err := st.Touch(ctx, tok.Key(), clock.Now()); err != nil {
		t.Fatal(err)
	}
	near("session after touch", pttl(skey), idle)

	clock.Advance(9 * time.Minute) // 18m in: 7m to the cap
	if _, err := st.Touch(ctx, tok.Key(), clock.Now()); err != nil {
		t.Fatal(err)
	}
	near("session near the cap", pttl(skey), s.AbsoluteExpiresAt.Sub(clock.Now()))

	// A later session stretches the index TTL to its own absolute expiry.
	clock.Advance(time.Minute)
	tok2, _ := sessions.NewToken()
	if _, err := st.Create(ctx, tok2, sessions.Session{UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	near("index after a later session", pttl(ukey), absolute)
}

// TestRedisTTLBackstop: with the clock frozen the store's own check would
// keep the session alive; Redis's TTL still ends it.
func TestRedisTTLBackstop(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	rdb, prefix := testRedis(t)
	clock := start()
	st, err := sessions.NewRedisStore(rdb, 300*time.Millisecond, time.Hour, sessions.WithClock(clock.Now), sessions.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := sessions.NewToken()
	if _, err := st.Create(ctx, tok, sessions.Session{UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, tok.Key()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(450 * time.Millisecond)
	if _, err := st.Get(ctx, tok.Key()); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("Get after the Redis TTL = %v, want ErrNotFound", err)
	}
	if n := rdb.Exists(ctx, prefix+"s:"+tok.Key()).Val(); n != 0 {
		t.Fatalf("session key still in Redis after its TTL")
	}
}

// TestRedisHoldsNoToken: a dump of Redis yields no usable token.
func TestRedisHoldsNoToken(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	rdb, prefix := testRedis(t)
	st, err := sessions.NewRedisStore(rdb, time.Hour, 2*time.Hour, sessions.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := sessions.NewToken()
	if _, err := st.Create(ctx, tok, sessions.Session{UserID: "u1", Email: "a@example.test"}); err != nil {
		t.Fatal(err)
	}
	keys := sessionstest.Keys(t, rdb, prefix)
	if len(keys) != 2 {
		t.Fatalf("keys = %v, want the session and the user index", keys)
	}
	for _, k := range keys {
		dump := k
		switch rdb.Type(ctx, k).Val() {
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				dump += " " + f + "=" + v
			}
		case "zset":
			dump += " " + strings.Join(rdb.ZRange(ctx, k, 0, -1).Val(), " ")
		}
		if strings.Contains(dump, tok.Secret()) {
			t.Fatalf("token found in Redis: %s", dump)
		}
	}
}

// TestRedisCorruptEntry: a value Portero did not write never authenticates.
func TestRedisCorruptEntry(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	rdb, prefix := testRedis(t)
	st, err := sessions.NewRedisStore(rdb, time.Hour, 2*time.Hour, sessions.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := sessions.NewToken()
	now := time.Now().UnixMilli()
	rdb.HSet(ctx, prefix+"s:"+tok.Key(), "v", "{not json", "ls", now, "ax", now+60_000)
	if _, err := st.Get(ctx, tok.Key()); err == nil {
		t.Fatal("Get accepted a corrupt session")
	}
	if _, err := st.Touch(ctx, tok.Key(), time.Now()); err == nil {
		t.Fatal("Touch accepted a corrupt session")
	}
}

func TestNewRedisStoreOptions(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	cases := map[string]struct {
		idle, abs time.Duration
		opts      []sessions.Option
	}{
		"zero idle":            {0, time.Hour, nil},
		"zero absolute":        {time.Hour, 0, nil},
		"negative throttle":    {time.Hour, time.Hour, []sessions.Option{sessions.WithTouchThrottle(-time.Second)}},
		"throttle over half":   {time.Hour, time.Hour, []sessions.Option{sessions.WithTouchThrottle(31 * time.Minute)}},
		"brace in prefix":      {time.Hour, time.Hour, []sessions.Option{sessions.WithKeyPrefix("app:{x}:")}},
		"nil clock":            {time.Hour, time.Hour, []sessions.Option{sessions.WithClock(nil)}},
		"zero max sessions":    {time.Hour, time.Hour, []sessions.Option{sessions.WithMaxSessions(0)}},
		"zero sweep interval ": {time.Hour, time.Hour, []sessions.Option{sessions.WithSweepInterval(0)}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := sessions.NewRedisStore(rdb, c.idle, c.abs, c.opts...); err == nil {
				t.Fatal("NewRedisStore accepted it")
			}
			if _, err := sessions.NewMemoryStore(c.idle, c.abs, c.opts...); err == nil {
				t.Fatal("NewMemoryStore accepted it")
			}
		})
	}
	if _, err := sessions.NewRedisStore(nil, time.Hour, time.Hour); err == nil {
		t.Fatal("NewRedisStore accepted a nil client")
	}
}

func TestNewRedisClient(t *testing.T) {
	t.Parallel()
	cases := []struct {
		url     string
		wantErr bool
		kind    string // "client", "cluster"
	}{
		{url: "redis://127.0.0.1:6379/0", kind: "client"},
		{url: "redis://:secret@localhost:6380/2?dial_timeout=2s", kind: "client"},
		{url: "rediss://user:pw@cache.example:6380", kind: "client"},
		{url: "redis://sentinel1:26379/0?master_name=mymaster&addr=sentinel2:26379", kind: "client"},
		{url: "redis+cluster://node1:7000?addr=node2:7000&addr=node3:7000", kind: "cluster"},
		{url: "rediss+cluster://user:pw@node1:7000", kind: "cluster"},
		{url: "memory://", wantErr: true},
		{url: "http://127.0.0.1:6379", wantErr: true},
		{url: "redis://127.0.0.1:6379/notadb", wantErr: true},
		{url: "redis://127.0.0.1:6379/0?no_such_option=1", wantErr: true},
		{url: "redis://user:hunter2@[::1:6379", wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			t.Parallel()
			rdb, err := sessions.NewRedisClient(c.url)
			if c.wantErr {
				if err == nil {
					_ = rdb.Close()
					t.Fatal("accepted")
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error repeats the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			switch cl := rdb.(type) {
			case *redis.Client:
				if c.kind != "client" {
					t.Fatalf("got %T", rdb)
				}
				o := cl.Options()
				if !o.ContextTimeoutEnabled || o.ReadTimeout != time.Second || o.MaxRetries != 1 {
					t.Fatalf("options not fail-fast: ctx %v read %v retries %d", o.ContextTimeoutEnabled, o.ReadTimeout, o.MaxRetries)
				}
				if strings.Contains(c.url, "dial_timeout=2s") && o.DialTimeout != 2*time.Second {
					t.Fatalf("URL dial_timeout ignored: %v", o.DialTimeout)
				} else if !strings.Contains(c.url, "dial_timeout") && o.DialTimeout != 500*time.Millisecond {
					t.Fatalf("DialTimeout = %v", o.DialTimeout)
				}
			case *redis.ClusterClient:
				if c.kind != "cluster" {
					t.Fatalf("got %T", rdb)
				}
				if o := cl.Options(); !o.ContextTimeoutEnabled || o.DialTimeout != 500*time.Millisecond {
					t.Fatalf("cluster options not fail-fast: %+v", o)
				}
			default:
				t.Fatalf("unexpected client %T", rdb)
			}
		})
	}
}

// TestRedisDeadFailsFast: a store on a Redis that is not there answers with
// an error quickly, so the proxy can answer 503 instead of hanging.
func TestRedisDeadFailsFast(t *testing.T) {
	t.Parallel()
	rdb, err := sessions.NewRedisClient("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := sessions.NewRedisStore(rdb, time.Hour, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	tok, _ := sessions.NewToken()
	if _, err := st.Touch(context.Background(), tok.Key(), time.Now()); err == nil || errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("Touch on a dead Redis = %v, want a connection error", err)
	}
	if err := st.Ping(context.Background()); err == nil {
		t.Fatal("Ping on a dead Redis succeeded")
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("dead Redis took %v to fail", d)
	}
}
