// Package userstoretest is the contract suite every authn.UserStore must
// pass. The store tests of package authn run it against PostgreSQL and
// SQLite through storagetest.Each, so both backends are held to the same
// behaviour by the same tests.
//
// The stores newStore returns may share one database (storagetest.Each
// gives one per dialect): every test keeps to its own e-mail domain, role
// names, legacy ids and session ids, and compares whole-table figures only by
// difference, in tests that do not run in parallel with the others. The
// store must run on the real clock.
package userstoretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portero/portero/authn"
)

// NewStore returns the store under test. It may return stores over the same
// database on every call.
type NewStore func(t *testing.T) authn.UserStore

// testTimeout bounds every test, so a hung database fails instead of
// stalling the run.
const testTimeout = 30 * time.Second

// Run runs the contract suite against the stores newStore makes.
func Run(t *testing.T, newStore NewStore) {
	// Tests that compare whole-table figures run first and one at a time:
	// the parallel tests below do not start until Run returns.
	sequential := []struct {
		name string
		fn   func(t *testing.T, e env)
	}{
		{"CountUsers", testCountUsers},
	}
	for _, tc := range sequential {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newEnv(t, newStore)) })
	}
	parallel := []struct {
		name string
		fn   func(t *testing.T, e env)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"CreateDefaults", testCreateDefaults},
		{"CreateGivenID", testCreateGivenID},
		{"DuplicateEmail", testDuplicateEmail},
		{"NonASCIIEmail", testNonASCIIEmail},
		{"DuplicateLegacyID", testDuplicateLegacyID},
		{"UnknownRole", testUnknownRole},
		{"InvalidUser", testInvalidUser},
		{"NotFound", testNotFound},
		{"PartialUpdate", testPartialUpdate},
		{"UpdateEmail", testUpdateEmail},
		{"SetPassword", testSetPassword},
		{"LoginBookkeeping", testLoginBookkeeping},
		{"Delete", testDelete},
		{"ListPagination", testListPagination},
		{"ListFilters", testListFilters},
		{"ListLimits", testListLimits},
		{"ListInvalidCursor", testListInvalidCursor},
		{"Stats", testStats},
		{"Roles", testRoles},
		{"UpdateRole", testUpdateRole},
		{"Sessions", testSessions},
		{"SessionEndForUser", testSessionEndForUser},
		{"SessionInvalid", testSessionInvalid},
		{"ConcurrentCreate", testConcurrentCreate},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range parallel {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newEnv(t, newStore))
		})
	}
}

// env is one test's store, context and private e-mail domain.
type env struct {
	st     authn.UserStore
	ctx    context.Context
	domain string
}

func newEnv(t *testing.T, newStore NewStore) env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return env{st: newStore(t), ctx: ctx, domain: randomHex(t, 6) + ".example.test"}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// legacyID returns a legacy id no other test uses.
func legacyID() int64 { return mrand.Int64N(1<<62) + 1 }

// someHash stands in for a password hash: the store keeps it as an opaque string.
const someHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

func (e env) email(local string) string { return local + "@" + e.domain }

// create stores an active user with e-mail local@domain, after mods.
func (e env) create(t testing.TB, local string, mods ...func(*authn.User)) authn.User {
	t.Helper()
	u := authn.User{
		Email:          e.email(local),
		HashedPassword: someHash,
		FirstName:      "First " + local,
		LastName:       "Last " + local,
		IsActive:       true,
	}
	for _, m := range mods {
		m(&u)
	}
	got, err := e.st.CreateUser(e.ctx, u)
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", u.Email, err)
	}
	return got
}

func (e env) get(t testing.TB, id string) authn.User {
	t.Helper()
	u, err := e.st.UserByID(e.ctx, id)
	if err != nil {
		t.Fatalf("UserByID(%s): %v", id, err)
	}
	return u
}

// listAll follows ListUsers' cursors to the end and keeps this test's users.
func (e env) listAll(t testing.TB, f authn.UserFilter) []authn.User {
	t.Helper()
	var all []authn.User
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatal("ListUsers: more than 1000 pages; the cursor does not advance")
		}
		users, next, err := e.st.ListUsers(e.ctx, f)
		if err != nil {
			t.Fatalf("ListUsers(%+v): %v", f, err)
		}
		for _, u := range users {
			if seen[u.ID] {
				t.Fatalf("ListUsers: %s (%s) on two pages", u.ID, u.Email)
			}
			seen[u.ID] = true
			if strings.HasSuffix(u.Email, "@"+e.domain) {
				all = append(all, u)
			}
		}
		if next == "" {
			return all
		}
		f.Cursor = next
	}
}

func ptr[T any](v T) *T { return &v }

// µs is how precisely the store keeps times.
func µs(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// wantErr fails unless err is want.
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

// wantNotFound fails unless err is ErrUserNotFound with no database text in
// its message: not-found answers reach clients and logs as they are.
func wantNotFound(t testing.TB, what string, err error) {
	t.Helper()
	wantErr(t, what, err, authn.ErrUserNotFound)
	msg := strings.ToLower(err.Error())
	for _, leak := range []string{"sqlstate", "sqlite", "sql:", "pgx", "syntax", "invalid input", "no rows", "uuid"} {
		if strings.Contains(msg, leak) {
			t.Fatalf("%s: message %q contains database text %q", what, err.Error(), leak)
		}
	}
}

func wantTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("%s = %v, want %v in UTC", what, got, want)
	}
}

func wantTimePtr(t testing.TB, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Fatalf("%s = %v, want %v", what, got, want)
	default:
		wantTime(t, what, *got, *want)
	}
}

// sameUser fails unless got and want agree on every field.
func sameUser(t testing.TB, got, want authn.User) {
	t.Helper()
	if got.ID != want.ID || got.Email != want.Email || got.HashedPassword != want.HashedPassword ||
		got.FirstName != want.FirstName || got.LastName != want.LastName ||
		got.RoleID != want.RoleID || got.Role != want.Role || !slices.Equal(got.Permissions, want.Permissions) ||
		got.IsActive != want.IsActive || got.IsSuperuser != want.IsSuperuser || got.IsVerified != want.IsVerified ||
		got.LoginAttempts != want.LoginAttempts ||
		(got.LegacyID == nil) != (want.LegacyID == nil) || (got.LegacyID != nil && *got.LegacyID != *want.LegacyID) {
		t.Fatalf("user differs:\n got  %s\n want %s", show(got), show(want))
	}
	wantTimePtr(t, "LastLogin", got.LastLogin, want.LastLogin)
	wantTimePtr(t, "LockedUntil", got.LockedUntil, want.LockedUntil)
	wantTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	wantTime(t, "UpdatedAt", got.UpdatedAt, want.UpdatedAt)
}

func show(u authn.User) string {
	s := fmt.Sprintf("%+v", u)
	if u.LegacyID != nil {
		s += fmt.Sprintf(" legacy=%d", *u.LegacyID)
	}
	return s
}

func wantCanonicalID(t testing.TB, id string) {
	t.Helper()
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		t.Fatalf("ID %q is not a lower-case canonical UUID", id)
	}
}

func testCreateAndGet(t *testing.T, e env) {
	zone := time.FixedZone("UTC+1", 3600)
	lastLogin := time.Date(2024, 5, 6, 7, 8, 9, 123456789, zone)
	locked := time.Date(2024, 5, 6, 8, 0, 0, 999999999, zone)
	legacy := legacyID()
	in := authn.User{
		Email:          "  Ana.Perez@" + strings.ToUpper(e.domain) + " \t",
		HashedPassword: someHash,
		FirstName:      "Ana",
		LastName:       "Pérez \"Q\"",
		RoleID:         1,
		IsActive:       true,
		IsSuperuser:    true,
		IsVerified:     true,
		LastLogin:      &lastLogin,
		LoginAttempts:  2,
		LockedUntil:    &locked,
		LegacyID:       &legacy,
		Role:           "ignored",
		Permissions:    []string{"ignored"},
	}
	before := time.Now().Add(-time.Second)
	got, err := e.st.CreateUser(e.ctx, in)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	after := time.Now().Add(time.Second)
	wantCanonicalID(t, got.ID)
	if got.CreatedAt.Before(before) || got.CreatedAt.After(after) {
		t.Fatalf("CreatedAt = %v, want between %v and %v", got.CreatedAt, before, after)
	}
	if got.UpdatedAt.Before(got.CreatedAt) || got.UpdatedAt.After(after) {
		t.Fatalf("UpdatedAt = %v, want between CreatedAt %v and %v", got.UpdatedAt, got.CreatedAt, after)
	}
	want := in
	want.ID = got.ID
	want.Email = "Ana.Perez@" + strings.ToUpper(e.domain) // trimmed, case kept
	want.Role, want.Permissions = "admin", []string{"*"}
	want.LastLogin, want.LockedUntil = ptr(µs(lastLogin)), ptr(µs(locked))
	want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
	sameUser(t, got, want)

	sameUser(t, e.get(t, got.ID), want)
	sameUser(t, e.get(t, strings.ToUpper(got.ID)), want)
	sameUser(t, e.get(t, "{"+got.ID+"}"), want)
	for _, spelling := range []string{
		"Ana.Perez@" + strings.ToUpper(e.domain),
		"ana.perez@" + e.domain,
		"  ANA.PEREZ@" + e.domain + "\n",
	} {
		u, err := e.st.UserByEmail(e.ctx, spelling)
		if err != nil {
			t.Fatalf("UserByEmail(%q): %v", spelling, err)
		}
		sameUser(t, u, want)
	}
	u, err := e.st.UserByLegacyID(e.ctx, legacy)
	if err != nil {
		t.Fatalf("UserByLegacyID: %v", err)
	}
	sameUser(t, u, want)
}

func testCreateDefaults(t *testing.T, e env) {
	got, err := e.st.CreateUser(e.ctx, authn.User{Email: e.email("min"), HashedPassword: someHash})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	want := authn.User{
		ID: got.ID, Email: e.email("min"), HashedPassword: someHash,
		RoleID: 2, Role: "user", Permissions: []string{},
		CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt,
	}
	sameUser(t, got, want)
	if got.Permissions == nil {
		t.Fatal("Permissions is nil, want an empty slice")
	}
	sameUser(t, e.get(t, got.ID), want)

	// Two users without legacy ids do not collide on the unique legacy_id.
	e.create(t, "min2")
}

func testCreateGivenID(t *testing.T, e env) {
	id := uuid.New()
	created := time.Date(2019, 3, 4, 5, 6, 7, 891011121, time.UTC)
	got := e.create(t, "given", func(u *authn.User) {
		u.ID = strings.ToUpper(id.String())
		u.CreatedAt = created
	})
	if got.ID != id.String() {
		t.Fatalf("ID = %q, want %q", got.ID, id.String())
	}
	wantTime(t, "CreatedAt", got.CreatedAt, µs(created))
	_, err := e.st.CreateUser(e.ctx, authn.User{ID: id.String(), Email: e.email("other"), HashedPassword: someHash})
	wantErr(t, "CreateUser with a taken id", err, authn.ErrUserIDTaken)
	if _, err := e.st.UserByEmail(e.ctx, e.email("other")); !errors.Is(err, authn.ErrUserNotFound) {
		t.Fatalf("the refused user was stored: %v", err)
	}
}

func testDuplicateEmail(t *testing.T, e env) {
	first := e.create(t, "dup")
	for _, spelling := range []string{
		"dup@" + e.domain,
		"DUP@" + e.domain,
		"  Dup@" + strings.ToUpper(e.domain) + "  ",
		"\tdUp@" + e.domain + "\n",
	} {
		t.Run(spelling, func(t *testing.T) {
			_, err := e.st.CreateUser(e.ctx, authn.User{Email: spelling, HashedPassword: someHash, LegacyID: ptr(legacyID())})
			wantErr(t, "CreateUser", err, authn.ErrEmailTaken)
		})
	}
	sameUser(t, e.get(t, first.ID), first)
}

func testNonASCIIEmail(t *testing.T, e env) {
	u := e.create(t, "ÉLODIE.Martin")
	if want := "éLODIE.Martin@" + e.domain; u.Email != want {
		t.Fatalf("Email = %q, want %q (non-ASCII letters folded, ASCII kept)", u.Email, want)
	}
	_, err := e.st.CreateUser(e.ctx, authn.User{Email: "élodie.martin@" + e.domain, HashedPassword: someHash})
	wantErr(t, "CreateUser differing in non-ASCII case", err, authn.ErrEmailTaken)
	got, err := e.st.UserByEmail(e.ctx, "ÉLODIE.MARTIN@"+strings.ToUpper(e.domain))
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	sameUser(t, got, u)
}

func testDuplicateLegacyID(t *testing.T, e env) {
	legacy := legacyID()
	a := e.create(t, "a", func(u *authn.User) { u.LegacyID = &legacy })
	_, err := e.st.CreateUser(e.ctx, authn.User{Email: e.email("b"), HashedPassword: someHash, LegacyID: &legacy})
	wantErr(t, "CreateUser with a taken legacy id", err, authn.ErrLegacyIDTaken)
	b := e.create(t, "b")
	_, err = e.st.UpdateUser(e.ctx, b.ID, authn.UserUpdate{LegacyID: &legacy})
	wantErr(t, "UpdateUser to a taken legacy id", err, authn.ErrLegacyIDTaken)
	sameUser(t, e.get(t, b.ID), b)
	sameUser(t, e.get(t, a.ID), a)
	// Setting a user's own legacy id again is no conflict.
	if _, err := e.st.UpdateUser(e.ctx, a.ID, authn.UserUpdate{LegacyID: &legacy}); err != nil {
		t.Fatalf("UpdateUser to its own legacy id: %v", err)
	}
}

func testUnknownRole(t *testing.T, e env) {
	_, err := e.st.CreateUser(e.ctx, authn.User{Email: e.email("norole"), HashedPassword: someHash, RoleID: 987654})
	wantErr(t, "CreateUser with an unknown role", err, authn.ErrUnknownRole)
	u := e.create(t, "hasrole")
	for _, id := range []int{987654, -1} {
		_, err = e.st.UpdateUser(e.ctx, u.ID, authn.UserUpdate{RoleID: ptr(id), FirstName: ptr("changed")})
		wantErr(t, fmt.Sprintf("UpdateUser to role %d", id), err, authn.ErrUnknownRole)
	}
	sameUser(t, e.get(t, u.ID), u)
}

func testInvalidUser(t *testing.T, e env) {
	for _, tc := range []struct {
		name string
		u    authn.User
	}{
		{"empty e-mail", authn.User{HashedPassword: someHash}},
		{"blank e-mail", authn.User{Email: " \t ", HashedPassword: someHash}},
		{"id not a UUID", authn.User{ID: "42", Email: e.email("badid"), HashedPassword: someHash}},
		{"negative attempts", authn.User{Email: e.email("neg"), HashedPassword: someHash, LoginAttempts: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.st.CreateUser(e.ctx, tc.u)
			wantErr(t, "CreateUser", err, authn.ErrInvalidUser)
		})
	}
	u := e.create(t, "valid")
	_, err := e.st.UpdateUser(e.ctx, u.ID, authn.UserUpdate{Email: ptr("  ")})
	wantErr(t, "UpdateUser to a blank e-mail", err, authn.ErrInvalidUser)
	_, err = e.st.UpdateUser(e.ctx, u.ID, authn.UserUpdate{LegacyID: ptr(legacyID()), ClearLegacyID: true})
	wantErr(t, "UpdateUser setting and clearing the legacy id", err, authn.ErrInvalidUser)
	err = e.st.RecordLoginFailure(e.ctx, u.ID, -1, nil)
	wantErr(t, "RecordLoginFailure(-1)", err, authn.ErrInvalidUser)
	sameUser(t, e.get(t, u.ID), u)
}

func testNotFound(t *testing.T, e env) {
	now := time.Now()
	ids := []string{
		uuid.NewString(), // well-formed, nobody's
		"",
		"not-a-uuid",
		"00000000-0000-0000-0000-00000000000g",
		"1' OR '1'='1",
		strings.Repeat("a", 10000),
	}
	methods := []struct {
		name string
		call func(id string) error
	}{
		{"UserByID", func(id string) error { _, err := e.st.UserByID(e.ctx, id); return err }},
		{"UpdateUser", func(id string) error {
			_, err := e.st.UpdateUser(e.ctx, id, authn.UserUpdate{FirstName: ptr("x")})
			return err
		}},
		{"UpdateUser(empty)", func(id string) error { _, err := e.st.UpdateUser(e.ctx, id, authn.UserUpdate{}); return err }},
		{"SetPassword", func(id string) error { return e.st.SetPassword(e.ctx, id, someHash) }},
		{"RecordLoginSuccess", func(id string) error { return e.st.RecordLoginSuccess(e.ctx, id, now) }},
		{"RecordLoginFailure", func(id string) error { return e.st.RecordLoginFailure(e.ctx, id, 1, &now) }},
		{"Unlock", func(id string) error { return e.st.Unlock(e.ctx, id) }},
		{"DeleteUser", func(id string) error { return e.st.DeleteUser(e.ctx, id) }},
		{"RecordSessionStart", func(id string) error {
			return e.st.RecordSessionStart(e.ctx, authn.SessionRecord{ID: randomHex(t, 16), UserID: id, ExpiresAt: now.Add(time.Hour)})
		}},
	}
	for _, m := range methods {
		for i, id := range ids {
			wantNotFound(t, fmt.Sprintf("%s(ids[%d])", m.name, i), m.call(id))
		}
	}
	for _, email := range []string{e.email("nobody"), "", "   ", "'; DROP TABLE users; --", strings.Repeat("x", 10000)} {
		_, err := e.st.UserByEmail(e.ctx, email)
		wantNotFound(t, fmt.Sprintf("UserByEmail(%.20q)", email), err)
	}
	_, err := e.st.UserByLegacyID(e.ctx, legacyID())
	wantNotFound(t, "UserByLegacyID", err)
}

func testPartialUpdate(t *testing.T, e env) {
	legacy := legacyID()
	seed := func(u *authn.User) {
		u.LegacyID = ptr(legacy)
		u.LoginAttempts = 3
		u.LockedUntil = ptr(time.Now().Add(time.Hour))
		u.LastLogin = ptr(time.Now().Add(-time.Hour))
		u.IsVerified = true
	}
	newLegacy := legacyID()
	for _, tc := range []struct {
		name  string
		upd   authn.UserUpdate
		apply func(*authn.User)
	}{
		{"FirstName", authn.UserUpdate{FirstName: ptr("Renée")}, func(u *authn.User) { u.FirstName = "Renée" }},
		{"LastName", authn.UserUpdate{LastName: ptr("")}, func(u *authn.User) { u.LastName = "" }},
		{"RoleID", authn.UserUpdate{RoleID: ptr(1)}, func(u *authn.User) {
			u.RoleID, u.Role, u.Permissions = 1, "admin", []string{"*"}
		}},
		{"IsActive", authn.UserUpdate{IsActive: ptr(false)}, func(u *authn.User) { u.IsActive = false }},
		{"IsSuperuser", authn.UserUpdate{IsSuperuser: ptr(true)}, func(u *authn.User) { u.IsSuperuser = true }},
		{"IsVerified", authn.UserUpdate{IsVerified: ptr(false)}, func(u *authn.User) { u.IsVerified = false }},
		{"LegacyID", authn.UserUpdate{LegacyID: ptr(newLegacy)}, func(u *authn.User) { u.LegacyID = ptr(newLegacy) }},
		{"ClearLegacyID", authn.UserUpdate{ClearLegacyID: true}, func(u *authn.User) { u.LegacyID = nil }},
		{"Email", authn.UserUpdate{Email: ptr("  New.Address@" + e.domain + " ")}, func(u *authn.User) {
			u.Email = "New.Address@" + e.domain
		}},
		{"Several", authn.UserUpdate{FirstName: ptr("A"), LastName: ptr("B"), IsActive: ptr(false)}, func(u *authn.User) {
			u.FirstName, u.LastName, u.IsActive = "A", "B", false
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Subtests share this test's domain and legacy id, so they take turns.
			orig := e.create(t, "partial", seed)
			t.Cleanup(func() { _ = e.st.DeleteUser(context.Background(), orig.ID) })
			got, err := e.st.UpdateUser(e.ctx, orig.ID, tc.upd)
			if err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
			if got.UpdatedAt.Before(orig.UpdatedAt) {
				t.Fatalf("UpdatedAt went back: %v < %v", got.UpdatedAt, orig.UpdatedAt)
			}
			want := orig
			tc.apply(&want)
			want.UpdatedAt = got.UpdatedAt
			sameUser(t, got, want)
			sameUser(t, e.get(t, orig.ID), want)
			if err := e.st.DeleteUser(e.ctx, orig.ID); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("Empty", func(t *testing.T) {
		orig := e.create(t, "partial-empty", seed)
		got, err := e.st.UpdateUser(e.ctx, strings.ToUpper(orig.ID), authn.UserUpdate{})
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		sameUser(t, got, orig)
	})
}

func testUpdateEmail(t *testing.T, e env) {
	a := e.create(t, "owner")
	b := e.create(t, "other")
	// A user may change the case of their own address.
	got, err := e.st.UpdateUser(e.ctx, a.ID, authn.UserUpdate{Email: ptr("OWNER@" + e.domain)})
	if err != nil {
		t.Fatalf("UpdateUser to own address in other case: %v", err)
	}
	if got.Email != "OWNER@"+e.domain {
		t.Fatalf("Email = %q", got.Email)
	}
	for _, taken := range []string{"other@" + e.domain, " OTHER@" + strings.ToUpper(e.domain) + " "} {
		_, err := e.st.UpdateUser(e.ctx, a.ID, authn.UserUpdate{Email: ptr(taken), FirstName: ptr("x")})
		wantErr(t, fmt.Sprintf("UpdateUser to %q", taken), err, authn.ErrEmailTaken)
	}
	sameUser(t, e.get(t, a.ID), got)
	sameUser(t, e.get(t, b.ID), b)
	// The old spelling finds the user; the freed address is free.
	if u, err := e.st.UserByEmail(e.ctx, "owner@"+e.domain); err != nil || u.ID != a.ID {
		t.Fatalf("UserByEmail(owner) = %v, %v", u.ID, err)
	}
	if _, err := e.st.UpdateUser(e.ctx, a.ID, authn.UserUpdate{Email: ptr(e.email("moved"))}); err != nil {
		t.Fatal(err)
	}
	e.create(t, "owner")
}

func testSetPassword(t *testing.T, e env) {
	u := e.create(t, "pw")
	const newHash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"
	if err := e.st.SetPassword(e.ctx, strings.ToUpper(u.ID), newHash); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	got := e.get(t, u.ID)
	if got.UpdatedAt.Before(u.UpdatedAt) {
		t.Fatalf("UpdatedAt went back: %v < %v", got.UpdatedAt, u.UpdatedAt)
	}
	want := u
	want.HashedPassword, want.UpdatedAt = newHash, got.UpdatedAt
	sameUser(t, got, want)
}

func testLoginBookkeeping(t *testing.T, e env) {
	u := e.create(t, "login")
	lock := time.Date(2030, 1, 2, 3, 4, 5, 678901234, time.FixedZone("x", -7200))
	if err := e.st.RecordLoginFailure(e.ctx, u.ID, 3, &lock); err != nil {
		t.Fatalf("RecordLoginFailure: %v", err)
	}
	want := u
	want.LoginAttempts, want.LockedUntil = 3, ptr(µs(lock))
	sameUser(t, e.get(t, u.ID), want) // counters are bookkeeping: UpdatedAt stays

	if err := e.st.RecordLoginFailure(e.ctx, u.ID, 4, nil); err != nil {
		t.Fatalf("RecordLoginFailure: %v", err)
	}
	want.LoginAttempts, want.LockedUntil = 4, nil
	sameUser(t, e.get(t, u.ID), want)

	at := time.Date(2029, 12, 31, 23, 59, 59, 999999999, time.UTC)
	if err := e.st.RecordLoginSuccess(e.ctx, u.ID, at); err != nil {
		t.Fatalf("RecordLoginSuccess: %v", err)
	}
	want.LoginAttempts, want.LastLogin = 0, ptr(µs(at))
	sameUser(t, e.get(t, u.ID), want)

	if err := e.st.RecordLoginFailure(e.ctx, u.ID, 5, &lock); err != nil {
		t.Fatal(err)
	}
	at2 := at.Add(time.Minute)
	if err := e.st.RecordLoginSuccess(e.ctx, u.ID, at2); err != nil {
		t.Fatalf("RecordLoginSuccess: %v", err)
	}
	want.LastLogin = ptr(µs(at2))
	sameUser(t, e.get(t, u.ID), want)

	// A hash upgrade lands only on the hash that was verified, and is not
	// a change to the account (UpdatedAt stays).
	if ok, err := e.st.UpgradeHash(e.ctx, u.ID, "$2b$04$not-the-stored-one", "$argon2id$stale"); ok || err != nil {
		t.Fatalf("UpgradeHash over another hash: %v, %v", ok, err)
	}
	sameUser(t, e.get(t, u.ID), want)
	if ok, err := e.st.UpgradeHash(e.ctx, u.ID, want.HashedPassword, "$argon2id$rehashed"); !ok || err != nil {
		t.Fatalf("UpgradeHash: %v, %v", ok, err)
	}
	want.HashedPassword = "$argon2id$rehashed"
	sameUser(t, e.get(t, u.ID), want)
	if ok, err := e.st.UpgradeHash(e.ctx, "00000000-0000-4000-8000-000000000000", want.HashedPassword, "$argon2id$x"); ok || err != nil {
		t.Fatalf("UpgradeHash of a missing user: %v, %v", ok, err)
	}

	if err := e.st.RecordLoginFailure(e.ctx, u.ID, 5, &lock); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Unlock(e.ctx, u.ID); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	got := e.get(t, u.ID)
	if got.UpdatedAt.Before(want.UpdatedAt) {
		t.Fatalf("Unlock: UpdatedAt went back")
	}
	want.UpdatedAt = got.UpdatedAt
	sameUser(t, got, want)
	// Unlocking an unlocked user is fine.
	if err := e.st.Unlock(e.ctx, u.ID); err != nil {
		t.Fatalf("Unlock again: %v", err)
	}
}

func testDelete(t *testing.T, e env) {
	legacy := legacyID()
	u := e.create(t, "gone", func(u *authn.User) { u.LegacyID = &legacy })
	now := time.Now()
	if err := e.st.RecordSessionStart(e.ctx, authn.SessionRecord{ID: randomHex(t, 16), UserID: u.ID, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteUser(e.ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err := e.st.UserByID(e.ctx, u.ID)
	wantNotFound(t, "UserByID after delete", err)
	_, err = e.st.UserByEmail(e.ctx, u.Email)
	wantNotFound(t, "UserByEmail after delete", err)
	_, err = e.st.UserByLegacyID(e.ctx, legacy)
	wantNotFound(t, "UserByLegacyID after delete", err)
	wantNotFound(t, "DeleteUser again", e.st.DeleteUser(e.ctx, u.ID))
	recs, err := e.st.SessionHistory(e.ctx, u.ID, 0)
	if err != nil || len(recs) != 0 {
		t.Fatalf("SessionHistory after delete = %v, %v; want none", recs, err)
	}
	// The address and the legacy id are free again.
	e.create(t, "GONE", func(u *authn.User) { u.LegacyID = &legacy })
}

// sortKey is the order ListUsers promises for ASCII addresses.
func sortKey(u authn.User) string { return strings.ToLower(u.Email) + "\x00" + u.ID }

func testListPagination(t *testing.T, e env) {
	prefixes := []string{"a", "B", "c.", "b_", "A-"}
	var want []authn.User
	for i := range 23 {
		want = append(want, e.create(t, fmt.Sprintf("%s%02d", prefixes[i%len(prefixes)], i)))
	}
	slices.SortFunc(want, func(a, b authn.User) int { return strings.Compare(sortKey(a), sortKey(b)) })

	f := authn.UserFilter{Query: e.domain, Limit: 5}
	var got []authn.User
	seen := map[string]bool{}
	for page := 0; ; page++ {
		users, next, err := e.st.ListUsers(e.ctx, f)
		if err != nil {
			t.Fatalf("ListUsers page %d: %v", page, err)
		}
		if len(users) > 5 {
			t.Fatalf("page %d has %d users, limit 5", page, len(users))
		}
		if next != "" && len(users) != 5 {
			t.Fatalf("page %d has %d users and a next page", page, len(users))
		}
		for _, u := range users {
			if seen[u.ID] {
				t.Fatalf("%s on two pages", u.Email)
			}
			seen[u.ID] = true
		}
		got = append(got, users...)
		if page == 1 {
			// Users added mid-way: one before the cursor (never seen), one
			// after it (seen in its place); neither shifts anybody else.
			e.create(t, "0-before")
			want = append(want, e.create(t, "zz-after"))
		}
		if next == "" {
			break
		}
		if page > 10 {
			t.Fatal("cursor does not advance")
		}
		f.Cursor = next
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d users, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID {
			t.Fatalf("position %d: %s, want %s", i, got[i].Email, want[i].Email)
		}
		sameUser(t, got[i], want[i])
	}
}

func testListFilters(t *testing.T, e env) {
	alice := e.create(t, "alice.smith", func(u *authn.User) { u.FirstName, u.LastName = "Alice", "Smith" })
	bob := e.create(t, "bob", func(u *authn.User) {
		u.FirstName, u.LastName, u.RoleID, u.IsActive = "Robert", "Jones", 1, false
	})
	carol := e.create(t, "carol", func(u *authn.User) { u.FirstName, u.LastName, u.IsActive = "Carol", "SMITHERS", false })
	pct := e.create(t, "per%cent", func(u *authn.User) { u.FirstName, u.LastName = "P", "C" })
	under := e.create(t, "under_score", func(u *authn.User) { u.FirstName, u.LastName = "U", "S" })
	all := []authn.User{alice, bob, carol, pct, under}

	ids := func(us ...authn.User) []string {
		out := make([]string, len(us))
		for i, u := range us {
			out[i] = u.ID
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name string
		f    authn.UserFilter
		want []authn.User
	}{
		{"none", authn.UserFilter{}, all},
		{"last name any case", authn.UserFilter{Query: "smith"}, []authn.User{alice, carol}},
		{"first name trimmed", authn.UserFilter{Query: "  ROBERT\t"}, []authn.User{bob}},
		{"e-mail", authn.UserFilter{Query: "Alice.S"}, []authn.User{alice}},
		{"domain", authn.UserFilter{Query: strings.ToUpper(e.domain)}, all},
		{"percent is literal", authn.UserFilter{Query: "%"}, []authn.User{pct}},
		{"underscore is literal", authn.UserFilter{Query: "r_s"}, []authn.User{under}},
		{"no match", authn.UserFilter{Query: "zzzz-nobody"}, nil},
		{"role", authn.UserFilter{RoleID: ptr(1)}, []authn.User{bob}},
		{"inactive", authn.UserFilter{Active: ptr(false)}, []authn.User{bob, carol}},
		{"active", authn.UserFilter{Active: ptr(true)}, []authn.User{alice, pct, under}},
		{"active role 2", authn.UserFilter{Active: ptr(true), RoleID: ptr(2), Query: "smith"}, []authn.User{alice}},
		{"inactive query", authn.UserFilter{Active: ptr(false), Query: "smith"}, []authn.User{carol}},
		{"unknown role", authn.UserFilter{RoleID: ptr(987654)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Limit = 2 // filters must hold across pages
			got := e.listAll(t, tc.f)
			if !slices.Equal(ids(got...), ids(tc.want...)) {
				var emails []string
				for _, u := range got {
					emails = append(emails, u.Email)
				}
				t.Fatalf("got %v", emails)
			}
		})
	}
}

func testListLimits(t *testing.T, e env) {
	for i := range 52 {
		e.create(t, fmt.Sprintf("lim%02d", i))
	}
	page := func(f authn.UserFilter) ([]authn.User, string) {
		t.Helper()
		f.Query = e.domain
		users, next, err := e.st.ListUsers(e.ctx, f)
		if err != nil {
			t.Fatalf("ListUsers(%+v): %v", f, err)
		}
		return users, next
	}
	for _, limit := range []int{0, -5} {
		users, next := page(authn.UserFilter{Limit: limit})
		if len(users) != authn.DefaultListLimit || next == "" {
			t.Fatalf("Limit %d: %d users, next %q; want %d and a next page", limit, len(users), next, authn.DefaultListLimit)
		}
		rest, next := page(authn.UserFilter{Limit: limit, Cursor: next})
		if len(rest) != 2 || next != "" {
			t.Fatalf("second page: %d users, next %q; want 2 and none", len(rest), next)
		}
	}
	users, next := page(authn.UserFilter{Limit: authn.MaxListLimit * 10})
	if len(users) != 52 || next != "" {
		t.Fatalf("huge Limit: %d users, next %q", len(users), next)
	}
	users, next = page(authn.UserFilter{Limit: 52})
	if len(users) != 52 || next != "" {
		t.Fatalf("Limit = count: %d users, next %q; want no next page", len(users), next)
	}
}

func testListInvalidCursor(t *testing.T, e env) {
	e.create(t, "c1")
	e.create(t, "c2")
	_, next, err := e.st.ListUsers(e.ctx, authn.UserFilter{Query: e.domain, Limit: 1})
	if err != nil || next == "" {
		t.Fatalf("ListUsers: next %q, %v", next, err)
	}
	for _, c := range []string{
		"garbage!",
		"e30",              // "{}"
		next[:len(next)-3], // truncated
		next + "AAAA",      // extended
		strings.Repeat("A", 1<<16),
	} {
		_, _, err := e.st.ListUsers(e.ctx, authn.UserFilter{Cursor: c})
		wantErr(t, fmt.Sprintf("ListUsers(Cursor: %.20q)", c), err, authn.ErrInvalidCursor)
	}
}

func testCountUsers(t *testing.T, e env) {
	before, err := e.st.CountUsers(e.ctx)
	if err != nil {
		t.Fatalf("CountUsers: %v", err)
	}
	a := e.create(t, "n1")
	e.create(t, "n2")
	e.create(t, "n3")
	if n, err := e.st.CountUsers(e.ctx); err != nil || n != before+3 {
		t.Fatalf("CountUsers = %d, %v; want %d", n, err, before+3)
	}
	if err := e.st.DeleteUser(e.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := e.st.CountUsers(e.ctx); err != nil || n != before+2 {
		t.Fatalf("CountUsers = %d, %v; want %d", n, err, before+2)
	}
}

func testStats(t *testing.T, e env) {
	// Far in the future, so the other tests' logins and locks (at about
	// now) cannot be counted here, whatever runs alongside.
	t0 := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(mrand.Int64N(1<<40)) * time.Microsecond)
	u1, u2, u3 := e.create(t, "s1"), e.create(t, "s2"), e.create(t, "s3")
	for _, l := range []struct {
		u  authn.User
		at time.Time
	}{{u1, t0.Add(time.Hour)}, {u2, t0}, {u3, t0.Add(-time.Microsecond)}} {
		if err := e.st.RecordLoginSuccess(e.ctx, l.u.ID, l.at); err != nil {
			t.Fatal(err)
		}
	}
	count := func(what string, fn func(context.Context, time.Time) (int, error), at time.Time, want int) {
		t.Helper()
		if n, err := fn(e.ctx, at); err != nil || n != want {
			t.Fatalf("%s(%v) = %d, %v; want %d", what, at, n, err, want)
		}
	}
	count("CountActiveUsers", e.st.CountActiveUsers, t0, 2) // since is inclusive
	count("CountActiveUsers", e.st.CountActiveUsers, t0.Add(time.Microsecond), 1)
	count("CountActiveUsers", e.st.CountActiveUsers, t0.Add(2*time.Hour), 0)

	for _, l := range []struct {
		u     authn.User
		until time.Time
	}{{u1, t0.Add(30 * time.Minute)}, {u2, t0.Add(time.Hour)}, {u3, t0}} {
		if err := e.st.RecordLoginFailure(e.ctx, l.u.ID, 5, &l.until); err != nil {
			t.Fatal(err)
		}
	}
	count("CountLockedUsers", e.st.CountLockedUsers, t0, 2) // a lock ending at now has ended
	count("CountLockedUsers", e.st.CountLockedUsers, t0.Add(45*time.Minute), 1)
	locked := func(now time.Time, want ...authn.User) {
		t.Helper()
		users, err := e.st.LockedUsers(e.ctx, now)
		if err != nil {
			t.Fatalf("LockedUsers: %v", err)
		}
		if len(users) != len(want) {
			t.Fatalf("LockedUsers(%v) = %d users, want %d", now, len(users), len(want))
		}
		for i := range want {
			if users[i].ID != want[i].ID {
				t.Fatalf("LockedUsers(%v)[%d] = %s, want %s", now, i, users[i].Email, want[i].Email)
			}
		}
	}
	locked(t0, u2, u1) // latest expiry first
	locked(t0.Add(45*time.Minute), u2)
	locked(t0.Add(time.Hour))
	if err := e.st.Unlock(e.ctx, u2.ID); err != nil {
		t.Fatal(err)
	}
	locked(t0, u1)
}

func testRoles(t *testing.T, e env) {
	roles, err := e.st.ListRoles(e.ctx)
	if err != nil {
		t.Fatalf("ListRoles: %v", err)
	}
	if len(roles) < 2 || roles[0].ID != 1 || roles[0].Name != "admin" || !slices.Equal(roles[0].Permissions, []string{"*"}) ||
		roles[1].ID != 2 || roles[1].Name != "user" || roles[1].Permissions == nil || len(roles[1].Permissions) != 0 {
		t.Fatalf("ListRoles = %+v; want the seeded admin (1, [*]) and user (2, [])", roles)
	}

	name := "analyst-" + randomHex(t, 4)
	perms := []string{"samples:read", "samples:write"}
	r, err := e.st.CreateRole(e.ctx, authn.Role{Name: " " + name + " ", Permissions: perms})
	if err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	if r.ID <= 2 || r.Name != name || !slices.Equal(r.Permissions, perms) {
		t.Fatalf("CreateRole = %+v", r)
	}
	for _, get := range []func() (authn.Role, error){
		func() (authn.Role, error) { return e.st.RoleByID(e.ctx, r.ID) },
		func() (authn.Role, error) { return e.st.RoleByName(e.ctx, name) },
	} {
		got, err := get()
		if err != nil || got.ID != r.ID || got.Name != name || !slices.Equal(got.Permissions, perms) {
			t.Fatalf("role lookup = %+v, %v; want %+v", got, err, r)
		}
	}
	roles, err = e.st.ListRoles(e.ctx)
	if err != nil || !slices.ContainsFunc(roles, func(x authn.Role) bool { return x.ID == r.ID && x.Name == name }) {
		t.Fatalf("ListRoles = %+v, %v; want it to contain %+v", roles, err, r)
	}
	if !slices.IsSortedFunc(roles, func(a, b authn.Role) int { return a.ID - b.ID }) {
		t.Fatalf("ListRoles not ordered by id: %+v", roles)
	}

	empty, err := e.st.CreateRole(e.ctx, authn.Role{Name: name + "-none"})
	if err != nil || empty.Permissions == nil || len(empty.Permissions) != 0 {
		t.Fatalf("CreateRole without permissions = %+v, %v", empty, err)
	}
	if got, err := e.st.RoleByID(e.ctx, empty.ID); err != nil || got.Permissions == nil || len(got.Permissions) != 0 {
		t.Fatalf("RoleByID = %+v, %v; want no permissions (not nil)", got, err)
	}

	u := e.create(t, "analyst", func(u *authn.User) { u.RoleID = r.ID })
	if u.Role != name || !slices.Equal(u.Permissions, perms) {
		t.Fatalf("user's role = %q %v", u.Role, u.Permissions)
	}

	_, err = e.st.CreateRole(e.ctx, authn.Role{Name: name})
	wantErr(t, "CreateRole with a taken name", err, authn.ErrRoleNameTaken)
	_, err = e.st.CreateRole(e.ctx, authn.Role{Name: "admin"})
	wantErr(t, "CreateRole(admin)", err, authn.ErrRoleNameTaken)
	for _, bad := range []authn.Role{
		{Name: ""},
		{Name: "  "},
		{Name: name + "-x", Permissions: []string{"ok", ""}},
		{ID: 777, Name: name + "-id"},
	} {
		_, err := e.st.CreateRole(e.ctx, bad)
		wantErr(t, fmt.Sprintf("CreateRole(%+v)", bad), err, authn.ErrInvalidRole)
	}
	for _, id := range []int{0, -1, 1 << 30} {
		_, err := e.st.RoleByID(e.ctx, id)
		wantErr(t, fmt.Sprintf("RoleByID(%d)", id), err, authn.ErrRoleNotFound)
	}
	for _, n := range []string{"nobody-" + randomHex(t, 4), "ADMIN", " admin", ""} {
		_, err := e.st.RoleByName(e.ctx, n)
		wantErr(t, fmt.Sprintf("RoleByName(%q)", n), err, authn.ErrRoleNotFound)
	}
}

func testUpdateRole(t *testing.T, e env) {
	name := "editor-" + randomHex(t, 4)
	r, err := e.st.CreateRole(e.ctx, authn.Role{Name: name, Permissions: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	u := e.create(t, "editor", func(u *authn.User) { u.RoleID = r.ID })

	upd := authn.Role{ID: r.ID, Name: name + "-2", Permissions: []string{"b", "c"}}
	got, err := e.st.UpdateRole(e.ctx, upd)
	if err != nil || got.ID != r.ID || got.Name != upd.Name || !slices.Equal(got.Permissions, upd.Permissions) {
		t.Fatalf("UpdateRole = %+v, %v; want %+v", got, err, upd)
	}
	if got, err := e.st.RoleByName(e.ctx, upd.Name); err != nil || got.ID != r.ID {
		t.Fatalf("RoleByName(new name) = %+v, %v", got, err)
	}
	if _, err := e.st.RoleByName(e.ctx, name); !errors.Is(err, authn.ErrRoleNotFound) {
		t.Fatalf("RoleByName(old name): %v, want ErrRoleNotFound", err)
	}
	// Users see their role's new name and permissions at once.
	gotU := e.get(t, u.ID)
	if gotU.Role != upd.Name || !slices.Equal(gotU.Permissions, upd.Permissions) {
		t.Fatalf("user's role = %q %v, want %q %v", gotU.Role, gotU.Permissions, upd.Name, upd.Permissions)
	}

	_, err = e.st.UpdateRole(e.ctx, authn.Role{ID: r.ID, Name: "admin"})
	wantErr(t, "UpdateRole to a taken name", err, authn.ErrRoleNameTaken)
	_, err = e.st.UpdateRole(e.ctx, authn.Role{ID: 1 << 30, Name: name + "-404"})
	wantErr(t, "UpdateRole of an unknown role", err, authn.ErrRoleNotFound)
	_, err = e.st.UpdateRole(e.ctx, authn.Role{ID: r.ID, Name: ""})
	wantErr(t, "UpdateRole to an empty name", err, authn.ErrInvalidRole)
	if got, err := e.st.RoleByID(e.ctx, r.ID); err != nil || got.Name != upd.Name {
		t.Fatalf("role changed by failed updates: %+v, %v", got, err)
	}
}

func sameRecord(t testing.TB, got, want authn.SessionRecord) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.IP != want.IP ||
		got.UserAgent != want.UserAgent || got.EndReason != want.EndReason {
		t.Fatalf("session record differs:\n got  %+v\n want %+v", got, want)
	}
	wantTime(t, "CreatedAt", got.CreatedAt, want.CreatedAt)
	wantTime(t, "LastActivity", got.LastActivity, want.LastActivity)
	wantTime(t, "ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	wantTimePtr(t, "EndedAt", got.EndedAt, want.EndedAt)
}

func (e env) history(t testing.TB, userID string, limit int) []authn.SessionRecord {
	t.Helper()
	recs, err := e.st.SessionHistory(e.ctx, userID, limit)
	if err != nil {
		t.Fatalf("SessionHistory: %v", err)
	}
	return recs
}

func testSessions(t *testing.T, e env) {
	u := e.create(t, "sess")
	t0 := time.Date(2025, 6, 7, 8, 9, 10, 111222333, time.FixedZone("x", 5*3600))
	s1 := authn.SessionRecord{
		ID: randomHex(t, 16), UserID: strings.ToUpper(u.ID), IP: "2001:db8::1", UserAgent: "Mozilla/5.0 \"ünïcode\"",
		CreatedAt: t0, LastActivity: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour),
	}
	s2 := authn.SessionRecord{ID: randomHex(t, 16), UserID: u.ID, CreatedAt: t0.Add(time.Second), ExpiresAt: t0.Add(2 * time.Hour)}
	before := time.Now().Add(-time.Second)
	s3 := authn.SessionRecord{ID: randomHex(t, 16), UserID: u.ID, IP: "203.0.113.9", ExpiresAt: time.Now().Add(time.Hour)}
	for _, s := range []authn.SessionRecord{s1, s2, s3} {
		if err := e.st.RecordSessionStart(e.ctx, s); err != nil {
			t.Fatalf("RecordSessionStart(%s): %v", s.ID, err)
		}
	}
	after := time.Now().Add(time.Second)

	norm := func(s authn.SessionRecord) authn.SessionRecord {
		s.UserID = u.ID
		s.CreatedAt, s.LastActivity, s.ExpiresAt = µs(s.CreatedAt), µs(s.LastActivity), µs(s.ExpiresAt)
		if s.LastActivity.Equal(µs(time.Time{})) {
			s.LastActivity = s.CreatedAt
		}
		return s
	}
	recs := e.history(t, u.ID, 0)
	if len(recs) != 3 {
		t.Fatalf("SessionHistory = %d records, want 3", len(recs))
	}
	// s3 took its start time from the store's clock: newest.
	if recs[0].ID != s3.ID || recs[0].CreatedAt.Before(before) || recs[0].CreatedAt.After(after) ||
		!recs[0].LastActivity.Equal(recs[0].CreatedAt) {
		t.Fatalf("SessionHistory[0] = %+v; want %s started now", recs[0], s3.ID)
	}
	s3.CreatedAt = recs[0].CreatedAt
	sameRecord(t, recs[0], norm(s3))
	sameRecord(t, recs[1], norm(s2))
	sameRecord(t, recs[2], norm(s1))

	// Recording a start again changes nothing.
	again := s1
	again.IP, again.ExpiresAt = "198.51.100.1", t0.Add(10*time.Hour)
	if err := e.st.RecordSessionStart(e.ctx, again); err != nil {
		t.Fatalf("RecordSessionStart again: %v", err)
	}
	if recs := e.history(t, u.ID, 0); len(recs) != 3 {
		t.Fatalf("SessionHistory after a repeated start = %d records", len(recs))
	} else {
		sameRecord(t, recs[2], norm(s1))
	}

	// The first end wins.
	end := t0.Add(30*time.Minute + time.Nanosecond*777)
	started, err := e.st.RecordSessionEnd(e.ctx, s1.ID, end, "logout")
	if err != nil {
		t.Fatalf("RecordSessionEnd: %v", err)
	}
	wantTimePtr(t, "RecordSessionEnd's start", &started, ptr(norm(s1).CreatedAt))
	if started, err := e.st.RecordSessionEnd(e.ctx, s1.ID, end.Add(time.Hour), "expired"); err != nil || !started.IsZero() {
		t.Fatalf("RecordSessionEnd again = %v, %v; want the zero time: it ended nothing", started, err)
	}
	ended := norm(s1)
	ended.EndedAt, ended.EndReason = ptr(µs(end)), "logout"
	sameRecord(t, e.history(t, u.ID, 0)[2], ended)

	// No history row (its start was lost): not an error.
	if started, err := e.st.RecordSessionEnd(e.ctx, randomHex(t, 16), end, "logout"); err != nil || !started.IsZero() {
		t.Fatalf("RecordSessionEnd of an unknown session = %v, %v", started, err)
	}

	if recs := e.history(t, u.ID, 2); len(recs) != 2 || recs[0].ID != s3.ID || recs[1].ID != s2.ID {
		t.Fatalf("SessionHistory(limit 2) = %+v", recs)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid", ""} {
		if recs := e.history(t, id, 0); recs == nil || len(recs) != 0 {
			t.Fatalf("SessionHistory(%q) = %#v; want an empty slice", id, recs)
		}
	}
}

func testSessionEndForUser(t *testing.T, e env) {
	u := e.create(t, "endall")
	other := e.create(t, "bystander")
	now := time.Now()
	start := func(userID string) string {
		id := randomHex(t, 16)
		if err := e.st.RecordSessionStart(e.ctx, authn.SessionRecord{ID: id, UserID: userID, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	done, keep, a, b := start(u.ID), start(u.ID), start(u.ID), start(u.ID)
	theirs := start(other.ID)
	if _, err := e.st.RecordSessionEnd(e.ctx, done, now, "logout"); err != nil {
		t.Fatal(err)
	}

	t1 := now.Add(time.Minute)
	started, err := e.st.RecordSessionEndForUser(e.ctx, u.ID, t1, "password_changed", keep)
	if err != nil || len(started) != 2 {
		t.Fatalf("RecordSessionEndForUser(except keep) = %v, %v; want 2 start times", started, err)
	}
	byID := func(userID string) map[string]authn.SessionRecord {
		m := map[string]authn.SessionRecord{}
		for _, r := range e.history(t, userID, 0) {
			m[r.ID] = r
		}
		return m
	}
	recs := byID(u.ID)
	for id, want := range map[string]string{done: "logout", keep: "", a: "password_changed", b: "password_changed"} {
		r := recs[id]
		if r.EndReason != want || (r.EndedAt == nil) != (want == "") {
			t.Fatalf("session %s: ended %v reason %q; want reason %q", id, r.EndedAt, r.EndReason, want)
		}
	}
	wantTimePtr(t, "EndedAt", recs[a].EndedAt, ptr(µs(t1)))
	wantTimePtr(t, "EndedAt of the earlier end", recs[done].EndedAt, ptr(µs(now)))

	started, err = e.st.RecordSessionEndForUser(e.ctx, strings.ToUpper(u.ID), t1.Add(time.Minute), "deactivated", "")
	if err != nil || len(started) != 1 {
		t.Fatalf("RecordSessionEndForUser(all) = %v, %v; want 1 start time", started, err)
	}
	kept := recs[keep].CreatedAt
	wantTimePtr(t, "start of the kept session", &started[0], &kept)
	if r := byID(u.ID)[keep]; r.EndReason != "deactivated" {
		t.Fatalf("kept session: reason %q, want deactivated", r.EndReason)
	}
	for _, id := range []string{u.ID, uuid.NewString(), "not-a-uuid"} {
		if started, err := e.st.RecordSessionEndForUser(e.ctx, id, t1, "again", ""); err != nil || len(started) != 0 {
			t.Fatalf("RecordSessionEndForUser(%q) = %v, %v; want none", id, started, err)
		}
	}
	if r := byID(other.ID)[theirs]; r.EndedAt != nil {
		t.Fatalf("another user's session was ended: %+v", r)
	}
}

func testSessionInvalid(t *testing.T, e env) {
	u := e.create(t, "badsess")
	exp := time.Now().Add(time.Hour)
	err := e.st.RecordSessionStart(e.ctx, authn.SessionRecord{UserID: u.ID, ExpiresAt: exp})
	wantErr(t, "RecordSessionStart without id", err, authn.ErrInvalidSessionRecord)
	err = e.st.RecordSessionStart(e.ctx, authn.SessionRecord{ID: randomHex(t, 16), UserID: u.ID})
	wantErr(t, "RecordSessionStart without expiry", err, authn.ErrInvalidSessionRecord)
	if recs := e.history(t, u.ID, 0); len(recs) != 0 {
		t.Fatalf("invalid records were stored: %+v", recs)
	}
}

func testConcurrentCreate(t *testing.T, e env) {
	const n = 8
	legacy := legacyID()
	for _, tc := range []struct {
		name string
		user func(i int) authn.User
		want error
	}{
		{"same e-mail", func(i int) authn.User {
			return authn.User{Email: fmt.Sprintf("%sace@%s", strings.Repeat(" ", i), e.domain), HashedPassword: someHash}
		}, authn.ErrEmailTaken},
		{"same legacy id", func(i int) authn.User {
			return authn.User{Email: e.email(fmt.Sprintf("legacy%d", i)), HashedPassword: someHash, LegacyID: &legacy}
		}, authn.ErrLegacyIDTaken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				wg   sync.WaitGroup
				errs = make([]error, n)
			)
			for i := range n {
				wg.Go(func() {
					u := tc.user(i)
					if i%2 == 1 {
						u.Email = strings.ToUpper(u.Email)
					}
					_, errs[i] = e.st.CreateUser(e.ctx, u)
				})
			}
			wg.Wait()
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, tc.want):
					t.Fatalf("CreateUser: %v, want nil or %v", err, tc.want)
				}
			}
			if ok != 1 {
				t.Fatalf("%d of %d concurrent creates succeeded, want 1", ok, n)
			}
		})
	}
}

func testCancelledContext(t *testing.T, e env) {
	u := e.create(t, "cancel")
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	if _, err := e.st.UserByID(ctx, u.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("UserByID with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := e.st.CreateUser(ctx, authn.User{Email: e.email("never"), HashedPassword: someHash}); !errors.Is(err, context.Canceled) {
		t.Fatalf("CreateUser with a cancelled context: %v, want context.Canceled", err)
	}
	if _, _, err := e.st.ListUsers(ctx, authn.UserFilter{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListUsers with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := e.st.UserByEmail(e.ctx, e.email("never")); !errors.Is(err, authn.ErrUserNotFound) {
		t.Fatalf("a create with a cancelled context was stored: %v", err)
	}
}
