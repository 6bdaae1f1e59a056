package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"

	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// copyTestTables are the tables Copy moves, in the order it reports them.
var copyTestTables = []string{"roles", "users", "user_mfa", "mfa_recovery_codes", "user_sessions", "audit_logs"}

// seedBase has nanoseconds on purpose: SQLite keeps them, PostgreSQL and
// Copy keep microseconds.
var seedBase = time.Date(2024, 3, 1, 12, 30, 15, 123456789, time.UTC)

// seeded is what seed put into a database, for assertions.
type seeded struct {
	users    []uuid.UUID
	sessions int
	audits   int
}

// seed fills db the way a Portero that has been in use for a while would:
// custom roles, a changed seeded role, users with bcrypt and argon2id
// hashes, legacy ids (one beyond float64's exact range), a locked account,
// session history, and nAudit audit rows with and without users and details.
func seed(t testing.TB, ctx context.Context, db *storage.DB, nAudit int) seeded {
	t.Helper()
	must := func(q string, args ...any) {
		t.Helper()
		if err := exec(ctx, db, q, args...); err != nil {
			t.Fatalf("seed: %s: %v", q, err)
		}
	}
	must(`UPDATE roles SET permissions = $1 WHERE id = 2`, `["profile:read", "profile:write"]`)
	must(`INSERT INTO roles (id, name, permissions, created_at) VALUES ($1, $2, $3, $4), ($5, $6, $7, $8)`,
		3, "analyst", `["samples:read","samples:write"]`, seedBase,
		4, "auditor", `[{"resource": "audit", "actions": ["read"], "limit": 9007199254740993}]`, seedBase.Add(time.Second))

	var s seeded
	type user struct {
		email, hash, first, last string
		role                     int
		active, super, verified  bool
		lastLogin, lockedUntil   any
		attempts                 int
		legacy                   any
	}
	users := []user{
		{"admin@example.com", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "Ada", "Admin", 1, true, true, true, seedBase.Add(-time.Hour), nil, 0, int64(1)},
		{"locked@example.com", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ", "Lucía", "Núñez", 3, true, false, true, seedBase.Add(-48 * time.Hour), seedBase.Add(30 * time.Minute), 5, int64(42)},
		{"nolegacy@example.com", "$2y$10$abcdefghijklmnopqrstuu5Jb8gV2yH9.9XJ9qxB7a4VtB3mL1WJa", "", "", 4, false, false, false, nil, nil, 2, nil},
		{"José.Ñandú@example.com", "$2a$04$0123456789012345678901uVbkKDD3uKcZZ3mTrnDvT4d6tQwM8Ky", "José", "Ñandú", 2, true, false, false, seedBase, nil, 0, int64(9007199254740993)},
	}
	for i, u := range users {
		id := uuid.New()
		s.users = append(s.users, id)
		created := seedBase.Add(-time.Duration(1000-i) * time.Hour)
		must(`INSERT INTO users (id, email, hashed_password, first_name, last_name, role_id, is_active, is_superuser, is_verified,
			last_login, login_attempts, locked_until, legacy_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			id.String(), u.email, u.hash, u.first, u.last, u.role, u.active, u.super, u.verified,
			u.lastLogin, u.attempts, u.lockedUntil, u.legacy, created, created.Add(time.Duration(i)*time.Minute+time.Nanosecond*777))
	}
	for i, u := range s.users {
		for j := range 2 {
			ended, reason := any(nil), any(nil)
			if j == 0 {
				ended, reason = seedBase.Add(time.Duration(i)*time.Minute), "logout"
			}
			ip, agent := any("192.0.2."+strconv.Itoa(i)), any("Mozilla/5.0 (X11; Linux) — ünïcode")
			if i == 2 {
				ip, agent = nil, nil
			}
			start := seedBase.Add(-time.Duration(i*10+j) * time.Hour)
			must(`INSERT INTO user_sessions (id, user_id, ip_address, user_agent, created_at, last_activity, expires_at, ended_at, end_reason)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
				fmt.Sprintf("s-%s-%d", u, j), u.String(), ip, agent, start, start.Add(17*time.Minute+time.Microsecond), start.Add(12*time.Hour), ended, reason)
			s.sessions++
		}
	}
	// The admin has a second factor, with one recovery code used.
	must(`INSERT INTO user_mfa (user_id, secret, confirmed_at, last_step, created_at) VALUES ($1, $2, $3, $4, $5)`,
		s.users[0].String(), "v1.kid.sealed-secret", seedBase, int64(59_000_123), seedBase.Add(-time.Minute))
	for i := range 3 {
		var used any
		if i == 0 {
			used = seedBase
		}
		must(`INSERT INTO mfa_recovery_codes (user_id, code_hash, used_at) VALUES ($1, $2, $3)`,
			s.users[0].String(), strings.Repeat(strconv.Itoa(i), 64), used)
	}
	seedAudit(t, ctx, db, s.users, nAudit)
	s.audits = nAudit
	return s
}

// seedAudit inserts n audit rows in multi-row statements.
func seedAudit(t testing.TB, ctx context.Context, db *storage.DB, users []uuid.UUID, n int) {
	t.Helper()
	const per = 250
	actions := []string{"auth.login.succeeded", "auth.login.failed", "auth.account.locked", "session.revoked", "proxy.denied"}
	for start := 0; start < n; start += per {
		var q strings.Builder
		q.WriteString(`INSERT INTO audit_logs (event_id, user_id, action, resource, resource_id, ip_address, user_agent, details, created_at) VALUES `)
		var args []any
		for i := start; i < min(n, start+per); i++ {
			if i > start {
				q.WriteString(", ")
			}
			if db.Dialect() == storage.SQLite {
				// SQLite searches "$N" names linearly: anonymous ones keep a long statement fast.
				q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
			} else {
				p := len(args)
				fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)", p+1, p+2, p+3, p+4, p+5, p+6, p+7, p+8, p+9)
			}
			var user, details, resource any
			if i%7 != 0 {
				user = users[i%len(users)].String()
			}
			switch i % 4 {
			case 0:
				details = fmt.Sprintf(`{"attempt": %d, "reason": "bad password", "nested": {"ok": false, "list": [1, 2.5, null, "ñ"]}}`, i%5)
			case 1:
				details = `{}`
			case 2:
				details = `["a", {"b": "quote \" and \\ backslash"}]`
			}
			if i%3 == 0 {
				resource = "route"
			}
			args = append(args, uuid.New().String(), user, actions[i%len(actions)], resource, nil,
				"203.0.113."+strconv.Itoa(i%250), "curl/8."+strconv.Itoa(i%9), details,
				seedBase.Add(time.Duration(i)*time.Second+time.Duration(i)*time.Nanosecond*1001))
		}
		if err := exec(ctx, db, q.String(), args...); err != nil {
			t.Fatalf("seed audit_logs: %v", err)
		}
	}
}

// dump renders every row of every copied table, whatever its dialect, as
// comparable text: times in UTC to the microsecond, JSON re-encoded with
// sorted keys, UUIDs lower-case. It reads the columns from the database's own
// catalogue, so a column a later migration adds is compared too.
func dump(t testing.TB, ctx context.Context, db *storage.DB) map[string][]string {
	t.Helper()
	out := make(map[string][]string)
	for _, table := range copyTestTables {
		type col struct{ name, typ string }
		var cols []col
		q := `SELECT name, lower(type) FROM pragma_table_info($1) ORDER BY cid`
		if db.Dialect() == storage.Postgres {
			q = `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`
		}
		for _, r := range queryAll(t, ctx, db, q, table) {
			cols = append(cols, col{r[0].(string), r[1].(string)})
		}
		var sel []string
		for _, c := range cols {
			if c.typ == "uuid" || c.typ == "jsonb" {
				sel = append(sel, "CAST("+c.name+" AS text)")
			} else {
				sel = append(sel, c.name)
			}
		}
		for _, r := range queryAll(t, ctx, db, "SELECT "+strings.Join(sel, ", ")+" FROM "+table) {
			var b strings.Builder
			for i, v := range r {
				if i > 0 {
					b.WriteString(" | ")
				}
				b.WriteString(cols[i].name + "=" + render(t, cols[i].name, cols[i].typ, v))
			}
			out[table] = append(out[table], b.String())
		}
		slices.Sort(out[table])
	}
	return out
}

func render(t testing.TB, col, typ string, v any) string {
	t.Helper()
	if n, ok := v.(int64); ok && typ == "boolean" {
		v = n != 0 // SQLite hands booleans over as the integers it stores
	}
	switch v := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return v.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case []byte:
		return render(t, col, typ, string(v))
	case string:
		if col == "permissions" || col == "details" {
			dec := json.NewDecoder(strings.NewReader(v))
			dec.UseNumber()
			var x any
			if err := dec.Decode(&x); err != nil {
				t.Fatalf("column %s holds invalid JSON %q: %v", col, v, err)
			}
			b, err := json.Marshal(x)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		return strconv.Quote(v)
	default:
		t.Fatalf("column %s: unexpected %T", col, v)
		return ""
	}
}

func queryAll(t testing.TB, ctx context.Context, db *storage.DB, q string, args ...any) [][]any {
	t.Helper()
	var out [][]any
	if db.Dialect() == storage.Postgres {
		rows, err := db.Pool().Query(ctx, q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, vals)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return out
	}
	rows, err := db.SQL().QueryContext(ctx, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer func() { _ = rows.Close() }()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// sameRows fails t with the first differences between two dumps.
func sameRows(t testing.TB, what string, want, got map[string][]string) {
	t.Helper()
	for _, table := range copyTestTables {
		w, g := want[table], got[table]
		if slices.Equal(w, g) {
			continue
		}
		var diff []string
		for _, r := range w {
			if !slices.Contains(g, r) && len(diff) < 3 {
				diff = append(diff, "  missing: "+r)
			}
		}
		for _, r := range g {
			if !slices.Contains(w, r) && len(diff) < 6 {
				diff = append(diff, "  extra:   "+r)
			}
		}
		t.Errorf("%s: %s has %d rows, want %d\n%s", what, table, len(g), len(w), strings.Join(diff, "\n"))
	}
}

func count(t testing.TB, ctx context.Context, db *storage.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := scanOne(ctx, db, q, args, &n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func reportOf(r storage.CopyReport, table string) storage.TableReport {
	for _, tr := range r.Tables {
		if tr.Table == table {
			return tr
		}
	}
	return storage.TableReport{}
}

func newDB(dialect storage.Dialect) func(testing.TB) *storage.DB {
	if dialect == storage.Postgres {
		return storagetest.NewPostgres
	}
	return storagetest.NewSQLite
}

// TestCopyEveryDirection copies a populated database into a fresh one and
// compares every column of every row, then checks that a merge re-run writes
// nothing and that the destination's id sequences continue past the copy.
func TestCopyEveryDirection(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		src, dst storage.Dialect
		audits   int
	}{
		{"sqlite to postgres", storage.SQLite, storage.Postgres, 3000},
		{"postgres to sqlite", storage.Postgres, storage.SQLite, 1500},
		{"postgres to postgres", storage.Postgres, storage.Postgres, 800},
		{"sqlite to sqlite", storage.SQLite, storage.SQLite, 800},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			src, dst := newDB(tc.src)(t), newDB(tc.dst)(t)
			s := seed(t, ctx, src, tc.audits)
			before := dump(t, ctx, src)

			var progress int
			rep, err := storage.Copy(ctx, src, dst, storage.CopyOptions{BatchSize: 700, Progress: func(storage.TableReport) { progress++ }})
			if err != nil {
				t.Fatal(err)
			}
			sameRows(t, "after copy", before, dump(t, ctx, dst))
			sameRows(t, "source after copy", before, dump(t, ctx, src))

			want := map[string]int64{"roles": 4, "users": int64(len(s.users)), "user_mfa": 1, "mfa_recovery_codes": 3,
				"user_sessions": int64(s.sessions), "audit_logs": int64(s.audits)}
			var names []string
			for _, tr := range rep.Tables {
				names = append(names, tr.Table)
				if tr.Read != want[tr.Table] || tr.Written+tr.Skipped != tr.Read {
					t.Errorf("%s: %+v, want %d read", tr.Table, tr, want[tr.Table])
				}
				if tr.Table != "roles" && tr.Skipped != 0 {
					t.Errorf("%s: %+v, want nothing skipped", tr.Table, tr)
				}
			}
			if !slices.Equal(names, copyTestTables) || rep.DryRun {
				t.Errorf("report %+v", rep)
			}
			if wantProgress := 5 + (tc.audits+699)/700; progress != wantProgress {
				t.Errorf("Progress called %d times, want %d (once per batch)", progress, wantProgress)
			}

			// Re-running with Merge is a no-op.
			rep, err = storage.Copy(ctx, src, dst, storage.CopyOptions{Merge: true, BatchSize: 700})
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range rep.Tables {
				if tr.Written != 0 || tr.Skipped != tr.Read {
					t.Errorf("merge re-run: %+v, want everything skipped", tr)
				}
			}
			sameRows(t, "after merge re-run", before, dump(t, ctx, dst))

			// New rows take ids after the copied ones.
			if err := exec(ctx, dst, `INSERT INTO roles (name) VALUES ('newcomer')`); err != nil {
				t.Fatal(err)
			}
			if err := exec(ctx, dst, `INSERT INTO audit_logs (event_id, action) VALUES ($1, 'after.copy')`, uuid.NewString()); err != nil {
				t.Fatal(err)
			}
			if id := count(t, ctx, dst, `SELECT id FROM roles WHERE name = 'newcomer'`); id != 5 {
				t.Errorf("new role got id %d, want 5", id)
			}
			maxSrc := count(t, ctx, src, `SELECT max(id) FROM audit_logs`)
			if id := count(t, ctx, dst, `SELECT id FROM audit_logs WHERE action = 'after.copy'`); id != maxSrc+1 {
				t.Errorf("new audit row got id %d, want %d", id, maxSrc+1)
			}
		})
	}
}

// TestCopyMergeAddsOnlyWhatIsMissing merges into a production database that
// already has its own admin (same e-mail, other case, other id), sessions
// and audit rows.
func TestCopyMergeAddsOnlyWhatIsMissing(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	src, dst := storagetest.NewSQLite(t), storagetest.NewPostgres(t)
	s := seed(t, ctx, src, 400)

	prodAdmin := uuid.New()
	if err := exec(ctx, dst, `INSERT INTO users (id, email, hashed_password, role_id, legacy_id) VALUES ($1, 'ADMIN@example.com', 'x', 1, 1000)`, prodAdmin.String()); err != nil {
		t.Fatal(err)
	}
	if err := exec(ctx, dst, `INSERT INTO user_sessions (id, user_id, expires_at) VALUES ('prod-session', $1, $2)`, prodAdmin.String(), seedBase); err != nil {
		t.Fatal(err)
	}
	seedAudit(t, ctx, dst, []uuid.UUID{prodAdmin}, 5) // ids 1..5, the same ids as the source's first rows
	prod := dump(t, ctx, dst)

	if _, err := storage.Copy(ctx, src, dst, storage.CopyOptions{}); !errors.Is(err, storage.ErrDestinationNotEmpty) {
		t.Fatalf("copy into a database with users: %v, want ErrDestinationNotEmpty", err)
	}
	rep, err := storage.Copy(ctx, src, dst, storage.CopyOptions{Merge: true, BatchSize: 128})
	if err != nil {
		t.Fatal(err)
	}
	users, sessions, audits := reportOf(rep, "users"), reportOf(rep, "user_sessions"), reportOf(rep, "audit_logs")
	// The source's admin clashes on e-mail (case-insensitively): skipped,
	// and so are its two sessions, which must not land on the other admin.
	if users.Written != int64(len(s.users)-1) || users.Skipped != 1 {
		t.Errorf("users %+v", users)
	}
	if sessions.Written != int64(s.sessions-2) || sessions.Skipped != 2 {
		t.Errorf("sessions %+v", sessions)
	}
	if audits.Written != int64(s.audits) || audits.Skipped != 0 {
		t.Errorf("audit %+v", audits)
	}
	if n := count(t, ctx, dst, `SELECT count(*) FROM user_sessions WHERE user_id = $1`, prodAdmin.String()); n != 1 {
		t.Errorf("the destination's admin has %d sessions, want its own 1", n)
	}
	if n := count(t, ctx, dst, `SELECT count(*) FROM users WHERE id = $1`, s.users[0].String()); n != 0 {
		t.Errorf("the source's clashing admin was copied")
	}
	// Every source audit event arrived (under new ids), and production's own rows are untouched.
	if n := count(t, ctx, dst, `SELECT count(*) FROM audit_logs`); n != int64(s.audits+5) {
		t.Errorf("%d audit rows, want %d", n, s.audits+5)
	}
	after := dump(t, ctx, dst)
	for _, table := range copyTestTables[1:] {
		for _, r := range prod[table] {
			if !slices.Contains(after[table], r) {
				t.Errorf("%s lost or changed a row of its own: %s", table, r)
			}
		}
	}
	srcEvents := queryAll(t, ctx, src, `SELECT event_id, created_at FROM audit_logs`)
	for _, r := range srcEvents[:50] {
		at := count(t, ctx, dst, `SELECT count(*) FROM audit_logs WHERE event_id = $1 AND created_at = $2`, r[0], r[1].(time.Time).Truncate(time.Microsecond))
		if at != 1 {
			t.Fatalf("event %v is not in the destination with its time", r[0])
		}
	}

	// Re-running changes nothing, and the identity still hands out fresh ids.
	rep, err = storage.Copy(ctx, src, dst, storage.CopyOptions{Merge: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range rep.Tables {
		if tr.Written != 0 {
			t.Errorf("second merge wrote %+v", tr)
		}
	}
	sameRows(t, "second merge", after, dump(t, ctx, dst))
	if err := exec(ctx, dst, `INSERT INTO audit_logs (event_id, action) VALUES ($1, 'after.merge')`, uuid.NewString()); err != nil {
		t.Fatalf("audit insert after merge: %v", err)
	}
}

func TestCopyRefusesANonEmptyDestination(t *testing.T) {
	t.Parallel()
	for _, dialect := range []storage.Dialect{storage.Postgres, storage.SQLite} {
		for _, what := range []string{"a user", "an audit row"} {
			t.Run(dialect.String()+" with "+what, func(t *testing.T) {
				t.Parallel()
				ctx := testContext(t)
				src, dst := storagetest.NewSQLite(t), newDB(dialect)(t)
				seed(t, ctx, src, 10)
				if what == "a user" {
					if err := exec(ctx, dst, `INSERT INTO users (id, email, hashed_password) VALUES ($1, 'someone@example.com', 'x')`, uuid.NewString()); err != nil {
						t.Fatal(err)
					}
				} else {
					seedAudit(t, ctx, dst, []uuid.UUID{uuid.New()}, 1)
				}
				before := dump(t, ctx, dst)
				for _, dry := range []bool{false, true} {
					_, err := storage.Copy(ctx, src, dst, storage.CopyOptions{DryRun: dry})
					if !errors.Is(err, storage.ErrDestinationNotEmpty) {
						t.Errorf("dry run %v: %v, want ErrDestinationNotEmpty", dry, err)
					}
				}
				sameRows(t, "after refusal", before, dump(t, ctx, dst))
			})
		}
	}
}

// TestCopyFailureLeavesDestinationUnchanged fails copies part-way through
// the audit history, after roles, users and sessions were written.
func TestCopyFailureLeavesDestinationUnchanged(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		src, dst storage.Dialect
		merge    bool
		// poison, if set, plants a source row the destination refuses.
		poison  bool
		wantErr error
	}{
		{name: "cancelled sqlite to postgres", src: storage.SQLite, dst: storage.Postgres, wantErr: context.Canceled},
		{name: "cancelled postgres to sqlite", src: storage.Postgres, dst: storage.SQLite, wantErr: context.Canceled},
		{name: "cancelled merge into postgres", src: storage.SQLite, dst: storage.Postgres, merge: true, wantErr: context.Canceled},
		{name: "cancelled merge into sqlite", src: storage.Postgres, dst: storage.SQLite, merge: true, wantErr: context.Canceled},
		// SQLite's json_valid takes "\u0000"; PostgreSQL's jsonb refuses it.
		{name: "rejected row sqlite to postgres", src: storage.SQLite, dst: storage.Postgres, poison: true},
		{name: "rejected row in merge", src: storage.SQLite, dst: storage.Postgres, merge: true, poison: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			src, dst := newDB(tc.src)(t), newDB(tc.dst)(t)
			s := seed(t, ctx, src, 600)
			if tc.poison {
				if err := exec(ctx, src, `INSERT INTO audit_logs (event_id, action, details) VALUES ($1, 'poison', $2)`, uuid.NewString(), `{"note": "\u0000"}`); err != nil {
					t.Fatal(err)
				}
				seedAudit(t, ctx, src, s.users, 100)
			}
			if tc.merge {
				if err := exec(ctx, dst, `INSERT INTO users (id, email, hashed_password) VALUES ($1, 'prod@example.com', 'x')`, uuid.NewString()); err != nil {
					t.Fatal(err)
				}
				seedAudit(t, ctx, dst, []uuid.UUID{uuid.New()}, 3)
			}
			before := dump(t, ctx, dst)

			copyCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			opts := storage.CopyOptions{Merge: tc.merge, BatchSize: 200, Progress: func(tr storage.TableReport) {
				if tr.Table == "audit_logs" && tr.Read >= 400 && tc.wantErr == context.Canceled {
					cancel()
				}
			}}
			rep, err := storage.Copy(copyCtx, src, dst, opts)
			if err == nil {
				t.Fatalf("copy succeeded: %+v", rep)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "audit_logs") {
				t.Errorf("error %q does not name the table", err)
			}
			if len(rep.Tables) != 0 {
				t.Errorf("failed copy reported %+v", rep)
			}
			sameRows(t, "after failed copy", before, dump(t, ctx, dst))
		})
	}
}

func TestCopyDryRun(t *testing.T) {
	t.Parallel()
	for _, dialect := range []storage.Dialect{storage.Postgres, storage.SQLite} {
		t.Run(dialect.String(), func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			src := storagetest.NewSQLite(t)
			s := seed(t, ctx, src, 250)
			dstURL := storagetest.SQLiteURL(t)
			if dialect == storage.Postgres {
				dstURL = storagetest.NewPostgresURL(t)
			}
			dst, err := storage.Open(ctx, dstURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = dst.Close() })

			rep, err := storage.Copy(ctx, src, dst, storage.CopyOptions{DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			want := []storage.TableReport{{Table: "roles", Read: 4}, {Table: "users", Read: int64(len(s.users))},
				{Table: "user_mfa", Read: 1}, {Table: "mfa_recovery_codes", Read: 3},
				{Table: "user_sessions", Read: int64(s.sessions)}, {Table: "audit_logs", Read: int64(s.audits)}}
			if !rep.DryRun || !slices.Equal(rep.Tables, want) {
				t.Errorf("report %+v, want %+v", rep, want)
			}
			status, err := dst.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range status {
				if st.Applied {
					t.Errorf("dry run migrated the destination: %+v", st)
				}
			}

			// A migrated, empty destination is fine too, and still untouched.
			if err := dst.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			before := dump(t, ctx, dst)
			if _, err := storage.Copy(ctx, src, dst, storage.CopyOptions{DryRun: true}); err != nil {
				t.Fatal(err)
			}
			sameRows(t, "after dry run", before, dump(t, ctx, dst))
		})
	}
}

func TestCopySchemaChecks(t *testing.T) {
	t.Parallel()

	t.Run("unmigrated source", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		src, err := storage.Open(ctx, storagetest.SQLiteURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = src.Close() })
		dst := storagetest.NewSQLite(t)
		if _, err := storage.Copy(ctx, src, dst, storage.CopyOptions{}); !errors.Is(err, storage.ErrSchemaMismatch) {
			t.Errorf("%v, want ErrSchemaMismatch", err)
		}
	})

	t.Run("source column unknown to this binary", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		src, dst := storagetest.NewSQLite(t), storagetest.NewSQLite(t)
		if err := exec(ctx, src, `ALTER TABLE users ADD COLUMN nickname TEXT`); err != nil {
			t.Fatal(err)
		}
		before := dump(t, ctx, dst)
		_, err := storage.Copy(ctx, src, dst, storage.CopyOptions{})
		if !errors.Is(err, storage.ErrSchemaMismatch) || !strings.Contains(err.Error(), "nickname") {
			t.Errorf("%v, want ErrSchemaMismatch naming the column", err)
		}
		sameRows(t, "after refusal", before, dump(t, ctx, dst))
	})

	t.Run("destination newer than the binary", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		src := storagetest.NewSQLite(t)
		dst, err := storage.Open(ctx, storagetest.SQLiteURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = dst.Close() })
		fsys := fstest.MapFS{
			"m/0001_init.up.sql":   {Data: []byte(`CREATE TABLE t1 (x INTEGER)`)},
			"m/0002_later.up.sql":  {Data: []byte(`CREATE TABLE t2 (x INTEGER)`)},
			"m/0099_future.up.sql": {Data: []byte(`CREATE TABLE t3 (x INTEGER)`)},
		}
		if err := dst.MigrateFrom(ctx, fsys, "m"); err != nil {
			t.Fatal(err)
		}
		_, err = storage.Copy(ctx, src, dst, storage.CopyOptions{})
		if !errors.Is(err, storage.ErrSchemaTooNew) && !errors.Is(err, storage.ErrSchemaMismatch) {
			t.Errorf("%v, want a schema refusal", err)
		}
		if _, err := storage.Copy(ctx, src, dst, storage.CopyOptions{DryRun: true}); !errors.Is(err, storage.ErrSchemaMismatch) {
			t.Errorf("dry run: %v, want ErrSchemaMismatch", err)
		}
	})
}

// TestCopyBoundsItsBatches checks that BatchSize is honoured and capped: a
// batch the size of a million-row table would hold it all in memory.
func TestCopyBoundsItsBatches(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	src, dst := storagetest.NewSQLite(t), storagetest.NewSQLite(t)
	seed(t, ctx, src, 2100)
	var audits []int64
	_, err := storage.Copy(ctx, src, dst, storage.CopyOptions{BatchSize: 1 << 30, Progress: func(tr storage.TableReport) {
		if tr.Table == "audit_logs" {
			audits = append(audits, tr.Read)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(audits, []int64{2000, 2100}) {
		t.Errorf("audit batches ended at %v, want every 2000 rows", audits)
	}
}
