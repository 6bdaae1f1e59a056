// Package audittest is the contract suite every audit.Store must pass. Each
// store's test file calls Run with a constructor that returns a store on a
// fresh, empty, migrated database.
package audittest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portero/portero/audit"
)

// NewStore returns a store on an empty audit_logs table of its own,
// cleaned up by t.Cleanup.
type NewStore func(t *testing.T) audit.Store

// testTimeout bounds every test, so a hung store fails instead of stalling.
const testTimeout = 20 * time.Second

// base is the time the suite's events happen at; fixed so failures repeat.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// Run runs the contract suite against the stores newStore makes.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, s audit.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyFields", testEmptyFields},
		{"Idempotent", testIdempotent},
		{"Order", testOrder},
		{"Filters", testFilters},
		{"Pagination", testPagination},
		{"InvalidFilter", testInvalidFilter},
		{"Limit", testLimit},
		{"Prune", testPrune},
		{"RejectsIncomplete", testRejectsIncomplete},
		{"HostileStrings", testHostileStrings},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			tt.fn(t, ctx, newStore(t))
		})
	}
}

// Ev returns a complete event number i of a sequence: a fresh ID, action,
// and CreatedAt i milliseconds after the suite's base time.
func Ev(i int, action string) audit.Event {
	return audit.Event{
		ID:        uuid.NewString(),
		Action:    action,
		CreatedAt: base.Add(time.Duration(i) * time.Millisecond),
		Details:   map[string]any{"seq": i},
	}
}

func insert(t *testing.T, ctx context.Context, s audit.Store, events ...audit.Event) {
	t.Helper()
	if err := s.Insert(ctx, events); err != nil {
		t.Fatalf("Insert(%d events): %v", len(events), err)
	}
}

// all returns every stored event, newest first, walking pages.
func all(t *testing.T, ctx context.Context, s audit.Store, f audit.Filter) []audit.Event {
	t.Helper()
	var out []audit.Event
	for page := 0; ; page++ {
		if page > 10000 {
			t.Fatal("Query: pagination does not end")
		}
		evs, next, err := s.Query(ctx, f)
		if err != nil {
			t.Fatalf("Query(%+v): %v", f, err)
		}
		out = append(out, evs...)
		if next == "" {
			return out
		}
		if len(evs) == 0 {
			t.Fatalf("Query(%+v): empty page with a next cursor", f)
		}
		f.Cursor = next
	}
}

// ids returns the events' IDs.
func ids(evs []audit.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// reversed returns the IDs of evs newest first, as Query orders them when
// evs were inserted oldest first.
func reversed(evs []audit.Event) []string {
	out := ids(evs)
	slices.Reverse(out)
	return out
}

// same fails unless got equals want as stored: details compared as JSON.
func same(t *testing.T, got, want audit.Event) {
	t.Helper()
	gd, _ := json.Marshal(got.Details)
	wd, _ := json.Marshal(want.Details)
	var g, w any
	_ = json.Unmarshal(gd, &g)
	_ = json.Unmarshal(wd, &w)
	got.Details, want.Details = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("event %s details = %s, want %s", want.ID, gd, wd)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("event %s CreatedAt = %v, want %v", want.ID, got.CreatedAt, want.CreatedAt)
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("event = %+v\nwant    %+v", got, want)
	}
}

func testRoundTrip(t *testing.T, ctx context.Context, s audit.Store) {
	want := audit.Event{
		ID:         uuid.NewString(),
		UserID:     uuid.NewString(),
		Action:     audit.ActionLoginFailed,
		Resource:   "user",
		ResourceID: "42",
		IP:         "2001:db8::1",
		UserAgent:  "Mozilla/5.0 (X11; Linux x86_64) ñ",
		Details: map[string]any{
			"reason": "bad_password", "attempt": 3, "nested": map[string]any{"a": []any{1, "b", true, nil}},
		},
		CreatedAt: base,
	}
	insert(t, ctx, s, want)
	got := all(t, ctx, s, audit.Filter{})
	if len(got) != 1 {
		t.Fatalf("Query returned %d events, want 1", len(got))
	}
	same(t, got[0], want)

	// Upper-case UUIDs are stored in canonical form; times in UTC at
	// microsecond precision.
	up := audit.Event{
		ID:        "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
		UserID:    "B0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12",
		Action:    audit.ActionLogout,
		CreatedAt: base.Add(time.Second + 999).In(time.FixedZone("X", 3600)),
	}
	insert(t, ctx, s, up)
	got = all(t, ctx, s, audit.Filter{Limit: 1})
	if len(got) != 2 {
		t.Fatalf("Query returned %d events, want 2", len(got))
	}
	same(t, got[0], audit.Event{
		ID:        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		UserID:    "b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12",
		Action:    audit.ActionLogout,
		CreatedAt: base.Add(time.Second).UTC(),
	})
	if got[0].CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt location = %v, want UTC", got[0].CreatedAt.Location())
	}
}

func testEmptyFields(t *testing.T, ctx context.Context, s audit.Store) {
	want := audit.Event{ID: uuid.NewString(), Action: audit.ActionProxyAccess, CreatedAt: base}
	insert(t, ctx, s, want)
	got := all(t, ctx, s, audit.Filter{})
	if len(got) != 1 {
		t.Fatalf("Query returned %d events, want 1", len(got))
	}
	same(t, got[0], want)
	if got[0].Details != nil {
		t.Errorf("Details = %#v, want nil", got[0].Details)
	}
	// Empty (not nil) details stay an empty object.
	e := audit.Event{ID: uuid.NewString(), Action: audit.ActionProxyAccess, CreatedAt: base.Add(time.Second), Details: map[string]any{}}
	insert(t, ctx, s, e)
	got = all(t, ctx, s, audit.Filter{})
	if got[0].ID != e.ID || got[0].Details == nil || len(got[0].Details) != 0 {
		t.Errorf("event with empty details = %+v", got[0])
	}
}

func testIdempotent(t *testing.T, ctx context.Context, s audit.Store) {
	first := []audit.Event{Ev(0, "a"), Ev(1, "a"), Ev(2, "a")}
	insert(t, ctx, s, first...)
	insert(t, ctx, s, first...) // delivered again: no-op

	// The same id with other content keeps the first version; a duplicate
	// inside one batch is stored once.
	changed := first[1]
	changed.Action = "changed"
	extra := Ev(3, "a")
	insert(t, ctx, s, changed, extra, extra, first[2])

	got := all(t, ctx, s, audit.Filter{})
	want := append(first, extra)
	if g, w := ids(got), reversed(want); !slices.Equal(g, w) {
		t.Fatalf("ids = %v, want %v", g, w)
	}
	for _, ev := range got {
		if ev.Action != "a" {
			t.Errorf("event %s action = %q: a re-delivery overwrote the first row", ev.ID, ev.Action)
		}
	}
}

func testOrder(t *testing.T, ctx context.Context, s audit.Store) {
	// Same created_at: insertion order decides, in one batch and across batches.
	var evs []audit.Event
	for i := range 6 {
		ev := Ev(0, fmt.Sprintf("order.%d", i))
		evs = append(evs, ev)
	}
	insert(t, ctx, s, evs[:4]...)
	insert(t, ctx, s, evs[4:]...)
	// An older event inserted later sorts by its time.
	old := Ev(-1000, "order.old")
	insert(t, ctx, s, old)
	got := all(t, ctx, s, audit.Filter{Limit: 2})
	want := append(reversed(evs), old.ID)
	if g := ids(got); !slices.Equal(g, want) {
		t.Fatalf("order = %v\nwant    %v", g, want)
	}
}

func testFilters(t *testing.T, ctx context.Context, s audit.Store) {
	alice, bob := uuid.NewString(), uuid.NewString()
	mk := func(i int, action, user, ip string) audit.Event {
		ev := Ev(i*1000, action)
		ev.UserID, ev.IP = user, ip
		return ev
	}
	evs := []audit.Event{
		mk(0, audit.ActionLoginSucceeded, alice, "10.0.0.1"),
		mk(1, audit.ActionLoginFailed, bob, "10.0.0.2"),
		mk(2, "auth.login", "", "10.0.0.2"),
		mk(3, "auth.loginx", alice, "10.0.0.1"),
		mk(4, audit.ActionLogout, alice, "10.0.0.1"),
		mk(5, audit.ActionProxyAccess, bob, "10.0.0.3"),
		mk(6, "AUTH.LOGIN.SUCCEEDED", bob, "10.0.0.3"),
		mk(7, "auth%login", bob, "10.0.0.3"),
	}
	insert(t, ctx, s, evs...)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	pick := func(idx ...int) []string {
		var out []audit.Event
		for _, i := range idx {
			out = append(out, evs[i])
		}
		return reversed(out)
	}
	tests := []struct {
		name string
		f    audit.Filter
		want []string
	}{
		{"none", audit.Filter{}, pick(0, 1, 2, 3, 4, 5, 6, 7)},
		{"user", audit.Filter{UserID: alice}, pick(0, 3, 4)},
		{"user upper case", audit.Filter{UserID: toUpper(bob)}, pick(1, 5, 6, 7)},
		{"user unknown", audit.Filter{UserID: uuid.NewString()}, nil},
		{"action family", audit.Filter{Action: "auth.login"}, pick(0, 1, 2)},
		{"action exact leaf", audit.Filter{Action: audit.ActionLoginFailed}, pick(1)},
		{"action top", audit.Filter{Action: "auth"}, pick(0, 1, 2, 3, 4)},
		{"action dot prefix", audit.Filter{Action: "auth.login."}, pick(0, 1)},
		{"action partial segment", audit.Filter{Action: "auth.log"}, nil},
		{"action is case-sensitive", audit.Filter{Action: "AUTH"}, pick(6)},
		{"action like metachar", audit.Filter{Action: "auth_login"}, nil},
		{"action percent", audit.Filter{Action: "auth%login"}, pick(7)},
		{"since", audit.Filter{Since: at(5)}, pick(5, 6, 7)},
		{"until", audit.Filter{Until: at(2)}, pick(0, 1)},
		{"since until", audit.Filter{Since: at(1), Until: at(3)}, pick(1, 2)},
		{"since in another zone", audit.Filter{Since: at(5).In(time.FixedZone("Y", -5*3600))}, pick(5, 6, 7)},
		{"empty window", audit.Filter{Since: at(3), Until: at(3)}, nil},
		{"ip", audit.Filter{IP: "10.0.0.2"}, pick(1, 2)},
		{"all at once", audit.Filter{UserID: alice, Action: "auth", Since: at(1), IP: "10.0.0.1"}, pick(3, 4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, limit := range []int{0, 1, 3} {
				f := tt.f
				f.Limit = limit
				if got := ids(all(t, ctx, s, f)); !slices.Equal(got, tt.want) {
					t.Errorf("Query(%+v) = %v, want %v", f, got, tt.want)
				}
			}
		})
	}
}

func toUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func testPagination(t *testing.T, ctx context.Context, s audit.Store) {
	// 25 events, several sharing a created_at so that the id breaks ties
	// across page boundaries.
	var evs []audit.Event
	for i := range 25 {
		evs = append(evs, Ev(i/4, "page"))
	}
	insert(t, ctx, s, evs...)
	want := reversed(evs)
	for _, limit := range []int{1, 3, 4, 7, 24, 25, 26} {
		f := audit.Filter{Limit: limit}
		var got []string
		pages := 0
		for {
			page, next, err := s.Query(ctx, f)
			if err != nil {
				t.Fatalf("Query(%+v): %v", f, err)
			}
			pages++
			if len(page) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(page))
			}
			got = append(got, ids(page)...)
			if next == "" {
				break
			}
			f.Cursor = next
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: pages joined = %v\nwant %v", limit, got, want)
		}
		if wantPages := (25 + limit - 1) / limit; pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d (the last full page must not leave an empty one)", limit, pages, wantPages)
		}
	}
	// Rows inserted after a cursor was issued do not shift later pages.
	f := audit.Filter{Limit: 10}
	first, next, err := s.Query(ctx, f)
	if err != nil || next == "" {
		t.Fatalf("Query: %v, next %q", err, next)
	}
	insert(t, ctx, s, Ev(1000, "page"))
	f.Cursor = next
	rest := all(t, ctx, s, f)
	if got := append(ids(first), ids(rest)...); !slices.Equal(got, want) {
		t.Errorf("after a concurrent insert: %v\nwant %v", got, want)
	}
}

func testInvalidFilter(t *testing.T, ctx context.Context, s audit.Store) {
	insert(t, ctx, s, Ev(0, "x"))
	for _, f := range []audit.Filter{
		{UserID: "not-a-uuid"},
		{Cursor: "garbage!"},
		{Cursor: "MTox"},
		{Cursor: "eHl6"},
		{Cursor: string(make([]byte, 4096))},
	} {
		if _, _, err := s.Query(ctx, f); !errors.Is(err, audit.ErrInvalidFilter) {
			t.Errorf("Query(user %q, cursor %.20q) error = %v, want ErrInvalidFilter", f.UserID, f.Cursor, err)
		}
	}
}

func testLimit(t *testing.T, ctx context.Context, s audit.Store) {
	// One batch larger than any statement chunk a store may use.
	n := audit.MaxLimit + 50
	evs := make([]audit.Event, n)
	for i := range evs {
		evs[i] = Ev(i, "limit")
	}
	insert(t, ctx, s, evs...)
	for _, tt := range []struct{ limit, want int }{
		{0, audit.DefaultLimit}, {-1, audit.DefaultLimit}, {5, 5}, {n * 2, audit.MaxLimit},
	} {
		got, next, err := s.Query(ctx, audit.Filter{Limit: tt.limit})
		if err != nil {
			t.Fatalf("Query(limit %d): %v", tt.limit, err)
		}
		if len(got) != tt.want || next == "" {
			t.Errorf("Query(limit %d) = %d events, next %q; want %d and a cursor", tt.limit, len(got), next, tt.want)
		}
	}
	if got := ids(all(t, ctx, s, audit.Filter{Limit: audit.MaxLimit})); !slices.Equal(got, reversed(evs)) {
		t.Errorf("large batch: order or content differs (%d events)", len(got))
	}
}

func testPrune(t *testing.T, ctx context.Context, s audit.Store) {
	var old, recent []audit.Event
	for i := range 23 {
		old = append(old, Ev(i, "old"))
	}
	for i := range 5 {
		recent = append(recent, Ev(100000+i, "recent"))
	}
	insert(t, ctx, s, append(old, recent...)...)
	cut := base.Add(100 * time.Second)
	n, err := s.Prune(ctx, cut, 7)
	if err != nil || n != len(old) {
		t.Fatalf("Prune = %d, %v; want %d", n, err, len(old))
	}
	if got := ids(all(t, ctx, s, audit.Filter{})); !slices.Equal(got, reversed(recent)) {
		t.Errorf("after Prune: %v, want %v", got, reversed(recent))
	}
	if n, err := s.Prune(ctx, cut, 7); err != nil || n != 0 {
		t.Errorf("second Prune = %d, %v; want 0", n, err)
	}
	// The boundary is exclusive.
	if n, err := s.Prune(ctx, recent[0].CreatedAt, 0); err != nil || n != 0 {
		t.Errorf("Prune(at the first recent event) = %d, %v; want 0", n, err)
	}
	// A cancelled context stops it.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Prune(cctx, base.Add(time.Hour), 1); err == nil {
		t.Error("Prune with a cancelled context succeeded")
	}
}

func testRejectsIncomplete(t *testing.T, ctx context.Context, s audit.Store) {
	good := Ev(0, "ok")
	for name, ev := range map[string]audit.Event{
		"no id":         {Action: "x", CreatedAt: base},
		"no created_at": {ID: uuid.NewString(), Action: "x"},
		"no action":     {ID: uuid.NewString(), CreatedAt: base},
		"bad id":        {ID: "1", Action: "x", CreatedAt: base},
		"bad user id":   {ID: uuid.NewString(), UserID: "7", Action: "x", CreatedAt: base},
	} {
		if err := s.Insert(ctx, []audit.Event{good, ev}); !errors.Is(err, audit.ErrInvalidEvent) {
			t.Errorf("%s: Insert error = %v, want ErrInvalidEvent", name, err)
		}
	}
	if got := all(t, ctx, s, audit.Filter{}); len(got) != 0 {
		t.Errorf("a refused batch stored %d events", len(got))
	}
	if err := s.Insert(ctx, nil); err != nil {
		t.Errorf("Insert(nil) = %v", err)
	}
}

func testHostileStrings(t *testing.T, ctx context.Context, s audit.Store) {
	// Client-controlled text PostgreSQL would refuse (NUL, invalid UTF-8,
	// \u0000 in jsonb, oversized index entries) is stored, cleaned.
	ev := Ev(0, "auth.login.failed")
	ev.UserAgent = "curl\x00/8 \xff\xfe"
	ev.IP = string(make([]byte, 10000))
	ev.Resource = "r\x00"
	ev.Details = map[string]any{"email": "a\x00b@example.com", "raw": "\xc3\x28", "k\x00": `\u0000`}
	insert(t, ctx, s, ev)
	got := all(t, ctx, s, audit.Filter{})
	if len(got) != 1 {
		t.Fatalf("Query returned %d events, want 1", len(got))
	}
	g := got[0]
	if g.UserAgent != "curl\uFFFD/8 \uFFFD" || g.Resource != "r\uFFFD" {
		t.Errorf("strings = %q, %q", g.UserAgent, g.Resource)
	}
	if len(g.IP) == 0 || len(g.IP) > 1024 {
		t.Errorf("IP stored with %d bytes", len(g.IP))
	}
	if g.Details["email"] != "a\uFFFDb@example.com" || g.Details["k\uFFFD"] != `\u0000` {
		t.Errorf("details = %q", g.Details)
	}
}
