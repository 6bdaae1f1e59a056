package authn

// Legacy user import (issue 7): the legacy app's users become Portero
// users keeping their legacy id (so X-Auth-Legacy-User-Id names the same
// person upstream) and their password hashes (so they log in with the
// passwords they have; the hash is upgraded to argon2id at that login).
// Re-running the import updates what changed in the legacy table and never
// duplicates anyone: users are matched by legacy id.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/storage"
)

// Audit actions of the import.
const (
	actionUserImported   = "user.imported"        // one per user created
	actionImportFinished = "user.import.finished" // one per run, with the counts
)

// LegacyUser is one row of the legacy users table as the import query maps it.
type LegacyUser struct {
	Row            int // 1-based position in the query's result
	ID             int64
	Email          string
	HashedPassword string
	FirstName      string
	LastName       string
	Role           string // a Portero role's name (or id); "" for the default role
	Active         bool
	// Problem says why the row could not be read as a user (a NULL id, a
	// value of the wrong type); such a row is rejected with that reason.
	Problem string
}

// LegacySource yields the legacy users, one at a time, in one pass.
type LegacySource interface {
	Each(ctx context.Context, fn func(LegacyUser) error) error
}

// ImportOptions are the settings of one import run.
type ImportOptions struct {
	DryRun      bool   // decide everything, write nothing
	DefaultRole string // role of rows without one (default "user")
	// Reactivate lets an active legacy row reactivate a user who is
	// inactive in Portero. Without it, deactivation only flows one way: an
	// account an admin switched off in Portero stays off.
	Reactivate bool
}

// ImportOutcome is what happened to one row.
type ImportOutcome string

// Outcomes of an import row.
const (
	ImportCreated  ImportOutcome = "created"
	ImportUpdated  ImportOutcome = "updated"
	ImportSkipped  ImportOutcome = "skipped"  // already imported and unchanged
	ImportRejected ImportOutcome = "rejected" // not importable; Reason says why
)

// ImportRow is the outcome of one row (unchanged rows are only counted).
type ImportRow struct {
	Row      int
	LegacyID int64
	Email    string
	Outcome  ImportOutcome
	Reason   string   // why it was rejected, or a note on an update
	Fields   []string // what an update changed
	UserID   string   // the Portero user ("" when rejected, or created in a dry run)
}

// ImportReport sums up a run.
type ImportReport struct {
	DryRun                              bool
	Created, Updated, Skipped, Rejected int
	Rows                                []ImportRow
}

// Reasons counts the rows per rejection reason.
func (r ImportReport) Reasons() map[string]int {
	m := map[string]int{}
	for _, row := range r.Rows {
		if row.Outcome == ImportRejected {
			m[reasonKind(row.Reason)]++
		}
	}
	return m
}

// reasonKind is a reason without its row-specific part (after ": ").
func reasonKind(reason string) string {
	k, _, _ := strings.Cut(reason, ": ")
	return k
}

// importRun is the state of one ImportLegacy call.
type importRun struct {
	s       *Service
	opts    ImportOptions
	actor   Principal
	meta    ClientMeta
	roles   map[string]Role
	seenIDs map[int64]int
	seenEm  map[string]int
	report  ImportReport
}

// ImportLegacy imports every user src yields (admin). Rows that cannot be
// imported are reported, not fatal; a store that stops answering ends the
// run with ErrUnavailable and the report of the rows done so far (running
// again finishes the job: it is idempotent).
func (s *Service) ImportLegacy(ctx context.Context, src LegacySource, opts ImportOptions, actor Principal, meta ClientMeta) (ImportReport, error) {
	if opts.DefaultRole == "" {
		opts.DefaultRole = "user"
	}
	run := &importRun{s: s, opts: opts, actor: actor, meta: meta, roles: map[string]Role{},
		seenIDs: map[int64]int{}, seenEm: map[string]int{}, report: ImportReport{DryRun: opts.DryRun}}
	err := src.Each(ctx, func(lu LegacyUser) error {
		row, err := run.one(ctx, lu)
		if err != nil {
			return err
		}
		switch row.Outcome {
		case ImportCreated:
			run.report.Created++
		case ImportUpdated:
			run.report.Updated++
		case ImportSkipped:
			run.report.Skipped++
			if row.Reason == "" {
				return nil // unchanged: nothing to say
			}
			// Skipped with a reason: the legacy row differs and Portero kept
			// its own value, which the operator should know about.
		case ImportRejected:
			run.report.Rejected++
		}
		run.report.Rows = append(run.report.Rows, row)
		return nil
	})
	if err != nil {
		return run.report, err
	}
	if opts.DryRun {
		return run.report, nil
	}
	r := run.report
	return r, s.recordAdmin(ctx, actor, meta, actionImportFinished, "import", "legacy", map[string]any{
		"created": r.Created, "updated": r.Updated, "skipped": r.Skipped, "rejected": r.Rejected, "reasons": r.Reasons(),
	})
}

func rejected(lu LegacyUser, format string, a ...any) ImportRow {
	return ImportRow{Row: lu.Row, LegacyID: lu.ID, Email: lu.Email, Outcome: ImportRejected, Reason: fmt.Sprintf(format, a...)}
}

// one decides and applies one row. Only failures of the stores are errors.
func (run *importRun) one(ctx context.Context, lu LegacyUser) (ImportRow, error) {
	s := run.s
	lu.Email = strings.TrimSpace(lu.Email)
	if lu.Problem != "" {
		return rejected(lu, "unreadable row: %s", lu.Problem), nil
	}
	if !plausibleEmail(lu.Email) {
		return rejected(lu, "invalid e-mail: %q", clip(lu.Email, 100)), nil
	}
	if err := CheckStoredHash(lu.HashedPassword); err != nil {
		return rejected(lu, "unusable password hash: %s", hashProblem(lu.HashedPassword, err)), nil
	}
	if first, dup := run.seenIDs[lu.ID]; dup {
		return rejected(lu, "duplicate legacy id: also on row %d", first), nil
	}
	run.seenIDs[lu.ID] = lu.Row
	if first, dup := run.seenEm[NormalizeEmail(lu.Email)]; dup {
		return rejected(lu, "duplicate e-mail in the source: also on row %d", first), nil
	}
	run.seenEm[NormalizeEmail(lu.Email)] = lu.Row
	role, ok, err := run.role(ctx, lu.Role)
	if err != nil {
		return ImportRow{}, err
	}
	if !ok {
		return rejected(lu, "unknown role: %q (create it with portero roles create, or map it in the query)", clip(lu.Role, 100)), nil
	}

	existing, err := s.users.UserByLegacyID(ctx, lu.ID)
	switch {
	case errors.Is(err, ErrUserNotFound):
		return run.create(ctx, lu, role)
	case err != nil:
		return ImportRow{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return run.update(ctx, lu, role, existing)
}

// hashProblem names what is wrong with a hash without showing it: only its
// scheme identifier, which is no secret.
func hashProblem(h string, err error) string {
	switch {
	case h == "":
		return "empty"
	case errors.Is(err, ErrUnknownHashFormat):
		scheme := "?"
		if strings.HasPrefix(h, "$") {
			if parts := strings.SplitN(h, "$", 3); len(parts) >= 2 && len(parts[1]) <= 32 {
				scheme = "$" + parts[1] + "$"
			}
		}
		return "unsupported format " + strconv.Quote(scheme) + " (bcrypt, passlib bcrypt_sha256 and argon2id are)"
	case errors.Is(err, ErrHashTooCostly):
		return "cost above the allowed bound"
	default:
		return "malformed"
	}
}

// role resolves a row's role by name, then by id; ok is false when none matches.
func (run *importRun) role(ctx context.Context, ref string) (Role, bool, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		ref = run.opts.DefaultRole
	}
	if r, ok := run.roles[ref]; ok {
		return r, true, nil
	}
	r, err := run.s.users.RoleByName(ctx, ref)
	if errors.Is(err, ErrRoleNotFound) {
		if id, perr := strconv.Atoi(ref); perr == nil {
			r, err = run.s.users.RoleByID(ctx, id)
		}
	}
	switch {
	case errors.Is(err, ErrRoleNotFound):
		return Role{}, false, nil
	case err != nil:
		return Role{}, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	run.roles[ref] = r
	return r, true, nil
}

// create adds a user for a legacy id Portero does not have. An e-mail that
// already belongs to a Portero user is refused rather than linked: linking
// would hand that account the legacy identity (and whatever the legacy app
// lets it do) on nothing more than an address someone may have registered.
func (run *importRun) create(ctx context.Context, lu LegacyUser, role Role) (ImportRow, error) {
	s := run.s
	other, err := s.users.UserByEmail(ctx, lu.Email)
	switch {
	case err == nil:
		return rejected(lu, "e-mail already used: %s", describeOwner(other)), nil
	case !errors.Is(err, ErrUserNotFound):
		return ImportRow{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	row := ImportRow{Row: lu.Row, LegacyID: lu.ID, Email: lu.Email, Outcome: ImportCreated}
	if run.opts.DryRun {
		return row, nil
	}
	legacyID := lu.ID
	u, err := s.users.CreateUser(ctx, User{
		Email: lu.Email, HashedPassword: lu.HashedPassword, FirstName: lu.FirstName, LastName: lu.LastName,
		RoleID: role.ID, IsActive: lu.Active, IsVerified: true, LegacyID: &legacyID,
	})
	switch {
	case errors.Is(err, ErrEmailTaken), errors.Is(err, ErrLegacyIDTaken):
		// Someone took it between the check and the insert.
		return rejected(lu, "e-mail already used: by a user created during the import"), nil
	case errors.Is(err, ErrInvalidUser):
		return rejected(lu, "invalid user: %v", err), nil
	case err != nil:
		return ImportRow{}, storeErr(err)
	}
	row.UserID = u.ID
	if err := run.remember(ctx, u.ID, lu, nil); err != nil {
		return ImportRow{}, err
	}
	return row, s.record(ctx, run.meta, actionUserImported, u.ID, map[string]any{
		"by": run.actor.Session.UserID, "legacy_id": lu.ID, "email": u.Email, "role_id": u.RoleID, "is_active": u.IsActive,
	})
}

func describeOwner(u User) string {
	if u.LegacyID != nil {
		return fmt.Sprintf("by the Portero user of legacy id %d", *u.LegacyID)
	}
	return "by a Portero user not imported from the legacy app (" + u.ID + ")"
}

// update brings an imported user in line with the legacy row. What the
// legacy table said at the last import (legacySnapshot) tells the two
// kinds of difference apart: a field the legacy app changed since then is
// applied; a field only Portero changed (an admin's role change, an e-mail
// corrected, a password set or upgraded at login) is kept, and said so.
// Users imported before the snapshot existed get the older rule: legacy
// values win, except a password Portero already upgraded. Either way an
// active legacy row never reactivates an inactive Portero user without
// ImportOptions.Reactivate.
func (run *importRun) update(ctx context.Context, lu LegacyUser, role Role, u User) (ImportRow, error) {
	s := run.s
	prev, err := run.previous(ctx, u.ID)
	if err != nil {
		return ImportRow{}, err
	}
	var upd UserUpdate
	var fields, kept, notes []string
	var then legacySnapshot
	if prev != nil {
		then = *prev
	}
	// fromLegacy decides a field whose legacy value differs from Portero's:
	// applied when the legacy app changed it since the last import (always,
	// without a snapshot: the legacy table's word goes), else kept. The
	// report names it column for an update, word for what was kept.
	fromLegacy := func(column, word, was, is string) bool {
		if prev == nil || was != is {
			fields = append(fields, column)
			return true
		}
		kept = append(kept, word)
		return false
	}
	if email := emailAsStored(lu.Email); email != u.Email && fromLegacy("email", "email", then.Email, email) {
		upd.Email = &email
	}
	if lu.FirstName != u.FirstName && fromLegacy("first_name", "first_name", then.FirstName, lu.FirstName) {
		upd.FirstName = &lu.FirstName
	}
	if lu.LastName != u.LastName && fromLegacy("last_name", "last_name", then.LastName, lu.LastName) {
		upd.LastName = &lu.LastName
	}
	// The role is compared as the legacy row wrote it, not as resolved:
	// renaming the role in Portero, or another --default-role, is no legacy
	// change.
	if role.ID != u.RoleID && fromLegacy("role_id", "role", then.Role, strings.TrimSpace(lu.Role)) {
		upd.RoleID = &role.ID
	}
	if lu.Active != u.IsActive {
		changed := prev == nil || prev.Active != lu.Active
		switch {
		case lu.Active && !run.opts.Reactivate:
			// The legacy table saying "active" is no reason to undo an
			// admin's deactivation (a leaked password, someone who left).
			notes = append(notes, "kept inactive: deactivated in Portero (import with --reactivate, or portero users update --active=true)")
		case changed || lu.Active: // lu.Active here means Reactivate was asked for
			upd.IsActive, fields = &lu.Active, append(fields, "is_active")
		default:
			kept = append(kept, "is_active")
		}
	}
	newHash := ""
	if lu.HashedPassword != u.HashedPassword {
		switch {
		case prev != nil && prev.Hash != hashFingerprint(lu.HashedPassword):
			// A new password in the legacy app since the last import: the
			// old one must stop working here too.
			newHash, fields = lu.HashedPassword, append(fields, "hashed_password")
		case prev != nil:
			// Set or upgraded in Portero since the last import: Portero's
			// is the one in force, as expected; nothing to report.
		case strings.HasPrefix(u.HashedPassword, "$argon2id$"):
			notes = append(notes, "password kept: set or upgraded in Portero since the last import")
		default:
			newHash, fields = lu.HashedPassword, append(fields, "hashed_password")
		}
	}
	if len(kept) > 0 {
		notes = append(notes, "kept as changed in Portero: "+strings.Join(kept, ", "))
	}
	note := strings.Join(notes, "; ")
	if len(fields) == 0 {
		if !run.opts.DryRun {
			if err := run.remember(ctx, u.ID, lu, prev); err != nil {
				return ImportRow{}, err
			}
		}
		return ImportRow{Row: lu.Row, LegacyID: lu.ID, Email: lu.Email, Outcome: ImportSkipped, Reason: note, UserID: u.ID}, nil
	}
	if upd.Email != nil {
		other, err := s.users.UserByEmail(ctx, *upd.Email)
		switch {
		case err == nil && other.ID != u.ID:
			return rejected(lu, "e-mail already used: %s", describeOwner(other)), nil
		case err != nil && !errors.Is(err, ErrUserNotFound):
			return ImportRow{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	row := ImportRow{Row: lu.Row, LegacyID: lu.ID, Email: lu.Email, Outcome: ImportUpdated, Reason: note, Fields: fields, UserID: u.ID}
	if run.opts.DryRun {
		return row, nil
	}
	after, err := s.users.UpdateUser(ctx, u.ID, upd)
	switch {
	case errors.Is(err, ErrEmailTaken):
		return rejected(lu, "e-mail already used: by another Portero user"), nil
	case err != nil:
		return ImportRow{}, storeErr(err)
	}
	if newHash != "" {
		if err := s.users.SetPassword(ctx, u.ID, newHash); err != nil {
			return ImportRow{}, storeErr(err)
		}
	}
	if err := run.refreshSessions(ctx, u, after, newHash != ""); err != nil {
		return ImportRow{}, err
	}
	if err := run.remember(ctx, u.ID, lu, prev); err != nil {
		return ImportRow{}, err
	}
	return row, s.record(ctx, run.meta, audit.ActionUserUpdated, u.ID, map[string]any{
		"by": run.actor.Session.UserID, "fields": fields, "source": "legacy_import", "legacy_id": lu.ID,
	})
}

// legacySnapshot is what the legacy table said about a user at the last
// import. The password is kept as a fingerprint of the stored hash, never
// as the hash itself.
type legacySnapshot struct {
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Role      string `json:"role"` // as the row wrote it (a name, an id, or empty)
	Active    bool   `json:"active"`
	Hash      string `json:"hash_sha256"`
}

func hashFingerprint(hash string) string {
	sum := sha256.Sum256([]byte(hash))
	return hex.EncodeToString(sum[:])
}

// previous reads the user's snapshot; nil when there is none (imported
// before snapshots existed, or a store without them).
func (run *importRun) previous(ctx context.Context, userID string) (*legacySnapshot, error) {
	st, ok := run.s.users.(legacyImportStates)
	if !ok {
		return nil, nil
	}
	raw, err := st.LegacyImportState(ctx, userID)
	switch {
	case err != nil:
		return nil, storeErr(err)
	case raw == "":
		return nil, nil
	}
	var p legacySnapshot
	if json.Unmarshal([]byte(raw), &p) != nil {
		return nil, nil // unreadable: behave as before snapshots
	}
	return &p, nil
}

// remember stores what the legacy row says now, for the next import,
// unless the stored snapshot (prev) says the same already: an import of an
// unchanged table writes nothing.
func (run *importRun) remember(ctx context.Context, userID string, lu LegacyUser, prev *legacySnapshot) error {
	st, ok := run.s.users.(legacyImportStates)
	if !ok {
		return nil
	}
	now := legacySnapshot{Email: emailAsStored(lu.Email), FirstName: lu.FirstName, LastName: lu.LastName,
		Role: strings.TrimSpace(lu.Role), Active: lu.Active, Hash: hashFingerprint(lu.HashedPassword)}
	if prev != nil && *prev == now {
		return nil
	}
	b, err := json.Marshal(now)
	if err != nil {
		return err
	}
	if err := st.SetLegacyImportState(ctx, userID, string(b)); err != nil {
		return storeErr(err)
	}
	return nil
}

// refreshSessions does what an admin's change would: a deactivation or a
// new password ends the user's sessions, a new role or e-mail rewrites them.
func (run *importRun) refreshSessions(ctx context.Context, before, after User, newPassword bool) error {
	s := run.s
	switch {
	case !after.IsActive || newPassword:
		reason := "deactivated"
		if after.IsActive {
			reason = "password_reset"
		}
		if _, err := s.endUserSessions(ctx, after.ID, reason, "", ""); err != nil {
			return err
		}
	case after.Role != before.Role || after.Email != before.Email || !slices.Equal(after.Permissions, before.Permissions):
		roles, perms := identityOf(after)
		if err := s.sessions.UpdateUser(ctx, after.ID, func(sess *sessions.Session) {
			sess.Email, sess.Roles, sess.Permissions = after.Email, roles, perms
		}); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// Sentinel errors of the legacy source.
var (
	// ErrLegacyQuery means the import query's columns do not map to a
	// legacy user (a required column missing, an unknown one).
	ErrLegacyQuery = errors.New("authn: the legacy query's columns do not map to users")
	// ErrLegacySource means the legacy database could not be read.
	ErrLegacySource = errors.New("authn: cannot read the legacy database")
)

// PostgresLegacySource reads legacy users with Query from the PostgreSQL
// database at URL. The query runs in a READ ONLY transaction: the import
// never writes to the legacy database. Its columns are matched by name:
// id, email and hashed_password are required; first_name, last_name, role
// and active (or is_active) are optional; alias others in the query
// (SELECT user_id AS id, …).
type PostgresLegacySource struct {
	URL   string
	Query string
}

var legacyColumns = []string{"id", "email", "hashed_password", "first_name", "last_name", "role", "active"}

// Each implements LegacySource.
func (p PostgresLegacySource) Each(ctx context.Context, fn func(LegacyUser) error) error {
	cfg, err := pgx.ParseConfig(p.URL)
	if err != nil {
		return fmt.Errorf("%w: %s does not parse", ErrLegacySource, storage.Redact(p.URL))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	// The query only reads. The extended protocol takes one statement, so
	// "SELECT …; COMMIT; DELETE …" cannot end the read-only transaction
	// (the simple protocol, which a URL may ask for, would run all three),
	// and the session itself starts read-only.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w: %s: %s", ErrLegacySource, storage.Redact(p.URL), scrub(err.Error(), cfg.Password))
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLegacySource, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, p.Query)
	if err != nil {
		return fmt.Errorf("%w: query: %w", ErrLegacySource, err)
	}
	defer rows.Close()
	var names []string
	for _, f := range rows.FieldDescriptions() {
		names = append(names, f.Name)
	}
	if len(names) == 0 {
		// A statement that failed (a write in the READ ONLY transaction)
		// describes no columns; its error is the one to report.
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%w: query: %w", ErrLegacySource, err)
		}
	}
	idx, err := mapLegacyColumns(names)
	if err != nil {
		return err
	}
	n := 0
	for rows.Next() {
		n++
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("%w: row %d: %w", ErrLegacySource, n, err)
		}
		if err := fn(legacyUserFrom(n, idx, vals)); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrLegacySource, err)
	}
	return nil
}

func scrub(msg, password string) string {
	if password == "" {
		return msg
	}
	return strings.ReplaceAll(msg, password, "xxxxx")
}

// mapLegacyColumns returns the position of each of legacyColumns in the
// query's columns (-1 when absent), refusing missing required columns and
// any column it does not know, which is more likely a typo than intent.
func mapLegacyColumns(names []string) (map[string]int, error) {
	idx := map[string]int{}
	for _, c := range legacyColumns {
		idx[c] = -1
	}
	var problems []string
	for i, n := range names {
		n = strings.ToLower(n)
		if n == "is_active" {
			n = "active"
		}
		switch prev, known := idx[n]; {
		case !known:
			problems = append(problems, fmt.Sprintf("unknown column %q", n))
		case prev >= 0:
			problems = append(problems, fmt.Sprintf("column %q twice", n))
		default:
			idx[n] = i
		}
	}
	for _, c := range []string{"id", "email", "hashed_password"} {
		if idx[c] < 0 {
			problems = append(problems, fmt.Sprintf("required column %q missing", c))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s (want %s; alias columns in the query)", ErrLegacyQuery, strings.Join(problems, "; "), strings.Join(legacyColumns, ", "))
	}
	return idx, nil
}

// legacyUserFrom converts one row's values; what does not convert becomes
// the row's Problem.
func legacyUserFrom(row int, idx map[string]int, vals []any) LegacyUser {
	lu := LegacyUser{Row: row, Active: true}
	var problems []string
	get := func(col string) (any, bool) {
		i := idx[col]
		if i < 0 || i >= len(vals) {
			return nil, false
		}
		return vals[i], true
	}
	if v, _ := get("id"); v == nil {
		problems = append(problems, "id is NULL")
	} else if id, err := legacyInt(v); err != nil {
		problems = append(problems, "id: "+err.Error())
	} else {
		lu.ID = id
	}
	text := func(col string, dst *string, required bool) {
		v, _ := get(col)
		switch {
		case v == nil && required:
			problems = append(problems, col+" is NULL")
		case v == nil:
		default:
			s, err := legacyText(v)
			if err != nil {
				problems = append(problems, col+": "+err.Error())
			}
			*dst = s
		}
	}
	text("email", &lu.Email, true)
	text("hashed_password", &lu.HashedPassword, false)
	text("first_name", &lu.FirstName, false)
	text("last_name", &lu.LastName, false)
	text("role", &lu.Role, false)
	if v, present := get("active"); present {
		if v == nil {
			problems = append(problems, "active is NULL")
		} else if b, err := legacyBool(v); err != nil {
			problems = append(problems, "active: "+err.Error())
		} else {
			lu.Active = b
		}
	}
	lu.Problem = strings.Join(problems, "; ")
	return lu
}

// legacyInt reads an integer id of any integer, numeric or text column.
func legacyInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
	case pgtype.Numeric:
		// Int64Value refuses a fractional value and one out of range.
		if i, err := x.Int64Value(); err == nil && i.Valid {
			return i.Int64, nil
		}
	case string:
		return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
	}
	return 0, fmt.Errorf("not an integer (%T)", v)
}

// legacyText reads text of a text column, or of an integer one (role ids).
func legacyText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case int64, int32, int16, int8, int:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("not text (%T)", v)
}

// legacyBool reads a flag stored as boolean, integer or text.
func legacyBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case int64, int32, int16, int8, int:
		switch fmt.Sprint(x) {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "t", "true", "1", "y", "yes", "on":
			return true, nil
		case "f", "false", "0", "n", "no", "off":
			return false, nil
		}
	}
	return false, fmt.Errorf("not a boolean (%v)", v)
}
