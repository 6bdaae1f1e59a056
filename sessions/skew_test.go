package sessions_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portero/portero/sessions"
)

// TestRedisClockSkewBetweenInstances: two Portero instances share one
// Redis and their clocks differ by a few seconds. A session used through
// both, alternately, every 10s for ten idle periods never reads as expired
// (no flapping between instances), and once use stops it ends on both
// within the skew of the idle boundary and never comes back.
func TestRedisClockSkewBetweenInstances(t *testing.T) {
	t.Parallel()
	const idle, absolute, throttle = time.Minute, time.Hour, 15 * time.Second
	for _, skew := range []time.Duration{5 * time.Second, -5 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			rdb, prefix := testRedis(t)
			clock := start()
			skewed := func() time.Time { return clock.Now().Add(skew) }
			a, err := sessions.NewRedisStore(rdb, idle, absolute,
				sessions.WithClock(clock.Now), sessions.WithTouchThrottle(throttle), sessions.WithKeyPrefix(prefix))
			if err != nil {
				t.Fatal(err)
			}
			b, err := sessions.NewRedisStore(rdb, idle, absolute,
				sessions.WithClock(skewed), sessions.WithTouchThrottle(throttle), sessions.WithKeyPrefix(prefix))
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := sessions.NewToken()
			if _, err := a.Create(ctx, tok, sessions.Session{UserID: "u-skew"}); err != nil {
				t.Fatal(err)
			}
			key := tok.Key()
			for i := range 60 { // ten minutes, ten idle periods
				clock.Advance(10 * time.Second)
				st, now := a, clock.Now()
				if i%2 == 1 {
					st, now = b, skewed()
				}
				if _, err := st.Touch(ctx, key, now); err != nil {
					t.Fatalf("step %d (%v in): Touch on instance %d: %v", i, time.Duration(i+1)*10*time.Second, i%2, err)
				}
				for n, s := range []sessions.Store{a, b} {
					if _, err := s.Get(ctx, key); err != nil {
						t.Fatalf("step %d: Get on instance %d: %v", i, n, err)
					}
				}
			}
			// Use stops. The last slide recorded may be up to the throttle
			// old; both instances keep the session until idle minus the
			// throttle and the skew, and drop it by idle plus the skew.
			abs := func(d time.Duration) time.Duration { return max(d, -d) }
			safe := idle - throttle - abs(skew) - time.Second
			clock.Advance(safe)
			for n, s := range []sessions.Store{a, b} {
				if _, err := s.Get(ctx, key); err != nil {
					t.Errorf("%v after the last use: instance %d: %v, want alive", safe, n, err)
				}
			}
			clock.Advance(idle + 2*abs(skew) - safe)
			for n, s := range []sessions.Store{a, b} {
				if _, err := s.Get(ctx, key); !errors.Is(err, sessions.ErrNotFound) {
					t.Errorf("idle plus twice the skew after the last use: instance %d: %v, want ErrNotFound", n, err)
				}
			}
			// The instance whose clock lags must not revive it by touching.
			if _, err := b.Touch(ctx, key, skewed()); !errors.Is(err, sessions.ErrNotFound) {
				t.Errorf("Touch after expiry: %v, want ErrNotFound", err)
			}
			if _, err := a.Get(ctx, key); !errors.Is(err, sessions.ErrNotFound) {
				t.Errorf("after a late Touch: %v, want ErrNotFound", err)
			}
		})
	}
}
