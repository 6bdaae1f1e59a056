// Package sessionstest is the contract suite every sessions.Store must pass,
// and the fake clock it drives them with. Each store's test file calls Run
// with a constructor; the suite never sleeps, it advances the clock.
package sessionstest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portero/portero/sessions"
)

// FakeClock is a clock tests move by hand. Safe for concurrent use.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a clock stopped at start.
func NewFakeClock(start time.Time) *FakeClock { return &FakeClock{now: start} }

// Now returns the clock's time; pass it as sessions.WithClock(c.Now).
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *FakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Params is the store a test asks for. The constructor must pass
// sessions.WithClock(p.Clock.Now) and sessions.WithTouchThrottle(p.TouchThrottle),
// give the store the two timeouts, isolate it from every other test (a
// fresh key prefix) and clean it up with t.Cleanup.
type Params struct {
	Clock         *FakeClock
	Idle          time.Duration
	Absolute      time.Duration
	TouchThrottle time.Duration
}

// NewStore builds a fresh, empty store for one test.
type NewStore func(t *testing.T, p Params) sessions.Store

// Default timeouts of the suite; tests that need others say so.
const (
	idle     = 10 * time.Minute
	absolute = time.Hour
)

// testTimeout bounds every test, so a hung store fails instead of stalling
// the run.
const testTimeout = 20 * time.Second

// Run runs the contract suite against the stores newStore makes.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore NewStore)
	}{
		{"CreateGet", testCreateGet},
		{"CreateCopies", testCreateCopies},
		{"CreateRejects", testCreateRejects},
		{"UnknownKey", testUnknownKey},
		{"IdleExpirySlides", testIdleExpirySlides},
		{"IdleBoundary", testIdleBoundary},
		{"AbsoluteCap", testAbsoluteCap},
		{"TouchThrottle", testTouchThrottle},
		{"TouchNeverGoesBack", testTouchNeverGoesBack},
		{"Delete", testDelete},
		{"ListByUser", testListByUser},
		{"DeleteByID", testDeleteByID},
		{"DeleteByUser", testDeleteByUser},
		{"UpdateUser", testUpdateUser},
		{"ConcurrentTouches", testConcurrentTouches},
		{"ConcurrentCreateDelete", testConcurrentCreateDelete},
		{"CancelledContext", testCancelledContext},
		{"Count", testCount},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore)
		})
	}
}

// env is one test's store, clock and context.
type env struct {
	st    sessions.Store
	clock *FakeClock
	ctx   context.Context
	p     Params
}

func setup(t *testing.T, newStore NewStore, p Params) env {
	t.Helper()
	if p.Clock == nil {
		// Real time (to the millisecond) as the start, so relative TTLs a
		// store derives from this clock are sane wherever it runs.
		p.Clock = NewFakeClock(time.Now().UTC().Truncate(time.Millisecond))
	}
	if p.Idle == 0 {
		p.Idle = idle
	}
	if p.Absolute == 0 {
		p.Absolute = absolute
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return env{st: newStore(t, p), clock: p.Clock, ctx: ctx, p: p}
}

// identity is a session as a login would make it.
func identity(userID string) sessions.Session {
	legacy := int64(9_007_199_254_740_993) // 2^53+1: survives only if nothing rounds through a float
	return sessions.Session{
		UserID:      userID,
		Email:       userID + "@example.test",
		Roles:       []string{"analyst", "viewer"},
		Permissions: []string{"samples:read", "samples:write"},
		LegacyID:    &legacy,
		IP:          "203.0.113.7",
		UserAgent:   "Mozilla/5.0 (sessionstest) \"quoted\" ünïcode",
	}
}

func newUser() string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", rand.Uint64()&0xffffffffffff)
}

func (e env) create(t *testing.T, s sessions.Session) (sessions.Token, sessions.Session) {
	t.Helper()
	tok, err := sessions.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.st.Create(e.ctx, tok, s)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return tok, got
}

func (e env) mustGet(t *testing.T, key string) sessions.Session {
	t.Helper()
	s, err := e.st.Get(e.ctx, key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return s
}

func (e env) mustTouch(t *testing.T, key string) sessions.Session {
	t.Helper()
	s, err := e.st.Touch(e.ctx, key, e.clock.Now())
	if err != nil {
		t.Fatalf("Touch at %v: %v", e.clock.Now(), err)
	}
	return s
}

func (e env) wantGone(t *testing.T, key string) {
	t.Helper()
	if s, err := e.st.Get(e.ctx, key); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("Get = %+v, %v; want ErrNotFound", s, err)
	}
	if s, err := e.st.Touch(e.ctx, key, e.clock.Now()); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("Touch = %+v, %v; want ErrNotFound", s, err)
	}
}

func sameIdentity(t *testing.T, got, want sessions.Session) {
	t.Helper()
	if got.UserID != want.UserID || got.Email != want.Email || got.IP != want.IP || got.UserAgent != want.UserAgent ||
		!slices.Equal(got.Roles, want.Roles) || !slices.Equal(got.Permissions, want.Permissions) ||
		(got.LegacyID == nil) != (want.LegacyID == nil) || (got.LegacyID != nil && *got.LegacyID != *want.LegacyID) {
		t.Fatalf("identity differs:\n got  %+v\n want %+v", got, want)
	}
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func testCreateGet(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	in := identity(newUser())
	now := e.clock.Now()
	tok, created := e.create(t, in)

	if len(created.ID) != 32 || created.ID == tok.Secret() {
		t.Fatalf("ID %q: want 32 hex characters, unrelated to the token", created.ID)
	}
	if created.Key != tok.Key() {
		t.Fatalf("Key = %q, want tok.Key()", created.Key)
	}
	sameIdentity(t, created, in)
	wantTime(t, "CreatedAt", created.CreatedAt, now)
	wantTime(t, "LastSeenAt", created.LastSeenAt, now)
	wantTime(t, "IdleExpiresAt", created.IdleExpiresAt, now.Add(e.p.Idle))
	wantTime(t, "AbsoluteExpiresAt", created.AbsoluteExpiresAt, now.Add(e.p.Absolute))
	wantTime(t, "ExpiresAt", created.ExpiresAt(), now.Add(e.p.Idle))

	got := e.mustGet(t, tok.Key())
	sameIdentity(t, got, in)
	if got.ID != created.ID || got.Key != created.Key {
		t.Fatalf("Get returned ID %q Key %q, Create %q %q", got.ID, got.Key, created.ID, created.Key)
	}
	for _, p := range [][2]time.Time{
		{got.CreatedAt, created.CreatedAt}, {got.LastSeenAt, created.LastSeenAt},
		{got.IdleExpiresAt, created.IdleExpiresAt}, {got.AbsoluteExpiresAt, created.AbsoluteExpiresAt},
	} {
		wantTime(t, "stored time", p[0], p[1])
	}

	// The store keys by the token's hash: the raw secret finds nothing.
	if _, err := e.st.Get(e.ctx, tok.Secret()); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("Get(secret) err = %v, want ErrNotFound", err)
	}

	// A caller-chosen public id is kept; otherwise ids are distinct.
	in2 := identity(in.UserID)
	in2.ID = "0123456789abcdef0123456789abcdef"
	_, c2 := e.create(t, in2)
	_, c3 := e.create(t, identity(in.UserID))
	if c2.ID != in2.ID || c3.ID == created.ID || c3.ID == c2.ID {
		t.Fatalf("ids: %q %q %q", created.ID, c2.ID, c3.ID)
	}

	// Minimal identity: no roles, no legacy id.
	_, bare := e.create(t, sessions.Session{UserID: newUser()})
	if got := e.mustGet(t, bare.Key); got.LegacyID != nil || len(got.Roles) != 0 || got.UserID != bare.UserID {
		t.Fatalf("bare session came back as %+v", got)
	}
}

func testCreateCopies(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	in := identity(newUser())
	tok, created := e.create(t, in)

	// Neither the caller's input nor a returned session aliases the store.
	in.Roles[0] = "mutated-input"
	*in.LegacyID = 1
	created.Roles[0] = "mutated-created"
	got := e.mustGet(t, tok.Key())
	got.Roles[0] = "mutated-got"
	*got.LegacyID = 2
	again := e.mustGet(t, tok.Key())
	if again.Roles[0] != "analyst" || *again.LegacyID != 9_007_199_254_740_993 {
		t.Fatalf("stored session changed through a returned value: %+v", again)
	}
}

func testCreateRejects(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	if _, err := e.st.Create(e.ctx, sessions.Token{}, identity(newUser())); !errors.Is(err, sessions.ErrInvalidToken) {
		t.Fatalf("zero token: err = %v, want ErrInvalidToken", err)
	}
	tok, err := sessions.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Create(e.ctx, tok, sessions.Session{Email: "x@example.test"}); !errors.Is(err, sessions.ErrInvalidSession) {
		t.Fatalf("no user id: err = %v, want ErrInvalidSession", err)
	}
	owner, intruder := newUser(), newUser()
	first, _ := e.create(t, identity(owner))
	if _, err := e.st.Create(e.ctx, first, identity(intruder)); !errors.Is(err, sessions.ErrExists) {
		t.Fatalf("reused token: err = %v, want ErrExists", err)
	}
	// The refused Create leaves the original untouched and gives the other
	// user no handle on it.
	if got := e.mustGet(t, first.Key()); got.UserID != owner {
		t.Fatalf("original session now %+v", got)
	}
	if l, err := e.st.ListByUser(e.ctx, intruder); err != nil || len(l) != 0 {
		t.Fatalf("ListByUser(other user) after a refused Create = %+v, %v", l, err)
	}
	if n, err := e.st.DeleteByUser(e.ctx, intruder, ""); err != nil || n != 0 {
		t.Fatalf("DeleteByUser(other user) after a refused Create = %d, %v", n, err)
	}
	e.mustGet(t, first.Key())
}

func testUnknownKey(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	tok, _ := sessions.NewToken()
	e.wantGone(t, tok.Key())
	e.wantGone(t, "")
	if err := e.st.Delete(e.ctx, tok.Key()); err != nil {
		t.Fatalf("Delete(unknown) = %v, want nil", err)
	}
	if err := e.st.DeleteByID(e.ctx, newUser(), "nope"); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("DeleteByID(unknown) = %v, want ErrNotFound", err)
	}
	if n, err := e.st.DeleteByUser(e.ctx, newUser(), ""); n != 0 || err != nil {
		t.Fatalf("DeleteByUser(unknown) = %d, %v", n, err)
	}
	if l, err := e.st.ListByUser(e.ctx, newUser()); len(l) != 0 || err != nil {
		t.Fatalf("ListByUser(unknown) = %v, %v", l, err)
	}
	called := false
	if err := e.st.UpdateUser(e.ctx, newUser(), func(*sessions.Session) { called = true }); err != nil || called {
		t.Fatalf("UpdateUser(unknown) = %v, fn called %v", err, called)
	}
}

func testIdleExpirySlides(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	tok, _ := e.create(t, identity(newUser()))
	key := tok.Key()

	// Each touch within the idle timeout keeps the session alive for
	// another full idle timeout: 5 × 9m is far past 10m of idleness.
	for range 5 {
		now := e.clock.Advance(e.p.Idle - time.Minute)
		s := e.mustTouch(t, key)
		wantTime(t, "LastSeenAt", s.LastSeenAt, now)
		wantTime(t, "IdleExpiresAt", s.IdleExpiresAt, now.Add(e.p.Idle))
		wantTime(t, "Get LastSeenAt", e.mustGet(t, key).LastSeenAt, now)
	}
	// Get alone does not slide.
	e.clock.Advance(e.p.Idle - time.Minute)
	e.mustGet(t, key)
	e.clock.Advance(time.Minute)
	e.wantGone(t, key)
}

func testIdleBoundary(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	tok, created := e.create(t, identity(newUser()))
	e.clock.Advance(e.p.Idle - time.Millisecond)
	e.mustGet(t, tok.Key())
	// Dead at exactly LastSeenAt+idle, for Get and Touch alike.
	if e.clock.Advance(time.Millisecond); !e.clock.Now().Equal(created.IdleExpiresAt) {
		t.Fatalf("clock %v, idle expiry %v", e.clock.Now(), created.IdleExpiresAt)
	}
	e.wantGone(t, tok.Key())
}

func testAbsoluteCap(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{Idle: 10 * time.Minute, Absolute: 25 * time.Minute})
	tok, created := e.create(t, identity(newUser()))
	key := tok.Key()
	abs := created.AbsoluteExpiresAt

	e.clock.Advance(9 * time.Minute)
	e.mustTouch(t, key)
	e.clock.Advance(9 * time.Minute)
	s := e.mustTouch(t, key)
	wantTime(t, "AbsoluteExpiresAt after touches", s.AbsoluteExpiresAt, abs)
	wantTime(t, "ExpiresAt near the cap", s.ExpiresAt(), abs)

	e.clock.Advance(7*time.Minute - time.Millisecond) // 1ms before the cap
	s = e.mustTouch(t, key)
	wantTime(t, "AbsoluteExpiresAt", s.AbsoluteExpiresAt, abs)
	e.clock.Advance(time.Millisecond) // at the cap, 1ms after the last touch
	e.wantGone(t, key)
	if l, err := e.st.ListByUser(e.ctx, created.UserID); err != nil || len(l) != 0 {
		t.Fatalf("ListByUser after the cap = %v, %v", l, err)
	}
}

func testTouchThrottle(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{TouchThrottle: time.Minute})
	tok, created := e.create(t, identity(newUser()))
	key := tok.Key()

	e.clock.Advance(59 * time.Second)
	s := e.mustTouch(t, key)
	wantTime(t, "LastSeenAt within the throttle", s.LastSeenAt, created.CreatedAt)
	wantTime(t, "IdleExpiresAt within the throttle", s.IdleExpiresAt, created.IdleExpiresAt)

	now := e.clock.Advance(time.Second) // exactly the throttle interval
	s = e.mustTouch(t, key)
	wantTime(t, "LastSeenAt after the throttle", s.LastSeenAt, now)
	wantTime(t, "Get LastSeenAt", e.mustGet(t, key).LastSeenAt, now)

	// A throttled write means expiry runs from the last write, not the
	// last request.
	e.clock.Advance(30 * time.Second)
	e.mustTouch(t, key) // throttled
	e.clock.Advance(e.p.Idle - 30*time.Second)
	e.wantGone(t, key)
}

func testTouchNeverGoesBack(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	tok, _ := e.create(t, identity(newUser()))
	later := e.clock.Advance(5 * time.Minute)
	e.mustTouch(t, tok.Key())
	// Another instance whose clock lags a little touches the session.
	s, err := e.st.Touch(e.ctx, tok.Key(), later.Add(-2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "LastSeenAt after a lagging touch", s.LastSeenAt, later)
}

func testDelete(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	user := newUser()
	tok, _ := e.create(t, identity(user))
	other, _ := e.create(t, identity(user))
	if err := e.st.Delete(e.ctx, tok.Key()); err != nil {
		t.Fatal(err)
	}
	e.wantGone(t, tok.Key())
	if err := e.st.Delete(e.ctx, tok.Key()); err != nil {
		t.Fatalf("second Delete = %v, want nil", err)
	}
	l, err := e.st.ListByUser(e.ctx, user)
	if err != nil || len(l) != 1 || l[0].Key != other.Key() {
		t.Fatalf("ListByUser after Delete = %+v, %v", l, err)
	}
	e.mustGet(t, other.Key())
}

func testCount(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	count := func(want int) {
		t.Helper()
		if n, err := e.st.Count(e.ctx); err != nil || n != want {
			t.Fatalf("Count = %d, %v; want %d", n, err, want)
		}
	}
	count(0)
	alice, bob := newUser(), newUser()
	tok, _ := e.create(t, identity(alice))
	e.create(t, identity(alice))
	e.create(t, identity(bob))
	count(3)
	if err := e.st.Delete(e.ctx, tok.Key()); err != nil {
		t.Fatal(err)
	}
	count(2)
	if _, err := e.st.DeleteByUser(e.ctx, alice, ""); err != nil {
		t.Fatal(err)
	}
	count(1)
}

func testListByUser(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	alice, bob := newUser(), newUser()

	stale, _ := e.create(t, identity(alice)) // will idle out
	e.clock.Advance(time.Minute)
	var want []sessions.Session
	for range 3 {
		_, s := e.create(t, identity(alice))
		want = append(want, s)
		e.clock.Advance(time.Second)
	}
	_, bobs := e.create(t, identity(bob))
	e.clock.Advance(e.p.Idle - time.Minute - 3*time.Second) // stale is now exactly idle
	for _, s := range want {
		e.mustTouch(t, s.Key)
	}
	e.wantGone(t, stale.Key())

	got, err := e.st.ListByUser(e.ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListByUser = %d sessions, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Key != want[i].Key {
			t.Fatalf("session %d: got ID %q Key %q, want %q %q (oldest first)", i, got[i].ID, got[i].Key, want[i].ID, want[i].Key)
		}
		sameIdentity(t, got[i], want[i])
		wantTime(t, "listed LastSeenAt", got[i].LastSeenAt, e.clock.Now())
	}

	b, err := e.st.ListByUser(e.ctx, bob)
	if err != nil || len(b) != 1 || b[0].ID != bobs.ID {
		t.Fatalf("ListByUser(bob) = %+v, %v", b, err)
	}
}

func testDeleteByID(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	alice, bob := newUser(), newUser()
	a1, s1 := e.create(t, identity(alice))
	a2, s2 := e.create(t, identity(alice))
	b1, sb := e.create(t, identity(bob))

	// Bob cannot revoke Alice's session by naming its id, nor learn
	// whether it exists.
	if err := e.st.DeleteByID(e.ctx, bob, s1.ID); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("bob revoking alice's session: err = %v, want ErrNotFound", err)
	}
	e.mustGet(t, a1.Key())

	if err := e.st.DeleteByID(e.ctx, alice, s1.ID); err != nil {
		t.Fatalf("DeleteByID = %v", err)
	}
	e.wantGone(t, a1.Key())
	e.mustGet(t, a2.Key())
	e.mustGet(t, b1.Key())
	if err := e.st.DeleteByID(e.ctx, alice, s1.ID); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("second DeleteByID = %v, want ErrNotFound", err)
	}
	// The key is not an id.
	if err := e.st.DeleteByID(e.ctx, alice, s2.Key); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("DeleteByID(key) = %v, want ErrNotFound", err)
	}
	l, err := e.st.ListByUser(e.ctx, alice)
	if err != nil || len(l) != 1 || l[0].ID != s2.ID {
		t.Fatalf("ListByUser after revoke = %+v, %v", l, err)
	}
	// An expired session cannot be revoked (it is already gone).
	e.clock.Advance(e.p.Idle)
	if err := e.st.DeleteByID(e.ctx, bob, sb.ID); !errors.Is(err, sessions.ErrNotFound) {
		t.Fatalf("DeleteByID(expired) = %v, want ErrNotFound", err)
	}
}

func testDeleteByUser(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	alice, bob := newUser(), newUser()
	var toks []sessions.Token
	for range 4 {
		tok, _ := e.create(t, identity(alice))
		toks = append(toks, tok)
	}
	dead, _ := e.create(t, identity(alice))
	e.clock.Advance(e.p.Idle / 2)
	for _, tok := range toks {
		e.mustTouch(t, tok.Key())
	}
	e.clock.Advance(e.p.Idle / 2) // dead has idled out; the others live
	bobTok, _ := e.create(t, identity(bob))

	// Password change: every session but the one making the change.
	n, err := e.st.DeleteByUser(e.ctx, alice, toks[0].Key())
	if err != nil || n != 3 {
		t.Fatalf("DeleteByUser(except one) = %d, %v; want 3 (dead sessions are not counted)", n, err)
	}
	e.mustGet(t, toks[0].Key())
	for _, tok := range append(toks[1:], dead) {
		e.wantGone(t, tok.Key())
	}
	e.mustGet(t, bobTok.Key())
	l, err := e.st.ListByUser(e.ctx, alice)
	if err != nil || len(l) != 1 || l[0].Key != toks[0].Key() {
		t.Fatalf("ListByUser after DeleteByUser = %+v, %v", l, err)
	}

	// Deactivation: all of them.
	n, err = e.st.DeleteByUser(e.ctx, alice, "")
	if err != nil || n != 1 {
		t.Fatalf("DeleteByUser(all) = %d, %v; want 1", n, err)
	}
	e.wantGone(t, toks[0].Key())
	if n, err := e.st.DeleteByUser(e.ctx, alice, ""); err != nil || n != 0 {
		t.Fatalf("DeleteByUser(again) = %d, %v", n, err)
	}
	e.mustGet(t, bobTok.Key())
}

func testUpdateUser(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	alice, bob := newUser(), newUser()
	a1, s1 := e.create(t, identity(alice))
	a2, _ := e.create(t, identity(alice))
	b1, _ := e.create(t, identity(bob))
	e.clock.Advance(time.Minute)
	touched := e.mustTouch(t, a1.Key())

	legacy := int64(42)
	calls := 0
	err := e.st.UpdateUser(e.ctx, alice, func(s *sessions.Session) {
		calls++
		s.Roles = []string{"admin"}
		s.Permissions = nil
		s.Email = "alice.new@example.test"
		s.LegacyID = &legacy
		// Not identity: the store must ignore these.
		s.ID = "forged"
		s.UserID = bob
		s.AbsoluteExpiresAt = s.AbsoluteExpiresAt.Add(100 * time.Hour)
		s.LastSeenAt = s.LastSeenAt.Add(100 * time.Hour)
		s.IP = "198.51.100.1"
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("fn called %d times, want 2 (once per live session)", calls)
	}
	legacy = 7 // the store must have copied it
	for _, tok := range []sessions.Token{a1, a2} {
		got := e.mustGet(t, tok.Key())
		if !slices.Equal(got.Roles, []string{"admin"}) || len(got.Permissions) != 0 ||
			got.Email != "alice.new@example.test" || got.LegacyID == nil || *got.LegacyID != 42 {
			t.Fatalf("identity not rewritten: %+v", got)
		}
		if got.UserID != alice || got.ID == "forged" || got.IP != "203.0.113.7" {
			t.Fatalf("non-identity fields changed: %+v", got)
		}
		wantTime(t, "AbsoluteExpiresAt", got.AbsoluteExpiresAt, s1.AbsoluteExpiresAt)
	}
	wantTime(t, "LastSeenAt kept", e.mustGet(t, a1.Key()).LastSeenAt, touched.LastSeenAt)
	wantTime(t, "LastSeenAt kept", e.mustGet(t, a2.Key()).LastSeenAt, s1.CreatedAt)
	if got := e.mustGet(t, b1.Key()); !slices.Equal(got.Roles, []string{"analyst", "viewer"}) {
		t.Fatalf("another user's session changed: %+v", got)
	}
	if l, err := e.st.ListByUser(e.ctx, bob); err != nil || len(l) != 1 {
		t.Fatalf("UserID forgery moved a session to bob: %+v, %v", l, err)
	}
	// Sliding still works after an update.
	now := e.clock.Advance(time.Minute)
	wantTime(t, "LastSeenAt after update", e.mustTouch(t, a2.Key()).LastSeenAt, now)
}

func testConcurrentTouches(t *testing.T, newStore NewStore) {
	// Both write paths: a store may touch differently when it throttles.
	for _, throttle := range []time.Duration{0, time.Millisecond} {
		t.Run(fmt.Sprintf("throttle=%v", throttle), func(t *testing.T) {
			t.Parallel()
			concurrentTouches(t, newStore, throttle)
		})
	}
}

func concurrentTouches(t *testing.T, newStore NewStore, throttle time.Duration) {
	e := setup(t, newStore, Params{TouchThrottle: throttle})
	user := newUser()
	tok, created := e.create(t, identity(user))
	key := tok.Key()
	base := created.CreatedAt

	const workers, perWorker = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				// Interleaved times, out of order across workers: the
				// stored LastSeenAt must end at the maximum.
				at := base.Add(time.Duration(i*workers+w) * time.Millisecond)
				if _, err := e.st.Touch(e.ctx, key, at); err != nil {
					errs <- fmt.Errorf("touch: %w", err)
					return
				}
				if _, err := e.st.Get(e.ctx, key); err != nil {
					errs <- fmt.Errorf("get: %w", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 10 {
			role := fmt.Sprintf("role-%d", i)
			if err := e.st.UpdateUser(e.ctx, user, func(s *sessions.Session) { s.Roles = []string{role} }); err != nil {
				errs <- fmt.Errorf("update: %w", err)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := e.mustGet(t, key)
	wantTime(t, "LastSeenAt after concurrent touches", got.LastSeenAt, base.Add((workers*perWorker-1)*time.Millisecond))
	if !slices.Equal(got.Roles, []string{"role-9"}) {
		t.Fatalf("Roles = %v, want the last update (touches must not clobber updates)", got.Roles)
	}
}

func testConcurrentCreateDelete(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	user := newUser()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 4 {
		wg.Go(func() {
			for range 10 {
				tok, err := sessions.NewToken()
				if err != nil {
					errs <- err
					return
				}
				if _, err := e.st.Create(e.ctx, tok, identity(user)); err != nil {
					errs <- fmt.Errorf("create: %w", err)
					return
				}
				if _, err := e.st.ListByUser(e.ctx, user); err != nil {
					errs <- fmt.Errorf("list: %w", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			if _, err := e.st.DeleteByUser(e.ctx, user, ""); err != nil {
				errs <- fmt.Errorf("delete by user: %w", err)
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Whatever interleaving happened, the index and the sessions agree: a
	// final DeleteByUser ends every listed session and leaves none behind.
	listed, err := e.st.ListByUser(e.ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.st.DeleteByUser(e.ctx, user, "")
	if err != nil || n != len(listed) {
		t.Fatalf("DeleteByUser = %d, %v; ListByUser had %d", n, err, len(listed))
	}
	for _, s := range listed {
		e.wantGone(t, s.Key)
	}
	if l, err := e.st.ListByUser(e.ctx, user); err != nil || len(l) != 0 {
		t.Fatalf("sessions left after DeleteByUser: %+v, %v", l, err)
	}
}

func testCancelledContext(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	tok, s := e.create(t, identity(newUser()))
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	calls := map[string]error{}
	_, calls["Get"] = e.st.Get(ctx, tok.Key())
	_, calls["Touch"] = e.st.Touch(ctx, tok.Key(), e.clock.Now())
	other, _ := sessions.NewToken()
	_, calls["Create"] = e.st.Create(ctx, other, identity(s.UserID))
	_, calls["ListByUser"] = e.st.ListByUser(ctx, s.UserID)
	calls["Ping"] = e.st.Ping(ctx)
	for name, err := range calls {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", name, err)
		}
	}
	e.mustGet(t, tok.Key())
}

func testPing(t *testing.T, newStore NewStore) {
	e := setup(t, newStore, Params{})
	if err := e.st.Ping(e.ctx); err != nil {
		t.Fatalf("Ping = %v", err)
	}
}
