package main

import (
	"bytes"
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// seedEmbedded makes the SQLite database of an embedded Portero that has been
// used: a custom role, two users (one with a legacy id and a lockout), a
// session and some audit rows. It returns the database's URL.
func seedEmbedded(t *testing.T, ctx context.Context) string {
	t.Helper()
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "portero.db")
	db, err := storage.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	admin, analyst := uuid.NewString(), uuid.NewString()
	now := time.Now().UTC()
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO roles (id, name, permissions) VALUES (3, 'analyst', '["samples:read"]')`, nil},
		{`INSERT INTO users (id, email, hashed_password, role_id, is_superuser) VALUES (?, 'admin@example.com', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA', 1, 1)`, []any{admin}},
		{`INSERT INTO users (id, email, hashed_password, role_id, legacy_id, login_attempts, locked_until) VALUES (?, 'ana@example.com', '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW', 3, 17, 5, ?)`, []any{analyst, now.Add(30 * time.Minute)}},
		{`INSERT INTO user_sessions (id, user_id, expires_at, ended_at, end_reason) VALUES ('sess-1', ?, ?, ?, 'logout')`, []any{admin, now.Add(time.Hour), now}},
	}
	for range 25 {
		stmts = append(stmts, struct {
			q    string
			args []any
		}{`INSERT INTO audit_logs (event_id, user_id, action, details) VALUES (?, ?, 'auth.login.failed', '{"attempt": 1}')`, []any{uuid.NewString(), analyst}})
	}
	for _, s := range stmts {
		if _, err := db.SQL().ExecContext(ctx, s.q, s.args...); err != nil {
			t.Fatalf("%s: %v", s.q, err)
		}
	}
	return dbURL
}

// copyCounts parses the table migrate copy prints into table -> fields.
func copyCounts(t *testing.T, out string) map[string]string {
	t.Helper()
	counts := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("unexpected output line %q in:\n%s", line, out)
		}
		counts[f[0]] = strings.Join(f[1:], " ")
	}
	return counts
}

func TestMigrateCopyFromEmbeddedToPostgres(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from := seedEmbedded(t, ctx)
	to := storagetest.NewPostgresURL(t)
	getenv := func(string) string { return "" }
	migrateCopy := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, append([]string{"migrate", "copy"}, args...), getenv, nil, &out, &errOut)
		return code, out.String(), errOut.String()
	}

	// A dry run counts and leaves the destination untouched, not even migrated.
	code, out, errOut := migrateCopy("--from", from, "--to", to, "--dry-run")
	if code != 0 {
		t.Fatalf("dry run: %d\n%s%s", code, out, errOut)
	}
	if got := copyCounts(t, out); got["users"] != "2 - -" || got["audit_logs"] != "25 - -" {
		t.Errorf("dry run counts %v\n%s", got, out)
	}
	dst, err := storage.Open(ctx, to)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	status, err := dst.MigrationStatus(ctx)
	if err != nil || status[0].Applied {
		t.Fatalf("dry run migrated the destination: %+v %v", status, err)
	}

	code, out, errOut = migrateCopy("--from", from, "--to", to)
	if code != 0 {
		t.Fatalf("copy: %d\n%s%s", code, out, errOut)
	}
	want := map[string]string{"roles": "3 3 0", "users": "2 2 0", "user_sessions": "1 1 0", "audit_logs": "25 25 0"}
	got := copyCounts(t, out)
	for table, w := range want {
		// Role 1 may equal the destination's seed, role 2's created_at differs.
		if table != "roles" && got[table] != w {
			t.Errorf("%s: %q, want %q\n%s", table, got[table], w, out)
		}
	}
	var legacy, attempts int64
	var hash string
	if err := dst.Pool().QueryRow(ctx, `SELECT legacy_id, login_attempts, hashed_password FROM users WHERE email = 'ana@example.com'`).Scan(&legacy, &attempts, &hash); err != nil {
		t.Fatal(err)
	}
	if legacy != 17 || attempts != 5 || !strings.HasPrefix(hash, "$2b$12$") {
		t.Errorf("copied user: legacy %d, attempts %d, hash %q", legacy, attempts, hash)
	}

	// Again: refused without --merge (with a hint), a no-op with it.
	code, _, errOut = migrateCopy("--from", from, "--to", to)
	if code != 1 || !strings.Contains(errOut, "already has") || !strings.Contains(errOut, "--merge") {
		t.Errorf("second copy without --merge: %d %s", code, errOut)
	}
	code, out, errOut = migrateCopy("--merge", "--from", from, "--to", to)
	if code != 0 {
		t.Fatalf("merge: %d\n%s%s", code, out, errOut)
	}
	if got := copyCounts(t, out); got["users"] != "2 0 2" || got["audit_logs"] != "25 0 25" || got["roles"] != "3 0 3" {
		t.Errorf("merge re-run counts %v", got)
	}
}

func TestMigrateCopyNeverPrintsAPassword(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from := seedEmbedded(t, ctx)
	getenv := func(string) string { return "" }

	// A server that holds data, reached with a password in the URL (a trust
	// setup ignores it; one with passwords already has its own in the URL).
	target := storagetest.NewPostgresURL(t)
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	secret, ok := u.User.Password()
	if !ok {
		secret = "s3cr3t-Pa55word"
		u.User = url.UserPassword(u.User.Username(), secret)
	}
	withData := u.String()
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"migrate", "copy", "--from", from, "--to", withData}, getenv, nil, &out, &errOut); code != 0 {
		t.Fatalf("first copy: %d %s", code, errOut.String())
	}

	unreachable := "postgres://portero:s3cr3t-Pa55word@127.0.0.1:1/portero?sslmode=disable&connect_timeout=2"
	for name, args := range map[string][]string{
		"unreachable destination": {"--from", from, "--to", unreachable},
		"unreachable source":      {"--from", unreachable, "--to", from},
		"refused destination":     {"--from", from, "--to", withData},
	} {
		out.Reset()
		errOut.Reset()
		code := run(ctx, append([]string{"migrate", "copy"}, args...), getenv, nil, &out, &errOut)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1: %s", name, code, errOut.String())
		}
		for _, s := range []string{secret, "s3cr3t-Pa55word"} {
			if strings.Contains(out.String()+errOut.String(), s) {
				t.Errorf("%s: output shows the password:\n%s%s", name, out.String(), errOut.String())
			}
		}
		if !strings.Contains(errOut.String(), "portero migrate copy:") {
			t.Errorf("%s: no error message: %q", name, errOut.String())
		}
	}
}

func TestMigrateCopyUsage(t *testing.T) {
	t.Parallel()
	getenv := func(string) string { return "" }
	for name, args := range map[string][]string{
		"no --to":        {"--from", "sqlite://a.db"},
		"no flags":       {},
		"extra argument": {"--from", "sqlite://a.db", "--to", "sqlite://b.db", "extra"},
		"same database":  {"--from", "sqlite://a.db", "--to", "sqlite://a.db"},
		"unknown flag":   {"--frm", "sqlite://a.db"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append([]string{"migrate", "copy"}, args...), getenv, nil, &out, &errOut); code != 2 {
			t.Errorf("%s: exit %d, want 2 (%s)", name, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "sideways"}, getenv, nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "migrate copy") {
		t.Errorf("unknown migrate subcommand: %d %q", code, errOut.String())
	}
}
