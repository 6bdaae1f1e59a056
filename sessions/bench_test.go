package sessions_test

import (
	"context"
	"testing"
	"time"

	"github.com/portero/portero/sessions"
)

// The request path: what the proxy does per authenticated request.
//
//	go test -run '^$' -bench RequestPath -benchmem ./sessions/
//
// "touch" is Store.Touch alone, "get+touch" the naive Get followed by Touch.
// "every" writes on every request (no throttle: the Redis store runs
// touchScript, one EVALSHA); "throttled" writes once a minute, so the
// measured requests are reads (the Redis store does one HMGET).
// The "alt-" cases are the designs Touch did not take, measured on the same
// workload: "alt-script-readonly" is the script when it does not write (what
// a throttled, script-only Touch would cost per read); "alt-hmget+slide/every"
// is the HMGET-then-slideScript path without a throttle (two round trips per
// request).

const (
	benchIdle     = time.Hour
	benchAbsolute = 12 * time.Hour
	benchThrottle = time.Minute
)

func benchSession() sessions.Session {
	legacy := int64(1234)
	return sessions.Session{
		UserID: "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab", Email: "analyst@example.test",
		Roles: []string{"analyst"}, Permissions: []string{"samples:read", "samples:write"},
		LegacyID: &legacy, IP: "203.0.113.7",
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
	}
}

// benchClock hands out a strictly increasing time, one millisecond per
// call, so an unthrottled Touch really writes every time.
type benchClock struct{ ms int64 }

func (c *benchClock) next() time.Time { c.ms++; return time.UnixMilli(c.ms) }

func newBenchClock() *benchClock { return &benchClock{ms: time.Now().UnixMilli()} }

func benchStores(b *testing.B) map[string]func(throttle time.Duration) sessions.Store {
	return map[string]func(throttle time.Duration) sessions.Store{
		"redis": func(throttle time.Duration) sessions.Store {
			rdb, prefix := testRedis(b)
			st, err := sessions.NewRedisStore(rdb, benchIdle, benchAbsolute,
				sessions.WithKeyPrefix(prefix), sessions.WithTouchThrottle(throttle))
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
		"memory": func(throttle time.Duration) sessions.Store {
			st, err := sessions.NewMemoryStore(benchIdle, benchAbsolute, sessions.WithTouchThrottle(throttle))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close(context.Background()) })
			return st
		},
	}
}

func createBench(b *testing.B, st sessions.Store) string {
	b.Helper()
	tok, err := sessions.NewToken()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Create(context.Background(), tok, benchSession()); err != nil {
		b.Fatal(err)
	}
	return tok.Key()
}

func BenchmarkRequestPath(b *testing.B) {
	ctx := context.Background()
	for _, store := range []string{"redis", "memory"} {
		for _, mode := range []struct {
			name     string
			throttle time.Duration
		}{{"every", 0}, {"throttled", benchThrottle}} {
			b.Run(store+"/touch/"+mode.name, func(b *testing.B) {
				st := benchStores(b)[store](mode.throttle)
				key, clock := createBench(b, st), newBenchClock()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := st.Touch(ctx, key, clock.next()); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(store+"/get+touch/"+mode.name, func(b *testing.B) {
				st := benchStores(b)[store](mode.throttle)
				key, clock := createBench(b, st), newBenchClock()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := st.Get(ctx, key); err != nil {
						b.Fatal(err)
					}
					if _, err := st.Touch(ctx, key, clock.next()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	b.Run("redis/alt-script-readonly", func(b *testing.B) {
		st := benchStores(b)["redis"](0).(*sessions.RedisStore)
		key := createBench(b, st)
		// The session was created at the real now; touching at a time before
		// that never writes.
		past := time.Now().Add(-time.Second)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.TouchScripted(ctx, key, past); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redis/alt-hmget+slide/every", func(b *testing.B) {
		st := benchStores(b)["redis"](0).(*sessions.RedisStore)
		key, clock := createBench(b, st), newBenchClock()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.TouchThrottled(ctx, key, clock.next()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRequestPathParallel is validation throughput: many requests in
// flight at once, each touching its own session.
func BenchmarkRequestPathParallel(b *testing.B) {
	for _, store := range []string{"redis", "memory"} {
		b.Run(store+"/touch/throttled", func(b *testing.B) {
			st := benchStores(b)[store](benchThrottle)
			// One session per goroutine, made up front: RunParallel's
			// goroutines must not call b.Fatal.
			keys := make(chan string, 64)
			for range cap(keys) {
				keys <- createBench(b, st)
			}
			b.SetParallelism(16) // I/O bound: keep Redis busy, not the 2 cores
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				key, clock := <-keys, newBenchClock()
				for pb.Next() {
					if _, err := st.Touch(ctx, key, clock.next()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
