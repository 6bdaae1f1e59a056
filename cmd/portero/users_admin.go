package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/sessions"
)

const usersUsage = `usage: portero users <command> [arguments] [--config FILE]

  list [--q TEXT] [--role ROLE] [--active|--inactive] [--limit N] [--cursor C] [--all] [--json]
                               list users by e-mail (search in e-mail and names)
  show USER [--json]           one user (USER: e-mail, id, or legacy id)
  create --email E [--admin] [--first-name F] [--last-name L]
                               create a user (password from a prompt, stdin or PORTERO_USER_PASSWORD)
  update USER [--email E] [--first-name F] [--last-name L] [--role ROLE]
              [--active=true|false] [--superuser=true|false] [--verified=true|false]
              [--reset-password]
                               change a user; --reset-password reads the new one like create
  deactivate USER              deactivate a user and end their sessions
  unlock USER                  lift a user's lockout
  import-legacy --from URL --query SQL [--dry-run] [--default-role ROLE]
                               import the legacy app's users (see portero users import-legacy -h)

Passwords are never taken from the command line.
`

// cmdUsersAll dispatches portero users: create and unlock are users.go's,
// the rest are here and in import.go.
func cmdUsersAll(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usersUsage)
		return 2
	}
	switch args[0] {
	case "create", "unlock":
		return cmdUsers(ctx, args, getenv, stdin, stdout, stderr)
	case "list", "show", "update", "deactivate":
		return cmdUsersAdmin(ctx, args, getenv, stdin, stdout, stderr)
	case "import-legacy":
		return cmdImportLegacy(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usersUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "portero users: unknown command %q\n\n%s", args[0], usersUsage)
		return 2
	}
}

// cliApp opens what an administrative command needs, as `users create`
// does: the configuration, the stores and the services, quiet logging, and
// an audit spool apart from the running server's.
func cliApp(ctx context.Context, name, cfgPath string, getenv func(string) string, stderr io.Writer) (*app, int) {
	var cfgArgs []string
	if cfgPath != "" {
		cfgArgs = []string{"--config", cfgPath}
	}
	cfg, code := loadConfigFlag(name, cfgArgs, getenv, stderr)
	if code != 0 {
		return nil, code
	}
	cfg.Audit.SpoolDir += "-cli"
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "portero: %v\n", err)
		return nil, 1
	}
	log = log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	a, err := newApp(ctx, cfg, getenv, log)
	if err != nil {
		fmt.Fprintf(stderr, "portero %s: %v\n", name, err)
		return nil, 1
	}
	return a, 0
}

// cliOperator is who the audit trail says made a command-line change.
func cliOperator(getenv func(string) string) authn.Principal {
	who := getenv("USER")
	if who == "" {
		who = "unknown"
	}
	return authn.Principal{Session: sessions.Session{UserID: "cli:" + who, Roles: []string{"admin"}}}
}

var cliMeta = authn.ClientMeta{UserAgent: "portero-cli"}

// triBool is a flag that is unset, true or false.
type triBool struct{ v *bool }

func (b *triBool) String() string {
	if b.v == nil {
		return ""
	}
	return strconv.FormatBool(*b.v)
}

func (b *triBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	b.v = &v
	return nil
}

func (b *triBool) IsBoolFlag() bool { return true }

// optString is a string flag that knows whether it was given.
type optString struct{ v *string }

func (s *optString) String() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

func (s *optString) Set(v string) error { s.v = &v; return nil }

func cmdUsersAdmin(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd := args[0]
	fs := flag.NewFlagSet("users "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usersUsage) }
	cfgPath := fs.String("config", getenv("PORTERO_CONFIG"), "configuration file (or PORTERO_CONFIG)")
	asJSON := fs.Bool("json", false, "print JSON")
	q := fs.String("q", "", "search text (list)")
	limit := fs.Int("limit", 50, "page size (list)")
	cursor := fs.String("cursor", "", "continue after a page (list)")
	all := fs.Bool("all", false, "every page (list)")
	var role, email, first, last optString
	var active, superuser, verified triBool
	fs.Var(&role, "role", "role name or id (list filter; update)")
	fs.Var(&email, "email", "new e-mail (update)")
	fs.Var(&first, "first-name", "first name (update)")
	fs.Var(&last, "last-name", "last name (update)")
	fs.Var(&active, "active", "list: only active users; update: --active=true|false")
	fs.Var(&superuser, "superuser", "--superuser=true|false (update)")
	fs.Var(&verified, "verified", "--verified=true|false (update)")
	inactive := fs.Bool("inactive", false, "only inactive users (list)")
	resetPassword := fs.Bool("reset-password", false, "set a new password, read like create's (update)")
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	wantRef := cmd != "list"
	if (wantRef && len(positional) != 1) || (!wantRef && len(positional) > 0) {
		fmt.Fprintf(stderr, "portero users %s: unexpected arguments %v (passwords are never taken from the command line)\n\n%s", cmd, positional, usersUsage)
		return 2
	}
	a, code := cliApp(ctx, "users", *cfgPath, getenv, stderr)
	if code != 0 {
		return code
	}
	defer func() { _ = a.close(context.Background()) }()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "portero users %s: %s\n", cmd, describeCLIError(err))
		return 1
	}
	op := cliOperator(getenv)

	var roleID *int
	if role.v != nil {
		r, err := a.svc.FindRole(ctx, *role.v)
		if err != nil {
			return fail(fmt.Errorf("role %q: %w", *role.v, err))
		}
		roleID = &r.ID
	}
	if cmd == "list" {
		f := authn.UserFilter{Query: *q, RoleID: roleID, Limit: *limit, Cursor: *cursor}
		switch {
		case *inactive:
			f.Active = ptr(false)
		case active.v != nil:
			f.Active = active.v
		}
		return listUsers(ctx, a, f, *all, *asJSON, stdout, stderr)
	}

	u, err := a.svc.FindUser(ctx, positional[0])
	if err != nil {
		return fail(fmt.Errorf("%s: %w", positional[0], err))
	}
	switch cmd {
	case "update":
		upd := authn.AdminUpdate{UserUpdate: authn.UserUpdate{Email: email.v, FirstName: first.v, LastName: last.v,
			RoleID: roleID, IsActive: active.v, IsSuperuser: superuser.v, IsVerified: verified.v}}
		if *resetPassword {
			pw, err := readPassword(getenv, stdin, stderr)
			if err != nil {
				return fail(err)
			}
			upd.Password = &pw
		}
		if u, err = a.svc.UpdateUser(ctx, op, u.ID, upd, cliMeta); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "updated %s\n", u.Email)
	case "deactivate":
		if u, err = a.svc.UpdateUser(ctx, op, u.ID, authn.AdminUpdate{UserUpdate: authn.UserUpdate{IsActive: ptr(false)}}, cliMeta); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "deactivated %s; their sessions are ended\n", u.Email)
	}
	if cmd != "show" && a.cfg.Sessions.Driver() == "memory" {
		fmt.Fprintln(stderr, "note: with memory:// sessions the live sessions are in the running server; make this change through its /users API to reach them")
	}
	if cmd == "show" || *asJSON {
		return printUser(u, *asJSON, stdout)
	}
	return 0
}

// describeCLIError says what went wrong in an operator's words.
func describeCLIError(err error) string {
	var pe *authn.PasswordPolicyError
	switch {
	case errors.As(err, &pe):
		return "password refused: " + pe.Reason()
	case errors.Is(err, authn.ErrUserNotFound):
		return strings.TrimSuffix(err.Error(), authn.ErrUserNotFound.Error()) + "no such user"
	}
	return err.Error()
}

func listUsers(ctx context.Context, a *app, f authn.UserFilter, all, asJSON bool, stdout, stderr io.Writer) int {
	var users []authn.User
	for {
		page, next, err := a.svc.ListUsers(ctx, f)
		if err != nil {
			fmt.Fprintf(stderr, "portero users list: %v\n", err)
			return 1
		}
		users = append(users, page...)
		if next == "" || !all {
			f.Cursor = next
			break
		}
		f.Cursor = next
	}
	if asJSON {
		out := make([]userJSON, 0, len(users))
		for _, u := range users {
			out = append(out, toUserJSON(u))
		}
		return writeCLIJSON(stdout, map[string]any{"items": out, "next_cursor": nullIfEmpty(f.Cursor)})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tID\tROLE\tACTIVE\tLEGACY ID\tLOCKED UNTIL\tLAST LOGIN")
	for _, u := range users {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\t%s\n", u.Email, u.ID, u.Role, u.IsActive, legacyText(u.LegacyID), timeText(u.LockedUntil), timeText(u.LastLogin))
	}
	_ = tw.Flush()
	if f.Cursor != "" {
		fmt.Fprintf(stderr, "more users: --cursor %s (or --all)\n", f.Cursor)
	}
	return 0
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func legacyText(id *int64) string {
	if id == nil {
		return "-"
	}
	return strconv.FormatInt(*id, 10)
}

func timeText(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// userJSON is a user as the CLI prints it: what an admin sees, never the hash.
type userJSON struct {
	ID            string     `json:"id"`
	Email         string     `json:"email"`
	FirstName     string     `json:"first_name"`
	LastName      string     `json:"last_name"`
	RoleID        int        `json:"role_id"`
	Role          string     `json:"role"`
	IsActive      bool       `json:"is_active"`
	IsSuperuser   bool       `json:"is_superuser"`
	IsVerified    bool       `json:"is_verified"`
	LegacyID      *int64     `json:"legacy_id"`
	LastLogin     *time.Time `json:"last_login"`
	LoginAttempts int        `json:"login_attempts"`
	LockedUntil   *time.Time `json:"locked_until"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

func toUserJSON(u authn.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName, RoleID: u.RoleID, Role: u.Role,
		IsActive: u.IsActive, IsSuperuser: u.IsSuperuser, IsVerified: u.IsVerified, LegacyID: u.LegacyID, LastLogin: u.LastLogin,
		LoginAttempts: u.LoginAttempts, LockedUntil: u.LockedUntil, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func printUser(u authn.User, asJSON bool, stdout io.Writer) int {
	if asJSON {
		return writeCLIJSON(stdout, toUserJSON(u))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"id", u.ID}, {"email", u.Email}, {"name", strings.TrimSpace(u.FirstName + " " + u.LastName)},
		{"role", fmt.Sprintf("%s (%d)", u.Role, u.RoleID)}, {"permissions", strings.Join(u.Permissions, ",")},
		{"active", strconv.FormatBool(u.IsActive)}, {"superuser", strconv.FormatBool(u.IsSuperuser)},
		{"verified", strconv.FormatBool(u.IsVerified)}, {"legacy id", legacyText(u.LegacyID)},
		{"last login", timeText(u.LastLogin)}, {"failed attempts", strconv.Itoa(u.LoginAttempts)},
		{"locked until", timeText(u.LockedUntil)}, {"created", u.CreatedAt.UTC().Format(time.RFC3339)},
		{"updated", u.UpdatedAt.UTC().Format(time.RFC3339)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	_ = tw.Flush()
	return 0
}

func writeCLIJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}
