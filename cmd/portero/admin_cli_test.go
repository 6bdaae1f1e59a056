package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portero/portero/storage/storagetest"
)

func TestUsersAndRolesCLI(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t, storagetest.SQLiteURL(t), "")
	mustRun := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errOut := e.run(t, stdin, args...)
		if code != 0 {
			t.Fatalf("portero %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	for _, email := range []string{"ana@example.test", "bo@example.test", "cy@example.test"} {
		mustRun("Cli-Pass-2026!x\n", "users", "create", "--email", email, "--first-name", strings.ToUpper(email[:1]))
	}

	out := mustRun("", "users", "list")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[1], "ana@example.test") || !strings.Contains(lines[0], "LEGACY ID") {
		t.Fatalf("users list:\n%s", out)
	}
	code, out, errOut := e.run(t, "", "users", "list", "--limit", "2")
	if code != 0 || strings.Count(out, "@example.test") != 2 || !strings.Contains(errOut, "more users: --cursor ") {
		t.Fatalf("users list --limit 2 (%d):\n%s%s", code, out, errOut)
	}
	if out := mustRun("", "users", "list", "--limit", "2", "--all"); strings.Count(out, "@example.test") != 3 {
		t.Fatalf("users list --all:\n%s", out)
	}
	if out := mustRun("", "users", "list", "--q", "BO@"); strings.Count(out, "@example.test") != 1 || !strings.Contains(out, "bo@example.test") {
		t.Fatalf("users list --q:\n%s", out)
	}

	// Roles: create, give it to a user, protect it while in use.
	if out := mustRun("", "roles", "create", "analyst", "--permissions", "samples:read, samples:write"); !strings.Contains(out, "created role analyst (3)") {
		t.Fatalf("roles create: %s", out)
	}
	if code, _, errOut := e.run(t, "", "roles", "create", "analyst"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("duplicate role (%d): %s", code, errOut)
	}
	mustRun("", "users", "update", "bo@example.test", "--role", "analyst", "--last-name", "Li", "--verified=true")
	var bo userJSON
	if err := json.Unmarshal([]byte(mustRun("", "users", "show", "bo@example.test", "--json")), &bo); err != nil {
		t.Fatal(err)
	}
	if bo.Role != "analyst" || bo.LastName != "Li" || !bo.IsVerified || !bo.IsActive {
		t.Fatalf("bo after update: %+v", bo)
	}
	if out := mustRun("", "users", "show", bo.ID); !strings.Contains(out, "analyst (3)") {
		t.Fatalf("users show by id:\n%s", out)
	}
	if out := mustRun("", "users", "list", "--role", "analyst"); strings.Count(out, "@example.test") != 1 {
		t.Fatalf("users list --role analyst:\n%s", out)
	}
	if code, _, errOut := e.run(t, "", "roles", "delete", "analyst"); code != 1 || !strings.Contains(errOut, "in use") {
		t.Fatalf("delete of a role in use (%d): %s", code, errOut)
	}
	if code, _, errOut := e.run(t, "", "roles", "update", "admin", "--name", "boss"); code != 1 || !strings.Contains(errOut, "protected") {
		t.Fatalf("renaming admin (%d): %s", code, errOut)
	}
	if out := mustRun("", "roles", "update", "3", "--name", "scientist"); !strings.Contains(out, "updated role scientist (3)") {
		t.Fatalf("roles update: %s", out)
	}
	if out := mustRun("", "roles", "list"); !strings.Contains(out, "scientist  samples:read,samples:write") {
		t.Fatalf("roles list:\n%s", out)
	}

	// Deactivation; a password only from stdin, never argv.
	if out := mustRun("", "users", "deactivate", "cy@example.test"); !strings.Contains(out, "deactivated cy@example.test") {
		t.Fatalf("deactivate: %s", out)
	}
	if out := mustRun("", "users", "list", "--inactive"); strings.Count(out, "@example.test") != 1 || !strings.Contains(out, "cy@example.test") {
		t.Fatalf("users list --inactive:\n%s", out)
	}
	if code, _, errOut := e.run(t, "", "users", "update", "ana@example.test", "New-Pass-2026!x"); code != 2 || !strings.Contains(errOut, "never taken from the command line") {
		t.Fatalf("password on argv (%d): %s", code, errOut)
	}
	if code, _, errOut := e.run(t, "weak\n", "users", "update", "ana@example.test", "--reset-password"); code != 1 || !strings.Contains(errOut, "password refused") {
		t.Fatalf("weak reset (%d): %s", code, errOut)
	}
	mustRun("New-Pass-2026!x\n", "users", "update", "ana@example.test", "--reset-password")
	if code, _, errOut := e.run(t, "", "users", "show", "nobody@example.test"); code != 1 || !strings.Contains(errOut, "no such user") {
		t.Fatalf("show of an unknown user (%d): %s", code, errOut)
	}
	if code, _, _ := e.run(t, "", "users", "frobnicate"); code != 2 {
		t.Fatalf("unknown users command: exit %d", code)
	}
	if code, out, _ := e.run(t, "", "roles", "delete", "scientist"); code != 1 {
		t.Fatalf("delete while bo has it (%d): %s", code, out)
	}
}

func TestImportLegacyCLI(t *testing.T) {
	t.Parallel()
	legacyURL := storagetest.NewPostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, legacyURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Hashes of "Legacy-Pass-1!" made by passlib (bcrypt and bcrypt_sha256).
	if _, err := conn.Exec(ctx, `CREATE TABLE app_user (user_id integer PRIMARY KEY, mail text, pw text, enabled boolean);
		INSERT INTO app_user VALUES
		(41, 'ana@legacy.test', '$2b$04$QeKz8rWEIGRz63t2FD0LPOBUGA3cSIb3L7XHI8q0RST7bvVdSgnpu', true),
		(42, 'bo@legacy.test', '$bcrypt-sha256$v=2,t=2b,r=4$X5osKoybtWR8CQ0Gr3xO2O$.7KTJWJcuvGxBxEzGmrpBCoFkbR4AxK', true),
		(43, 'cy@legacy.test', 'md5$abc', true)`); err != nil {
		t.Fatal(err)
	}
	e := newCLIEnv(t, storagetest.SQLiteURL(t), "")
	query := "SELECT user_id AS id, mail AS email, pw AS hashed_password, enabled AS active FROM app_user ORDER BY user_id"

	code, out, errOut := e.run(t, "", "users", "import-legacy", "--from", legacyURL, "--query", query, "--dry-run")
	if code != 3 || !strings.Contains(out, "dry run, nothing written: created 2, updated 0, skipped 0 (unchanged), rejected 1") ||
		!strings.Contains(out, `row 3 (legacy id 43, cy@legacy.test): rejected: unusable password hash: unsupported format "?"`) {
		t.Fatalf("dry run (%d):\n%s%s", code, out, errOut)
	}
	if code, out, _ := e.run(t, "", "users", "list"); code != 0 || strings.Contains(out, "legacy.test") {
		t.Fatalf("the dry run wrote:\n%s", out)
	}
	if code, out, errOut := e.run(t, "", "users", "import-legacy", "--from", legacyURL, "--query", query); code != 3 || !strings.Contains(out, "created 2, updated 0, skipped 0 (unchanged), rejected 1") {
		t.Fatalf("import (%d):\n%s%s", code, out, errOut)
	}
	if code, out, errOut := e.run(t, "", "users", "import-legacy", "--from", legacyURL, "--query", query); code != 3 || !strings.Contains(out, "created 0, updated 0, skipped 2 (unchanged), rejected 1") {
		t.Fatalf("re-run (%d):\n%s%s", code, out, errOut)
	}
	if out, _ := e.runOK(t, "users", "show", "42"); !strings.Contains(out, "bo@legacy.test") || !strings.Contains(out, "legacy id:        42") {
		t.Fatalf("users show 42:\n%s", out)
	}
	// An admin switches bo off; the legacy table still says enabled. The
	// import keeps him off and says so; --reactivate brings him back.
	e.runOK(t, "users", "deactivate", "bo@legacy.test")
	if code, out, errOut := e.run(t, "", "users", "import-legacy", "--from", legacyURL, "--query", query); code != 3 ||
		!strings.Contains(out, "row 2 (legacy id 42, bo@legacy.test): skipped: kept inactive: deactivated in Portero") ||
		!strings.Contains(out, "skipped 2 (1 of them kept as Portero has it, see above)") {
		t.Fatalf("re-run after a deactivation (%d):\n%s%s", code, out, errOut)
	}
	if out, _ := e.runOK(t, "users", "show", "42"); !strings.Contains(out, "active:           false") {
		t.Fatalf("the import reactivated bo:\n%s", out)
	}
	if code, out, errOut := e.run(t, "", "users", "import-legacy", "--from", legacyURL, "--query", query, "--reactivate"); code != 3 || !strings.Contains(out, "updated 1") {
		t.Fatalf("--reactivate (%d):\n%s%s", code, out, errOut)
	}
	if code, _, errOut := e.run(t, "", "users", "import-legacy", "--from", legacyURL); code != 2 || !strings.Contains(errOut, "--query are required") {
		t.Fatalf("no query (%d): %s", code, errOut)
	}
	if code, _, errOut := e.run(t, "", "users", "import-legacy", "--from", legacyURL, "--query", "SELECT mail FROM app_user"); code != 1 || !strings.Contains(errOut, `required column "id" missing`) {
		t.Fatalf("bad query (%d): %s", code, errOut)
	}
}

// runOK is run for commands that must succeed.
func (e *cliEnv) runOK(t *testing.T, args ...string) (string, string) {
	t.Helper()
	code, out, errOut := e.run(t, "", args...)
	if code != 0 {
		t.Fatalf("portero %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out, errOut
}
