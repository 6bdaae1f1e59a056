package authn_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/authn"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/storage/storagetest"
)

// Hashes as the legacy FastAPI app's Python tools wrote them (passlib 1.7.4,
// python-bcrypt 3.2.2), all of legacyPassword.
const (
	legacyPassword = "Legacy-Pass-1!"
	legacyPasslib  = "$2b$04$QeKz8rWEIGRz63t2FD0LPOBUGA3cSIb3L7XHI8q0RST7bvVdSgnpu"                       // passlib bcrypt
	legacyPyBcrypt = "$2a$04$zBq95BBfsnnTGe8UVIOIvO6KVkpCf9mbh5OAidD09k2ggbT.76NvC"                       // python-bcrypt, prefix 2a
	legacySHA256v2 = "$bcrypt-sha256$v=2,t=2b,r=4$X5osKoybtWR8CQ0Gr3xO2O$.7KTJWJcuvGxBxEzGmrpBCoFkbR4AxK" // passlib bcrypt_sha256
	legacySHA256v1 = "$bcrypt-sha256$2b,4$PS8v4iRZzAH6yRip.nq9Je$TvtxStTYhjAcQ6b96MzNZQrC.B0d.ji"         // passlib bcrypt_sha256, version 1
)

// legacyDB creates a database shaped like the legacy app's (integer ids,
// one full_name, a role name, is_active) and returns its URL and a
// connection for changing it.
func legacyDB(t testing.TB) (string, *pgx.Conn) {
	t.Helper()
	url := storagetest.NewPostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, `
CREATE TABLE users (
    id              serial PRIMARY KEY,
    email           varchar(255) NOT NULL,
    hashed_password varchar(255),
    full_name       varchar(255),
    role            varchar(50),
    is_active       boolean NOT NULL DEFAULT true
);
INSERT INTO users (id, email, hashed_password, full_name, role, is_active) VALUES
    (1,  'ana@legacy.test', '`+legacyPasslib+`',  'Ana Pérez', 'admin', true),
    (2,  'bo@legacy.test',  '`+legacyPyBcrypt+`', 'Bo Li',     'user',  true),
    (3,  'cy@legacy.test',  '`+legacySHA256v2+`', 'Cy Rao',    'analyst', true),
    (4,  'dee@legacy.test', '`+legacyPasslib+`',  'Dee Doe',   'auditor', true),
    (5,  'ed@legacy.test',  '$pbkdf2-sha256$29000$N2bsvTdG6F1r$abc', 'Ed Ng', 'user', true),
    (6,  'not-an-email',    '`+legacyPasslib+`',  'Fi Fo',     'user',  true),
    (7,  'gus@legacy.test', '`+legacySHA256v1+`', 'Gus Gil',   NULL,    false),
    (8,  'hal@portero.test','`+legacyPasslib+`',  'Hal Hu',    'user',  true),
    (9,  'ivy@legacy.test', NULL,                 'Ivy Iz',    'user',  true),
    (10, 'ANA@legacy.test', '`+legacyPasslib+`',  'Ana Again', 'user',  true);
`)
	if err != nil {
		t.Fatal(err)
	}
	return url, conn
}

const legacyQuery = `SELECT id, email, hashed_password,
    split_part(full_name, ' ', 1) AS first_name, split_part(full_name, ' ', 2) AS last_name,
    role, is_active AS active
FROM users ORDER BY id`

func TestImportLegacyUsers(t *testing.T) {
	t.Parallel()
	k := newAdminKit(t, e2eBackends[0], nil) // PostgreSQL and Redis
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url, legacy := legacyDB(t)
	src := authn.PostgresLegacySource{URL: url, Query: legacyQuery}
	operator := authn.Principal{Session: sessions.Session{UserID: "cli:ops", Roles: []string{"admin"}}}
	meta := authn.ClientMeta{UserAgent: "portero-cli"}
	if _, err := k.users.CreateRole(ctx, authn.Role{Name: "analyst"}); err != nil {
		t.Fatal(err)
	}
	hal, err := k.users.CreateUser(ctx, authn.User{Email: "hal@portero.test", HashedPassword: legacyPasslib, IsActive: true})
	if err != nil {
		t.Fatal(err)
	}
	importOnce := func(dry bool) authn.ImportReport {
		t.Helper()
		rep, err := k.svc.ImportLegacy(ctx, src, authn.ImportOptions{DryRun: dry}, operator, meta)
		if err != nil {
			t.Fatalf("ImportLegacy: %v", err)
		}
		return rep
	}
	counts := func(r authn.ImportReport) [4]int { return [4]int{r.Created, r.Updated, r.Skipped, r.Rejected} }

	// A dry run decides everything and writes nothing.
	rep := importOnce(true)
	if counts(rep) != [4]int{4, 0, 0, 6} || !rep.DryRun {
		t.Fatalf("dry run counts %v, want 4 created, 6 rejected: %+v", counts(rep), rep.Rows)
	}
	if n, _ := k.users.CountUsers(ctx); n != 1 {
		t.Fatalf("the dry run wrote: %d users", n)
	}

	rep = importOnce(false)
	if counts(rep) != [4]int{4, 0, 0, 6} {
		t.Fatalf("counts %v, want 4 created, 6 rejected: %+v", counts(rep), rep.Rows)
	}
	reasons := map[int64]string{}
	for _, row := range rep.Rows {
		if row.Outcome == authn.ImportRejected {
			reasons[row.LegacyID] = row.Reason
		}
	}
	for id, want := range map[int64]string{
		4: `unknown role: "auditor"`, 5: `unusable password hash: unsupported format "$pbkdf2-sha256$"`,
		6: "invalid e-mail", 8: "e-mail already used: by a Portero user not imported from the legacy app (" + hal.ID + ")",
		9: "unusable password hash: empty", 10: "duplicate e-mail in the source: also on row 1",
	} {
		if !strings.HasPrefix(reasons[id], want) {
			t.Errorf("legacy id %d: reason %q, want %q…", id, reasons[id], want)
		}
	}
	if got := rep.Reasons(); got["unusable password hash"] != 2 || got["e-mail already used"] != 1 {
		t.Errorf("Reasons() = %v", got)
	}

	byLegacy := func(id int64) authn.User {
		t.Helper()
		u, err := k.users.UserByLegacyID(ctx, id)
		if err != nil {
			t.Fatalf("legacy id %d: %v", id, err)
		}
		return u
	}
	ana, gus := byLegacy(1), byLegacy(7)
	if ana.Email != "ana@legacy.test" || ana.FirstName != "Ana" || ana.LastName != "Pérez" || ana.Role != "admin" || !ana.IsActive || !ana.IsVerified {
		t.Errorf("ana = %+v", ana)
	}
	if gus.Role != "user" || gus.IsActive {
		t.Errorf("gus (no role, inactive) = %+v", gus)
	}
	if byLegacy(3).Role != "analyst" || byLegacy(2).HashedPassword != legacyPyBcrypt {
		t.Error("cy's role or bo's hash not imported as is")
	}

	// Everyone logs in with the password they had; the hash is upgraded.
	for _, email := range []string{"ana@legacy.test", "cy@legacy.test"} {
		if _, err := k.svc.Login(ctx, email, legacyPassword, authn.ClientMeta{IP: "10.9.0.1"}); err != nil {
			t.Fatalf("login %s with the legacy password: %v", email, err)
		}
		if u, _ := k.users.UserByEmail(ctx, email); !strings.HasPrefix(u.HashedPassword, "$argon2id$") {
			t.Fatalf("%s's hash after login: %.16q…, want argon2id", email, u.HashedPassword)
		}
	}
	if _, err := k.svc.Login(ctx, "bo@legacy.test", "legacy-pass-1!", authn.ClientMeta{IP: "10.9.0.2"}); !errors.Is(err, authn.ErrBadCredentials) {
		t.Fatalf("a wrong password: %v", err)
	}
	if _, err := k.svc.Login(ctx, "gus@legacy.test", legacyPassword, authn.ClientMeta{IP: "10.9.0.3"}); !errors.Is(err, authn.ErrBadCredentials) {
		t.Fatalf("an inactive legacy user logged in: %v", err)
	}

	// Re-running is a no-op, logins' upgraded hashes included.
	if rep := importOnce(false); counts(rep) != [4]int{0, 0, 4, 6} {
		t.Fatalf("re-run counts %v, want 4 skipped, 6 rejected: %+v", counts(rep), rep.Rows)
	}
	if n, _ := k.users.CountUsers(ctx); n != 5 {
		t.Fatalf("%d users after the re-run, want 5", n)
	}

	// Changes in the legacy table come across; live sessions follow.
	newHash, _ := bcrypt.GenerateFromPassword([]byte("New-Legacy-Pass-2!"), bcrypt.MinCost)
	if _, err := legacy.Exec(ctx, `UPDATE users SET role = 'user', full_name = 'Ana Gómez' WHERE id = 1;
		UPDATE users SET is_active = false WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	if _, err := legacy.Exec(ctx, `UPDATE users SET hashed_password = $1 WHERE id = 2`, "$2b$"+string(newHash)[4:]); err != nil {
		t.Fatal(err)
	}
	rep = importOnce(false)
	if counts(rep) != [4]int{0, 3, 1, 6} {
		t.Fatalf("after legacy changes: %v, want 3 updated: %+v", counts(rep), rep.Rows)
	}
	fields := map[int64][]string{}
	for _, row := range rep.Rows {
		if row.Outcome == authn.ImportUpdated {
			fields[row.LegacyID] = row.Fields
		}
	}
	if !slices.Equal(fields[1], []string{"last_name", "role_id"}) || !slices.Equal(fields[3], []string{"is_active"}) || !slices.Equal(fields[2], []string{"hashed_password"}) {
		t.Fatalf("updated fields %v", fields)
	}
	if live, _ := k.sessions.ListByUser(ctx, ana.ID); len(live) != 1 || !slices.Equal(live[0].Roles, []string{"user"}) {
		t.Fatalf("ana's live session after her role changed: %+v", live)
	}
	if live, _ := k.sessions.ListByUser(ctx, byLegacy(3).ID); len(live) != 0 {
		t.Fatalf("cy's sessions outlived her deactivation: %+v", live)
	}
	if _, err := k.svc.Login(ctx, "bo@legacy.test", "New-Legacy-Pass-2!", authn.ClientMeta{IP: "10.9.0.4"}); err != nil {
		t.Fatalf("bo's new legacy password: %v", err)
	}

	// Audited: who ran it, each user created, each update, each run.
	if rows := k.auditRows(t, audit.Filter{Action: "user.imported"}, rowsExactly(4)); len(rows) != 4 || rows[0].Details["by"] != "cli:ops" {
		t.Fatalf("user.imported rows: %+v", rows)
	}
	runs := k.auditRows(t, audit.Filter{Action: "user.import.finished"}, rowsExactly(3))
	if len(runs) != 3 || runs[0].Details["updated"] != float64(3) || runs[2].Details["created"] != float64(4) {
		t.Fatalf("run rows: %+v", runs)
	}
	if rows := k.auditRows(t, audit.Filter{UserID: ana.ID, Action: audit.ActionUserUpdated}, rowsExactly(1)); len(rows) != 1 || rows[0].Details["source"] != "legacy_import" {
		t.Fatalf("ana's update rows: %+v", rows)
	}
}

func TestImportLegacyQueryShape(t *testing.T) {
	t.Parallel()
	url, conn := legacyDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	each := func(q string) error {
		return authn.PostgresLegacySource{URL: url, Query: q}.Each(ctx, func(authn.LegacyUser) error { return nil })
	}
	for _, q := range []string{
		"SELECT id, email FROM users",                                   // no hashed_password
		"SELECT id, email, hashed_password, full_name FROM users",       // unknown column
		"SELECT id, id, email, hashed_password FROM users",              // twice
		"SELECT id AS user_id, email, hashed_password AS pw FROM users", // aliases wrong
	} {
		if err := each(q); !errors.Is(err, authn.ErrLegacyQuery) {
			t.Errorf("%s: %v, want ErrLegacyQuery", q, err)
		}
	}
	// The source is only read: a writing query fails in its READ ONLY transaction.
	if err := each("UPDATE users SET email = 'x' RETURNING id, email, hashed_password"); !errors.Is(err, authn.ErrLegacySource) {
		t.Errorf("a writing query: %v, want ErrLegacySource", err)
	}
	// Nor can a second statement end that transaction and write, even when
	// the URL asks for the simple protocol (which runs every statement).
	for _, u := range []string{url, url + "&default_query_exec_mode=simple_protocol"} {
		err := authn.PostgresLegacySource{URL: u, Query: "SELECT id, email, hashed_password FROM users; COMMIT; DELETE FROM users"}.Each(ctx, func(authn.LegacyUser) error { return nil })
		if err == nil {
			t.Errorf("%s: a query that commits and deletes ran", u)
		}
	}
	var left int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&left); err != nil || left != 10 {
		t.Fatalf("the source has %d users after the import's queries (%v), want 10", left, err)
	}
	// Ids of any integer-like type, flags of any boolean-like type; a row
	// that does not convert is reported, not fatal.
	var got []authn.LegacyUser
	err := authn.PostgresLegacySource{URL: url, Query: `SELECT * FROM (VALUES
		(11::numeric, 'a@x.test', 'h', 1, 'yes'),
		('12', 'b@x.test', 'h', 2, 'f'),
		(1.5::numeric, 'c@x.test', 'h', 2, 'maybe'),
		(NULL, NULL, NULL, NULL, NULL)) AS t(id, email, hashed_password, role, active)`}.Each(ctx, func(lu authn.LegacyUser) error {
		got = append(got, lu)
		return nil
	})
	if err != nil || len(got) != 4 {
		t.Fatalf("Each = %v, %d rows", err, len(got))
	}
	if got[0].ID != 11 || got[0].Role != "1" || !got[0].Active || got[0].Problem != "" || got[1].ID != 12 || got[1].Active || got[1].Problem != "" {
		t.Errorf("rows 1-2 = %+v", got[:2])
	}
	if !strings.Contains(got[2].Problem, "id: not an integer") || !strings.Contains(got[2].Problem, "active: not a boolean") {
		t.Errorf("row 3 problem %q", got[2].Problem)
	}
	if !strings.Contains(got[3].Problem, "id is NULL") || !strings.Contains(got[3].Problem, "email is NULL") {
		t.Errorf("row 4 problem %q", got[3].Problem)
	}
	if err := (authn.PostgresLegacySource{URL: "postgres://u:s3cret@127.0.0.1:1/x?connect_timeout=1", Query: "SELECT 1"}).Each(ctx, nil); !errors.Is(err, authn.ErrLegacySource) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("unreachable source: %v (must not show the password)", err)
	}
}

// twoUserImport is an admin kit and a legacy table holding ana (admin)
// and bo (user), imported once; run imports again with opts.
func twoUserImport(t *testing.T, ctx context.Context) (k *adminKit, legacy *pgx.Conn, run func(authn.ImportOptions) authn.ImportReport) {
	t.Helper()
	k = newAdminKit(t, e2eBackends[0], nil)
	url, legacy := legacyDB(t)
	if _, err := legacy.Exec(ctx, `DELETE FROM users WHERE id > 2`); err != nil {
		t.Fatal(err)
	}
	if _, err := k.users.CreateRole(ctx, authn.Role{Name: "analyst"}); err != nil {
		t.Fatal(err)
	}
	src := authn.PostgresLegacySource{URL: url, Query: legacyQuery}
	operator := authn.Principal{Session: sessions.Session{UserID: "cli:ops", Roles: []string{"admin"}}}
	run = func(opts authn.ImportOptions) authn.ImportReport {
		t.Helper()
		rep, err := k.svc.ImportLegacy(ctx, src, opts, operator, authn.ClientMeta{UserAgent: "portero-cli"})
		if err != nil {
			t.Fatalf("ImportLegacy: %v", err)
		}
		return rep
	}
	if rep := run(authn.ImportOptions{}); rep.Created != 2 {
		t.Fatalf("first import: %+v", rep.Rows)
	}
	return k, legacy, run
}

// TestImportLegacyKeepsPorteroDeactivation: an account an admin deactivated
// in Portero (a leaked password, a departure) is not brought back by the
// next import because the legacy table still says active; the report says
// why, and --reactivate (ImportOptions.Reactivate) is the explicit way.
// Deactivations in the legacy table still come across.
func TestImportLegacyKeepsPorteroDeactivation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, legacy, run := twoUserImport(t, ctx)
	ana, err := k.users.UserByLegacyID(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	inactive := false
	if _, err := k.users.UpdateUser(ctx, ana.ID, authn.UserUpdate{IsActive: &inactive}); err != nil {
		t.Fatal(err)
	}

	for _, dry := range []bool{true, false} {
		rep := run(authn.ImportOptions{DryRun: dry})
		if rep.Updated != 0 || rep.Skipped != 2 {
			t.Fatalf("re-import (dry run %v) after the deactivation: %+v", dry, rep.Rows)
		}
		if r := rep.Rows[0]; r.LegacyID != 1 || !strings.Contains(r.Reason, "kept inactive") {
			t.Errorf("ana's row says %q, want why she stays inactive", r.Reason)
		}
	}
	if u, _ := k.users.UserByLegacyID(ctx, 1); u.IsActive {
		t.Fatal("the import reactivated an account deactivated in Portero")
	}
	if _, err := k.svc.Login(ctx, "ana@legacy.test", legacyPassword, authn.ClientMeta{IP: "10.9.1.1"}); !errors.Is(err, authn.ErrBadCredentials) {
		t.Fatalf("login to the deactivated account: %v", err)
	}

	// Asked for explicitly, the legacy table's word goes.
	if rep := run(authn.ImportOptions{Reactivate: true}); rep.Updated != 1 || !slices.Equal(rep.Rows[0].Fields, []string{"is_active"}) {
		t.Fatalf("import with Reactivate: %+v", rep.Rows)
	}
	if u, _ := k.users.UserByLegacyID(ctx, 1); !u.IsActive {
		t.Fatal("Reactivate did not reactivate")
	}
	// And a deactivation in the legacy table needs no option.
	if _, err := legacy.Exec(ctx, `UPDATE users SET is_active = false WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	if rep := run(authn.ImportOptions{}); rep.Updated != 1 {
		t.Fatalf("legacy deactivation not imported: %+v", rep.Rows)
	}
	if u, _ := k.users.UserByLegacyID(ctx, 2); u.IsActive {
		t.Fatal("bo is still active after the legacy table deactivated him")
	}
}

// TestImportLegacyTellsLegacyChangesFromPorteroOnes: a re-import applies
// what the legacy app changed since the last import and keeps what an
// admin changed in Portero (a role taken away must not come back), and a
// password changed in the legacy app replaces the one Portero upgraded at
// login, so the old password stops working everywhere.
func TestImportLegacyTellsLegacyChangesFromPorteroOnes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, legacy, run := twoUserImport(t, ctx)
	reimport := func() authn.ImportReport { t.Helper(); return run(authn.ImportOptions{}) }
	rowOf := func(rep authn.ImportReport, legacyID int64) authn.ImportRow {
		for _, r := range rep.Rows {
			if r.LegacyID == legacyID {
				return r
			}
		}
		return authn.ImportRow{}
	}
	ana, _ := k.users.UserByLegacyID(ctx, 1) // admin in the legacy app
	userRole, err := k.users.RoleByName(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.users.UpdateUser(ctx, ana.ID, authn.UserUpdate{RoleID: &userRole.ID}); err != nil {
		t.Fatal(err)
	}
	// bo signs in through Portero: his hash is upgraded to argon2id.
	if _, err := k.svc.Login(ctx, "bo@legacy.test", legacyPassword, authn.ClientMeta{IP: "10.9.2.1"}); err != nil {
		t.Fatal(err)
	}

	rep := reimport()
	if rep.Updated != 0 || rep.Skipped != 2 {
		t.Fatalf("re-import with nothing changed in the legacy app: %+v", rep.Rows)
	}
	if r := rowOf(rep, 1); !strings.Contains(r.Reason, "kept as changed in Portero: role") {
		t.Errorf("ana's row: %+v, want the role kept and said so", r)
	}
	if r := rowOf(rep, 2); r.LegacyID != 0 {
		t.Errorf("bo's upgraded password is reported on every run: %+v", r)
	}
	if u, _ := k.users.UserByLegacyID(ctx, 1); u.Role != "user" {
		t.Fatalf("the import gave the admin role back: %q", u.Role)
	}

	// Now the legacy app changes both: ana's role, bo's password.
	newHash, _ := bcrypt.GenerateFromPassword([]byte("New-Legacy-Pass-2!"), bcrypt.MinCost)
	if _, err := legacy.Exec(ctx, `UPDATE users SET role = 'analyst' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := legacy.Exec(ctx, `UPDATE users SET hashed_password = $1 WHERE id = 2`, string(newHash)); err != nil {
		t.Fatal(err)
	}
	bo, _ := k.users.UserByLegacyID(ctx, 2)
	rep = reimport()
	if rep.Updated != 2 || !slices.Equal(rowOf(rep, 1).Fields, []string{"role_id"}) || !slices.Equal(rowOf(rep, 2).Fields, []string{"hashed_password"}) {
		t.Fatalf("re-import after legacy changes: %+v", rep.Rows)
	}
	if u, _ := k.users.UserByLegacyID(ctx, 1); u.Role != "analyst" {
		t.Fatalf("ana's role after the legacy app changed it: %q", u.Role)
	}
	if _, err := k.svc.Login(ctx, "bo@legacy.test", legacyPassword, authn.ClientMeta{IP: "10.9.2.2"}); !errors.Is(err, authn.ErrBadCredentials) {
		t.Fatalf("bo's old password after the legacy app changed it: %v", err)
	}
	if _, err := k.svc.Login(ctx, "bo@legacy.test", "New-Legacy-Pass-2!", authn.ClientMeta{IP: "10.9.2.3"}); err != nil {
		t.Fatalf("bo's new legacy password: %v", err)
	}
	if live, _ := k.sessions.ListByUser(ctx, bo.ID); len(live) != 1 {
		t.Fatalf("bo's sessions: %d, want only the one opened with the new password", len(live))
	}
}

// TestImportLegacyRoleRenameIsNoLegacyChange: the snapshot holds what the
// legacy row said, not what Portero made of it, so renaming the role in
// Portero (or changing --default-role) is not mistaken for a legacy change
// that would undo an admin's demotion; and --reactivate only ever
// reactivates.
func TestImportLegacyRoleRenameIsNoLegacyChange(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, legacy, run := twoUserImport(t, ctx)
	analyst, err := k.users.RoleByName(ctx, "analyst")
	if err != nil {
		t.Fatal(err)
	}
	// The legacy table names roles by Portero id; ana holds analyst's.
	if _, err := legacy.Exec(ctx, `UPDATE users SET role = $1 WHERE id = 1`, strconv.Itoa(analyst.ID)); err != nil {
		t.Fatal(err)
	}
	if rep := run(authn.ImportOptions{}); rep.Updated != 1 {
		t.Fatalf("role by id: %+v", rep.Rows)
	}
	ana, _ := k.users.UserByLegacyID(ctx, 1)
	userRole, _ := k.users.RoleByName(ctx, "user")
	if _, err := k.users.UpdateUser(ctx, ana.ID, authn.UserUpdate{RoleID: &userRole.ID}); err != nil {
		t.Fatal(err)
	}
	analyst.Name = "data-analyst"
	if _, err := k.users.UpdateRole(ctx, analyst); err != nil {
		t.Fatal(err)
	}
	if rep := run(authn.ImportOptions{}); rep.Updated != 0 {
		t.Fatalf("a role renamed in Portero counted as a legacy change: %+v", rep.Rows)
	}
	if u, _ := k.users.UserByLegacyID(ctx, 1); u.Role != "user" {
		t.Fatalf("the admin's demotion was undone: %q", u.Role)
	}

	// bo: inactive in the legacy table, reactivated by an admin in
	// Portero. --reactivate must not switch him off again.
	if _, err := legacy.Exec(ctx, `UPDATE users SET is_active = false WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	run(authn.ImportOptions{})
	bo, _ := k.users.UserByLegacyID(ctx, 2)
	active := true
	if _, err := k.users.UpdateUser(ctx, bo.ID, authn.UserUpdate{IsActive: &active}); err != nil {
		t.Fatal(err)
	}
	run(authn.ImportOptions{Reactivate: true})
	if u, _ := k.users.UserByLegacyID(ctx, 2); !u.IsActive {
		t.Fatal("--reactivate deactivated a user an admin had reactivated")
	}
}
