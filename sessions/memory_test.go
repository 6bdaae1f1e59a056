package sessions_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/sessionstest"
)

func newMemoryStore(t *testing.T, p sessionstest.Params) sessions.Store {
	t.Helper()
	st, err := sessions.NewMemoryStore(p.Idle, p.Absolute,
		sessions.WithClock(p.Clock.Now), sessions.WithTouchThrottle(p.TouchThrottle))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

func TestMemoryStoreContract(t *testing.T) {
	t.Parallel()
	sessionstest.Run(t, newMemoryStore)
}

func TestMemoryStoreFull(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	clock := start()
	st, err := sessions.NewMemoryStore(time.Minute, time.Hour, sessions.WithClock(clock.Now), sessions.WithMaxSessions(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	create := func() (sessions.Token, error) {
		tok, _ := sessions.NewToken()
		_, err := st.Create(ctx, tok, sessions.Session{UserID: "u1"})
		return tok, err
	}
	var live []sessions.Token
	for range 3 {
		tok, err := create()
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, tok)
	}
	// Full of live sessions: refuse, evict nobody.
	if _, err := create(); !errors.Is(err, sessions.ErrStoreFull) {
		t.Fatalf("Create on a full store = %v, want ErrStoreFull", err)
	}
	for _, tok := range live {
		if _, err := st.Get(ctx, tok.Key()); err != nil {
			t.Fatalf("a live session was evicted: %v", err)
		}
	}
	// Once one of them is dead, Create makes room by dropping it.
	clock.Advance(30 * time.Second)
	for _, tok := range live[1:] {
		if _, err := st.Touch(ctx, tok.Key(), clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(30 * time.Second)
	if _, err := create(); err != nil {
		t.Fatalf("Create after a session died = %v", err)
	}
	if n := st.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	if _, err := st.Get(ctx, live[1].Key()); err != nil {
		t.Fatalf("a live session was dropped: %v", err)
	}
}

func TestMemorySweeper(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	clock := start()
	st, err := sessions.NewMemoryStore(time.Minute, time.Hour, sessions.WithClock(clock.Now), sessions.WithSweepInterval(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	var keep sessions.Token
	for i := range 10 {
		tok, _ := sessions.NewToken()
		if _, err := st.Create(ctx, tok, sessions.Session{UserID: "u1"}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			keep = tok
		}
	}
	clock.Advance(59 * time.Second)
	if _, err := st.Touch(ctx, keep.Key(), clock.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for st.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("sweeper left %d sessions, want 1", st.Len())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if l, err := st.ListByUser(ctx, "u1"); err != nil || len(l) != 1 || l[0].Key != keep.Key() {
		t.Fatalf("ListByUser after sweep = %+v, %v", l, err)
	}
}

func TestMemoryClose(t *testing.T) {
	t.Parallel()
	st, err := sessions.NewMemoryStore(time.Minute, time.Hour, sessions.WithSweepInterval(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := st.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	// Still usable, just no longer swept.
	tok, _ := sessions.NewToken()
	if _, err := st.Create(ctx, tok, sessions.Session{UserID: "u1"}); err != nil {
		t.Fatalf("Create after Close = %v", err)
	}
}
