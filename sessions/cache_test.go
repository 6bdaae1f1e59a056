package sessions_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/sessionstest"
)

// cacheTTL is long, so a copy that should have been dropped is still
// there to be (wrongly) served when a test looks.
const cacheTTL = time.Minute

// newCachedStore puts a cache in front of a Redis store under prefix,
// reached through its own client (another instance, as far as Redis can
// tell), and waits until its subscription is up.
func newCachedStore(t *testing.T, p sessionstest.Params, prefix string) (*sessions.CachedStore, *sessions.RedisStore, string) {
	t.Helper()
	url := os.Getenv("PORTERO_TEST_REDIS")
	if url == "" {
		url = sessionstest.DefaultRedis
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	opt.ClientName = "portero-cache-test-" + hex.EncodeToString(raw[:])
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	if p.Clock == nil {
		p.Clock = sessionstest.NewFakeClock(time.Now().UTC().Truncate(time.Millisecond))
	}
	if p.Idle == 0 {
		p.Idle, p.Absolute = 30*time.Minute, time.Hour
	}
	r, err := sessions.NewRedisStore(rdb, p.Idle, p.Absolute,
		sessions.WithClock(p.Clock.Now), sessions.WithTouchThrottle(p.TouchThrottle), sessions.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sessions.NewCachedRedisStore(r, rdb, cacheTTL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	waitSubscribed(t, c, 0)
	return c, r, opt.ClientName
}

// waitSubscribed waits until c's subscription is up after more than
// resets resets.
func waitSubscribed(t *testing.T, c *sessions.CachedStore, resets uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for st := c.Stats(); !st.Subscribed || st.Resets <= resets; st = c.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the cache's subscription did not come up: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCachedStoreContract: with the cache in front, the Redis store still
// keeps every promise of the store contract, with a throttle (so copies
// are served) and without one (so they never are).
func TestCachedStoreContract(t *testing.T) {
	t.Parallel()
	sessionstest.Run(t, func(t *testing.T, p sessionstest.Params) sessions.Store {
		_, prefix := testRedis(t)
		c, _, _ := newCachedStore(t, p, prefix)
		return c
	})
}

// instances are two caches over one Redis, as two Portero instances are.
func twoInstances(t *testing.T, throttle time.Duration) (a, b *sessions.CachedStore, bRaw *sessions.RedisStore, bName string, clock *sessionstest.FakeClock) {
	_, prefix := testRedis(t)
	clock = sessionstest.NewFakeClock(time.Now().UTC().Truncate(time.Millisecond))
	p := sessionstest.Params{Clock: clock, TouchThrottle: throttle}
	a, _, _ = newCachedStore(t, p, prefix)
	b, bRaw, bName = newCachedStore(t, p, prefix)
	return a, b, bRaw, bName, clock
}

func login(t *testing.T, st sessions.Store, userID string, roles ...string) string {
	t.Helper()
	tok, err := sessions.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(context.Background(), tok, sessions.Session{UserID: userID, Email: userID + "@example.test", Roles: roles}); err != nil {
		t.Fatal(err)
	}
	return tok.Key()
}

// TestCachedStoreRevokesEverywhere: instance b has a copy of the session
// (it just served it); a revocation through instance a is in force on b's
// very next request, for every kind of revocation, many times over.
func TestCachedStoreRevokesEverywhere(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	a, b, _, _, clock := twoInstances(t, 10*time.Second)
	user := "00000000-0000-4000-8000-00000000cafe"
	warm := func(key string) {
		t.Helper()
		for range 2 {
			if _, err := b.Touch(ctx, key, clock.Now()); err != nil {
				t.Fatalf("b.Touch before the revocation: %v", err)
			}
		}
	}
	revocations := map[string]func(key string) error{
		"Delete": func(key string) error { return a.Delete(ctx, key) },
		"DeleteByUser": func(string) error {
			_, err := a.DeleteByUser(ctx, user, "")
			return err
		},
		"DeleteByID": func(key string) error {
			l, err := a.ListByUser(ctx, user)
			if err != nil || len(l) == 0 {
				return errors.Join(err, errors.New("no session to delete"))
			}
			return a.DeleteByID(ctx, user, l[0].ID)
		},
	}
	for name, revoke := range revocations {
		for i := range 30 {
			key := login(t, a, user, "analyst")
			warm(key)
			if err := revoke(key); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if s, err := b.Touch(ctx, key, clock.Now()); !errors.Is(err, sessions.ErrNotFound) {
				t.Fatalf("%s #%d: b served the revoked session: %+v, %v", name, i, s, err)
			}
		}
	}
	// A role change through a shows on b at once.
	key := login(t, a, user, "analyst")
	warm(key)
	if err := a.UpdateUser(ctx, user, func(s *sessions.Session) { s.Roles = []string{"viewer"} }); err != nil {
		t.Fatal(err)
	}
	if s, err := b.Touch(ctx, key, clock.Now()); err != nil || !slices.Equal(s.Roles, []string{"viewer"}) {
		t.Fatalf("b after the role change: roles %v, %v", s.Roles, err)
	}
	if st := b.Stats(); st.Hits == 0 {
		t.Fatalf("b never served from its cache, so this test proved nothing: %+v", st)
	}
	if st := a.Stats(); st.AckTimeouts != 0 {
		t.Errorf("%d broadcasts went unacknowledged", st.AckTimeouts)
	}
}

// TestCachedStoreForgetsWhenDeaf: a copy survives a change nobody broadcast
// (this is what the broadcasts are for), but not a lost subscription: when
// b's subscription breaks it empties its cache and asks the store again.
// A copy also never outlives the cache TTL.
func TestCachedStoreForgetsWhenDeaf(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	_, b, bRaw, bName, clock := twoInstances(t, 10*time.Second)
	user := "00000000-0000-4000-8000-00000000beef"
	key := login(t, b, user)
	if _, err := b.Touch(ctx, key, clock.Now()); err != nil {
		t.Fatal(err)
	}
	// Deleted behind the cache's back: the copy is still served...
	if err := bRaw.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Touch(ctx, key, clock.Now()); err != nil {
		t.Fatalf("the copy was not served (%v): the cache is not caching", err)
	}
	// ...but not past the TTL...
	if _, err := b.Touch(ctx, key, clock.Now().Add(cacheTTL)); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("a copy outlived the cache TTL: %v", err)
	}
	// ...and not once the subscription has broken and come back.
	key = login(t, b, user)
	if _, err := b.Touch(ctx, key, clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := bRaw.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	resets := b.Stats().Resets
	killPubSub(t, bName)
	waitSubscribed(t, b, resets+1) // down (one reset), then up again (another)
	if _, err := b.Touch(ctx, key, clock.Now()); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("b served a copy kept across a broken subscription: %v", err)
	}
}

// killPubSub kills the subscribed connections of the client named name, as
// a network failure would.
func killPubSub(t *testing.T, name string) {
	t.Helper()
	rdb, _ := testRedis(t)
	ctx := testCtx(t)
	list, err := rdb.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		f := map[string]string{}
		for _, kv := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["name"] == name && f["sub"] != "0" {
			if err := rdb.Do(ctx, "CLIENT", "KILL", "ID", f["id"]).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed == 0 {
		t.Fatalf("no subscribed connection named %s", name)
	}
}
