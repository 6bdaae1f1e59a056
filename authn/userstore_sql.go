package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/portero/portero/storage"
)

// The user store is one implementation over two thin adapters: the SQL is
// the same on both backends except for the few fragments in sqlDialect, and
// the adapters (userstore_postgres.go, userstore_sqlite.go) hide the two
// drivers' APIs. Keeping one body of code is what keeps the behaviour the
// same, which the shared contract suite then checks.

// errNoRows is what both adapters turn their driver's "no rows" into.
var errNoRows = errors.New("no rows")

type dbRow interface {
	Scan(dest ...any) error
}

type dbRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type dbQuerier interface {
	exec(ctx context.Context, sql string, args ...any) (rowsAffected int64, err error)
	queryRow(ctx context.Context, sql string, args ...any) dbRow
	query(ctx context.Context, sql string, args ...any) (dbRows, error)
}

type dbConn interface {
	dbQuerier
	inTx(ctx context.Context, fn func(q dbQuerier) error) error
}

// sqlDialect holds the fragments that differ between the backends; each is
// a fmt format taking the column or placeholder it applies to.
type sqlDialect struct {
	uuidText      string // a uuid column read as text
	jsonText      string // a JSON column read as text
	jsonParam     string // a JSON text placeholder written to a JSON column
	emailEquals   string // (column, placeholder): case-insensitive e-mail match
	contains      string // (haystack, needle): substring test
	binaryCollate string // appended to text expressions ordered in byte order
	// lazyCommit, as the FROM clause of an UPDATE or an INSERT … SELECT,
	// lets the statement's commit return before the WAL is on disk (""
	// where there is no such wait worth avoiding).
	lazyCommit string
}

// queries are the store's fixed statements, built once per dialect.
type queries struct {
	userCols, userFrom                 string
	userByID, userByEmail, userByLegID string
	sortKey                            string
	emailTaken, legacyTaken, idTaken   string
	roleCols, roleByID, roleByName     string
	listRoles, createRole, updateRole  string
	sessionCols                        string
}

func buildQueries(d sqlDialect) queries {
	var q queries
	q.userCols = fmt.Sprintf(`%s, u.email, u.hashed_password, u.first_name, u.last_name,
 u.role_id, r.name, %s, u.is_active, u.is_superuser, u.is_verified, u.last_login,
 u.login_attempts, u.locked_until, u.legacy_id, u.created_at, u.updated_at, r.mfa_required`,
		fmt.Sprintf(d.uuidText, "u.id"), fmt.Sprintf(d.jsonText, "r.permissions"))
	q.userFrom = " FROM users u JOIN roles r ON r.id = u.role_id"
	sel := "SELECT " + q.userCols + q.userFrom
	q.userByID = sel + " WHERE u.id = $1"
	q.userByEmail = sel + " WHERE " + fmt.Sprintf(d.emailEquals, "u.email", "$1")
	q.userByLegID = sel + " WHERE u.legacy_id = $1"
	q.sortKey = "lower(u.email)" + d.binaryCollate

	q.emailTaken = "SELECT count(*) FROM users u WHERE " + fmt.Sprintf(d.emailEquals, "u.email", "$1") + " AND u.id <> $2"
	q.legacyTaken = "SELECT count(*) FROM users u WHERE u.legacy_id = $1 AND u.id <> $2"
	q.idTaken = "SELECT count(*) FROM users u WHERE u.id = $1"

	q.roleCols = "r.id, r.name, " + fmt.Sprintf(d.jsonText, "r.permissions") + ", r.mfa_required"
	q.roleByID = "SELECT " + q.roleCols + " FROM roles r WHERE r.id = $1"
	q.roleByName = "SELECT " + q.roleCols + " FROM roles r WHERE r.name = $1"
	q.listRoles = "SELECT " + q.roleCols + " FROM roles r ORDER BY r.id"
	q.createRole = "INSERT INTO roles (name, permissions, created_at, mfa_required) VALUES ($1, " +
		fmt.Sprintf(d.jsonParam, "$2") + ", $3, $4) RETURNING id"
	q.updateRole = "UPDATE roles SET name = $2, permissions = " + fmt.Sprintf(d.jsonParam, "$3") + ", mfa_required = $4 WHERE id = $1"

	q.sessionCols = "s.id, " + fmt.Sprintf(d.uuidText, "s.user_id") +
		", s.ip_address, s.user_agent, s.created_at, s.last_activity, s.expires_at, s.ended_at, s.end_reason"
	return q
}

type sqlUserStore struct {
	db  dbConn
	d   sqlDialect
	q   queries
	now func() time.Time
}

var _ UserStore = (*sqlUserStore)(nil)

func newSQLUserStore(db dbConn, d sqlDialect, now func() time.Time) *sqlUserStore {
	return &sqlUserStore{db: db, d: d, q: buildQueries(d), now: now}
}

// args collects statement arguments and hands out their placeholders, which
// both drivers bind by number.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// nullIfEmpty stores "" as NULL.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func encodePermissions(p []string) (string, error) {
	if p == nil {
		p = []string{}
	}
	b, err := json.Marshal(p)
	return string(b), err
}

func decodePermissions(s string) ([]string, error) {
	p := []string{}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("permissions column: %w", err)
	}
	if p == nil { // the JSON null
		p = []string{}
	}
	return p, nil
}

// scanUser reads the columns of q.userCols, then extra.
func scanUser(row dbRow, extra ...any) (User, error) {
	var (
		u                      User
		perms                  string
		lastLogin, lockedUntil *time.Time
		legacyID               *int64
	)
	dest := []any{&u.ID, &u.Email, &u.HashedPassword, &u.FirstName, &u.LastName,
		&u.RoleID, &u.Role, &perms, &u.IsActive, &u.IsSuperuser, &u.IsVerified, &lastLogin,
		&u.LoginAttempts, &lockedUntil, &legacyID, &u.CreatedAt, &u.UpdatedAt, &u.RoleMFARequired}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return User{}, err
	}
	p, err := decodePermissions(perms)
	if err != nil {
		return User{}, err
	}
	u.Permissions = p
	u.LastLogin = utcPtr(lastLogin)
	u.LockedUntil = utcPtr(lockedUntil)
	u.LegacyID = legacyID
	u.CreatedAt = u.CreatedAt.UTC()
	u.UpdatedAt = u.UpdatedAt.UTC()
	return u, nil
}

// getUser runs a single-user query; a missing row is ErrUserNotFound, with
// no database text in it.
func (s *sqlUserStore) getUser(ctx context.Context, q dbQuerier, op, query string, arg any) (User, error) {
	u, err := scanUser(q.queryRow(ctx, query, arg))
	switch {
	case errors.Is(err, errNoRows):
		return User{}, ErrUserNotFound
	case err != nil:
		return User{}, fmt.Errorf("authn: %s: %w", op, err)
	}
	return u, nil
}

func (s *sqlUserStore) UserByID(ctx context.Context, id string) (User, error) {
	id, ok := canonicalUUID(id)
	if !ok {
		return User{}, ErrUserNotFound
	}
	return s.getUser(ctx, s.db, "user by id", s.q.userByID, id)
}

func (s *sqlUserStore) UserByEmail(ctx context.Context, email string) (User, error) {
	email = emailAsStored(email)
	if email == "" {
		return User{}, ErrUserNotFound
	}
	return s.getUser(ctx, s.db, "user by e-mail", s.q.userByEmail, email)
}

func (s *sqlUserStore) UserByLegacyID(ctx context.Context, legacyID int64) (User, error) {
	return s.getUser(ctx, s.db, "user by legacy id", s.q.userByLegID, legacyID)
}

func (s *sqlUserStore) CreateUser(ctx context.Context, u User) (User, error) {
	email := emailAsStored(u.Email)
	if email == "" {
		return User{}, fmt.Errorf("%w: empty e-mail", ErrInvalidUser)
	}
	id := uuid.NewString()
	if u.ID != "" {
		var ok bool
		if id, ok = canonicalUUID(u.ID); !ok {
			return User{}, fmt.Errorf("%w: id is not a UUID", ErrInvalidUser)
		}
	}
	if u.LoginAttempts < 0 {
		return User{}, fmt.Errorf("%w: negative login attempts", ErrInvalidUser)
	}
	now := dbTime(s.now())
	created := now
	if !u.CreatedAt.IsZero() {
		created = dbTime(u.CreatedAt)
	}

	var a args
	cols := []string{"id", "email", "hashed_password", "first_name", "last_name",
		"is_active", "is_superuser", "is_verified", "last_login", "login_attempts",
		"locked_until", "legacy_id", "created_at", "updated_at"}
	vals := []string{a.add(id), a.add(email), a.add(u.HashedPassword), a.add(u.FirstName), a.add(u.LastName),
		a.add(u.IsActive), a.add(u.IsSuperuser), a.add(u.IsVerified), a.add(dbTimePtr(u.LastLogin)), a.add(u.LoginAttempts),
		a.add(dbTimePtr(u.LockedUntil)), a.add(u.LegacyID), a.add(created), a.add(now)}
	if u.RoleID != 0 { // otherwise the column default: the least privileged role
		cols = append(cols, "role_id")
		vals = append(vals, a.add(u.RoleID))
	}
	insert := "INSERT INTO users (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(vals, ", ") + ")"

	var out User
	err := s.db.inTx(ctx, func(q dbQuerier) error {
		if _, err := q.exec(ctx, insert, a...); err != nil {
			return err
		}
		var err error
		out, err = s.getUser(ctx, q, "create user", s.q.userByID, id)
		return err
	})
	if err != nil {
		return User{}, s.userWriteError(ctx, "create user", err, id, email, u.LegacyID, true)
	}
	return out, nil
}

func (s *sqlUserStore) UpdateUser(ctx context.Context, id string, upd UserUpdate) (User, error) {
	id, ok := canonicalUUID(id)
	if !ok {
		return User{}, ErrUserNotFound
	}
	if upd.LegacyID != nil && upd.ClearLegacyID {
		return User{}, fmt.Errorf("%w: both LegacyID and ClearLegacyID set", ErrInvalidUser)
	}
	if upd.empty() {
		return s.UserByID(ctx, id)
	}
	var (
		a     args
		sets  []string
		email string
	)
	set := func(col string, v any) { sets = append(sets, col+" = "+a.add(v)) }
	if upd.Email != nil {
		if email = emailAsStored(*upd.Email); email == "" {
			return User{}, fmt.Errorf("%w: empty e-mail", ErrInvalidUser)
		}
		set("email", email)
	}
	if upd.FirstName != nil {
		set("first_name", *upd.FirstName)
	}
	if upd.LastName != nil {
		set("last_name", *upd.LastName)
	}
	if upd.RoleID != nil {
		set("role_id", *upd.RoleID)
	}
	if upd.IsActive != nil {
		set("is_active", *upd.IsActive)
	}
	if upd.IsSuperuser != nil {
		set("is_superuser", *upd.IsSuperuser)
	}
	if upd.IsVerified != nil {
		set("is_verified", *upd.IsVerified)
	}
	if upd.LegacyID != nil {
		set("legacy_id", *upd.LegacyID)
	}
	if upd.ClearLegacyID {
		sets = append(sets, "legacy_id = NULL")
	}
	set("updated_at", dbTime(s.now()))
	update := "UPDATE users SET " + strings.Join(sets, ", ") + " WHERE id = " + a.add(id)

	var out User
	err := s.db.inTx(ctx, func(q dbQuerier) error {
		n, err := q.exec(ctx, update, a...)
		if err != nil {
			return err
		}
		if n == 0 {
			return errNoRows
		}
		out, err = s.getUser(ctx, q, "update user", s.q.userByID, id)
		return err
	})
	if err != nil {
		return User{}, s.userWriteError(ctx, "update user", err, id, email, upd.LegacyID, false)
	}
	return out, nil
}

// userWriteError translates the error of a user insert or update. Both
// backends report that some unique constraint failed, but SQLite does not
// say which in a structured way, so the store asks the database which of the
// values is taken (after the failed transaction is gone). A concurrent
// change between the two can at worst leave the generic error.
func (s *sqlUserStore) userWriteError(ctx context.Context, op string, err error, id, email string, legacyID *int64, creating bool) error {
	switch {
	case errors.Is(err, ErrUserNotFound), errors.Is(err, errNoRows):
		return ErrUserNotFound
	case storage.IsForeignKeyViolation(err):
		// role_id is the users table's only foreign key.
		return ErrUnknownRole
	case !storage.IsUniqueViolation(err):
		return fmt.Errorf("authn: %s: %w", op, err)
	}
	taken := func(query string, arg ...any) bool {
		var n int
		return s.db.queryRow(ctx, query, arg...).Scan(&n) == nil && n > 0
	}
	switch {
	case email != "" && taken(s.q.emailTaken, email, id):
		return ErrEmailTaken
	case legacyID != nil && taken(s.q.legacyTaken, *legacyID, id):
		return ErrLegacyIDTaken
	case creating && taken(s.q.idTaken, id):
		return ErrUserIDTaken
	}
	return fmt.Errorf("authn: %s: %w", op, err)
}

// execUser runs a single-row update of user id; no row is ErrUserNotFound.
func (s *sqlUserStore) execUser(ctx context.Context, op, id, query string, arg ...any) error {
	id, ok := canonicalUUID(id)
	if !ok {
		return ErrUserNotFound
	}
	n, err := s.db.exec(ctx, query, append([]any{id}, arg...)...)
	switch {
	case err != nil:
		return fmt.Errorf("authn: %s: %w", op, err)
	case n == 0:
		return ErrUserNotFound
	}
	return nil
}

func (s *sqlUserStore) SetPassword(ctx context.Context, id, hash string) error {
	return s.execUser(ctx, "set password", id,
		"UPDATE users SET hashed_password = $2, updated_at = $3 WHERE id = $1", hash, dbTime(s.now()))
}

func (s *sqlUserStore) RecordLoginSuccess(ctx context.Context, id string, at time.Time) error {
	// Every login writes here; waiting for this commit to reach the disk
	// left hashing workers idle while their clients waited for fsync. The
	// columns mirror the lockout counters, which are the authority, and
	// last_login is informational, so a commit a database crash could lose
	// is acceptable; the audit row of the login stays durable.
	return s.execUser(ctx, "record login", id,
		"UPDATE users SET last_login = $2, login_attempts = 0, locked_until = NULL"+s.d.lazyCommit+" WHERE id = $1", dbTime(at))
}

func (s *sqlUserStore) UpgradeHash(ctx context.Context, id, verified, upgraded string) (bool, error) {
	id, ok := canonicalUUID(id)
	if !ok || verified == "" || upgraded == "" {
		return false, nil
	}
	n, err := s.db.exec(ctx, "UPDATE users SET hashed_password = $3 WHERE id = $1 AND hashed_password = $2", id, verified, upgraded)
	if err != nil {
		return false, fmt.Errorf("authn: upgrade hash: %w", err)
	}
	return n > 0, nil
}

func (s *sqlUserStore) RecordLoginFailure(ctx context.Context, id string, attempts int, lockedUntil *time.Time) error {
	if attempts < 0 {
		return fmt.Errorf("%w: negative login attempts", ErrInvalidUser)
	}
	// Only a known user's failed login writes here, so its cost is what
	// tells a wrong password from an unknown e-mail by timing: waiting for
	// the commit to reach the disk took 1.2 ms more on PostgreSQL. The row
	// mirrors the lockout counters, which are the authority, so a commit a
	// crash could lose is acceptable.
	return s.execUser(ctx, "record login failure", id,
		"UPDATE users SET login_attempts = $2, locked_until = $3"+s.d.lazyCommit+" WHERE id = $1", attempts, dbTimePtr(lockedUntil))
}

func (s *sqlUserStore) Unlock(ctx context.Context, id string) error {
	return s.execUser(ctx, "unlock user", id,
		"UPDATE users SET login_attempts = 0, locked_until = NULL, updated_at = $2 WHERE id = $1", dbTime(s.now()))
}

func (s *sqlUserStore) DeleteUser(ctx context.Context, id string) error {
	return s.execUser(ctx, "delete user", id, "DELETE FROM users WHERE id = $1")
}

func (s *sqlUserStore) ListUsers(ctx context.Context, f UserFilter) ([]User, string, error) {
	limit := listLimit(f.Limit)
	var (
		a     args
		where []string
	)
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "("+s.q.sortKey+", u.id) > ("+a.add(c.Key)+", "+a.add(c.ID)+")")
	}
	if q := strings.ToLower(strings.TrimSpace(f.Query)); q != "" {
		p := a.add(q)
		where = append(where, "("+fmt.Sprintf(s.d.contains, "lower(u.email)", p)+
			" OR "+fmt.Sprintf(s.d.contains, "lower(u.first_name)", p)+
			" OR "+fmt.Sprintf(s.d.contains, "lower(u.last_name)", p)+")")
	}
	if f.RoleID != nil {
		where = append(where, "u.role_id = "+a.add(*f.RoleID))
	}
	if f.Active != nil {
		where = append(where, "u.is_active = "+a.add(*f.Active))
	}
	query := "SELECT " + s.q.userCols + ", " + s.q.sortKey + s.q.userFrom
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	// One row more than the page tells whether there is a next page.
	query += " ORDER BY " + s.q.sortKey + ", u.id LIMIT " + a.add(limit+1)

	rows, err := s.db.query(ctx, query, a...)
	if err != nil {
		return nil, "", fmt.Errorf("authn: list users: %w", err)
	}
	defer rows.Close()
	users := make([]User, 0, min(limit, 64))
	var lastKey string
	for rows.Next() {
		if len(users) == limit {
			return users, encodeCursor(cursor{Key: lastKey, ID: users[len(users)-1].ID}), closeRows(rows, "list users")
		}
		u, err := scanUser(rows, &lastKey)
		if err != nil {
			return nil, "", fmt.Errorf("authn: list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("authn: list users: %w", err)
	}
	return users, "", nil
}

// closeRows closes rows read only partly and reports a read error.
func closeRows(rows dbRows, op string) error {
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("authn: %s: %w", op, err)
	}
	return nil
}

func (s *sqlUserStore) listUsers(ctx context.Context, op, query string, arg ...any) ([]User, error) {
	rows, err := s.db.query(ctx, query, arg...)
	if err != nil {
		return nil, fmt.Errorf("authn: %s: %w", op, err)
	}
	defer rows.Close()
	users := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("authn: %s: %w", op, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("authn: %s: %w", op, err)
	}
	return users, nil
}

func (s *sqlUserStore) count(ctx context.Context, op, query string, arg ...any) (int, error) {
	var n int
	if err := s.db.queryRow(ctx, query, arg...).Scan(&n); err != nil {
		return 0, fmt.Errorf("authn: %s: %w", op, err)
	}
	return n, nil
}

func (s *sqlUserStore) CountUsers(ctx context.Context) (int, error) {
	return s.count(ctx, "count users", "SELECT count(*) FROM users")
}

func (s *sqlUserStore) CountActiveUsers(ctx context.Context, since time.Time) (int, error) {
	return s.count(ctx, "count active users", "SELECT count(*) FROM users WHERE last_login >= $1", dbTime(since))
}

func (s *sqlUserStore) LockedUsers(ctx context.Context, now time.Time) ([]User, error) {
	return s.listUsers(ctx, "locked users", "SELECT "+s.q.userCols+s.q.userFrom+
		" WHERE u.locked_until > $1 ORDER BY u.locked_until DESC, u.id LIMIT "+strconv.Itoa(MaxListLimit), dbTime(now))
}

func (s *sqlUserStore) CountLockedUsers(ctx context.Context, now time.Time) (int, error) {
	return s.count(ctx, "count locked users", "SELECT count(*) FROM users WHERE locked_until > $1", dbTime(now))
}

// Roles.

func scanRole(row dbRow) (Role, error) {
	var (
		r     Role
		perms string
	)
	if err := row.Scan(&r.ID, &r.Name, &perms, &r.MFARequired); err != nil {
		return Role{}, err
	}
	p, err := decodePermissions(perms)
	if err != nil {
		return Role{}, err
	}
	r.Permissions = p
	return r, nil
}

func (s *sqlUserStore) getRole(ctx context.Context, op, query string, arg any) (Role, error) {
	r, err := scanRole(s.db.queryRow(ctx, query, arg))
	switch {
	case errors.Is(err, errNoRows):
		return Role{}, ErrRoleNotFound
	case err != nil:
		return Role{}, fmt.Errorf("authn: %s: %w", op, err)
	}
	return r, nil
}

func (s *sqlUserStore) RoleByID(ctx context.Context, id int) (Role, error) {
	return s.getRole(ctx, "role by id", s.q.roleByID, id)
}

func (s *sqlUserStore) RoleByName(ctx context.Context, name string) (Role, error) {
	return s.getRole(ctx, "role by name", s.q.roleByName, name)
}

func (s *sqlUserStore) ListRoles(ctx context.Context) ([]Role, error) {
	rows, err := s.db.query(ctx, s.q.listRoles)
	if err != nil {
		return nil, fmt.Errorf("authn: list roles: %w", err)
	}
	defer rows.Close()
	roles := []Role{}
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, fmt.Errorf("authn: list roles: %w", err)
		}
		roles = append(roles, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("authn: list roles: %w", err)
	}
	return roles, nil
}

// checkRole validates and normalises a role for writing.
func checkRole(r Role) (Role, string, error) {
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" {
		return Role{}, "", fmt.Errorf("%w: empty name", ErrInvalidRole)
	}
	if r.Permissions == nil {
		r.Permissions = []string{}
	}
	for _, p := range r.Permissions {
		if strings.TrimSpace(p) == "" {
			return Role{}, "", fmt.Errorf("%w: empty permission", ErrInvalidRole)
		}
	}
	perms, err := encodePermissions(r.Permissions)
	if err != nil {
		return Role{}, "", fmt.Errorf("%w: %w", ErrInvalidRole, err)
	}
	return r, perms, nil
}

func (s *sqlUserStore) CreateRole(ctx context.Context, r Role) (Role, error) {
	if r.ID != 0 {
		// An explicit id would leave PostgreSQL's identity sequence behind
		// it, and the next generated id would collide.
		return Role{}, fmt.Errorf("%w: id is assigned by the store", ErrInvalidRole)
	}
	r, perms, err := checkRole(r)
	if err != nil {
		return Role{}, err
	}
	err = s.db.queryRow(ctx, s.q.createRole, r.Name, perms, dbTime(s.now()), r.MFARequired).Scan(&r.ID)
	switch {
	case storage.IsUniqueViolation(err):
		return Role{}, ErrRoleNameTaken
	case err != nil:
		return Role{}, fmt.Errorf("authn: create role: %w", err)
	}
	r.Permissions = append([]string{}, r.Permissions...)
	return r, nil
}

func (s *sqlUserStore) UpdateRole(ctx context.Context, r Role) (Role, error) {
	r, perms, err := checkRole(r)
	if err != nil {
		return Role{}, err
	}
	n, err := s.db.exec(ctx, s.q.updateRole, r.ID, r.Name, perms, r.MFARequired)
	switch {
	case storage.IsUniqueViolation(err):
		return Role{}, ErrRoleNameTaken
	case err != nil:
		return Role{}, fmt.Errorf("authn: update role: %w", err)
	case n == 0:
		return Role{}, ErrRoleNotFound
	}
	r.Permissions = append([]string{}, r.Permissions...)
	return r, nil
}

// Session history.

func (s *sqlUserStore) RecordSessionStart(ctx context.Context, rec SessionRecord) error {
	if rec.ID == "" {
		return fmt.Errorf("%w: empty id", ErrInvalidSessionRecord)
	}
	if rec.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: no expiry", ErrInvalidSessionRecord)
	}
	userID, ok := canonicalUUID(rec.UserID)
	if !ok {
		return ErrUserNotFound
	}
	created := rec.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	last := rec.LastActivity
	if last.IsZero() {
		last = created
	}
	// History, written on every login: its commit need not wait for the
	// disk (see RecordLoginSuccess). SQLite wants a WHERE before ON CONFLICT
	// in INSERT … SELECT.
	_, err := s.db.exec(ctx, `INSERT INTO user_sessions
 (id, user_id, ip_address, user_agent, created_at, last_activity, expires_at, ended_at, end_reason)
 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9`+s.d.lazyCommit+` WHERE true ON CONFLICT (id) DO NOTHING`,
		rec.ID, userID, nullIfEmpty(rec.IP), nullIfEmpty(rec.UserAgent), dbTime(created), dbTime(last),
		dbTime(rec.ExpiresAt), dbTimePtr(rec.EndedAt), nullIfEmpty(rec.EndReason))
	switch {
	case storage.IsForeignKeyViolation(err):
		return ErrUserNotFound
	case err != nil:
		return fmt.Errorf("authn: record session start: %w", err)
	}
	return nil
}

func (s *sqlUserStore) RecordSessionEnd(ctx context.Context, id string, at time.Time, reason string) (time.Time, error) {
	started, err := s.endSessions(ctx,
		"UPDATE user_sessions SET ended_at = $2, end_reason = $3 WHERE id = $1 AND ended_at IS NULL RETURNING created_at",
		id, dbTime(at), nullIfEmpty(reason))
	if err != nil || len(started) == 0 {
		return time.Time{}, err
	}
	return started[0], nil
}

func (s *sqlUserStore) RecordSessionEndForUser(ctx context.Context, userID string, at time.Time, reason, exceptID string) ([]time.Time, error) {
	userID, ok := canonicalUUID(userID)
	if !ok {
		return nil, nil // names no user, so no sessions
	}
	return s.endSessions(ctx,
		"UPDATE user_sessions SET ended_at = $2, end_reason = $3 WHERE user_id = $1 AND ended_at IS NULL AND id <> $4 RETURNING created_at",
		userID, dbTime(at), nullIfEmpty(reason), exceptID)
}

// endSessions runs an UPDATE … RETURNING created_at and collects the start
// times of the sessions it ended, from which the caller learns how long
// each one lasted.
func (s *sqlUserStore) endSessions(ctx context.Context, query string, args ...any) ([]time.Time, error) {
	rows, err := s.db.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("authn: record session end: %w", err)
	}
	defer rows.Close()
	var started []time.Time
	for rows.Next() {
		var t time.Time
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("authn: record session end: %w", err)
		}
		started = append(started, t.UTC())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("authn: record session end: %w", err)
	}
	return started, nil
}

func (s *sqlUserStore) SessionHistory(ctx context.Context, userID string, limit int) ([]SessionRecord, error) {
	userID, ok := canonicalUUID(userID)
	if !ok {
		return []SessionRecord{}, nil
	}
	rows, err := s.db.query(ctx, "SELECT "+s.q.sessionCols+" FROM user_sessions s WHERE s.user_id = $1"+
		" ORDER BY s.created_at DESC, s.id"+s.d.binaryCollate+" DESC LIMIT $2", userID, listLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("authn: session history: %w", err)
	}
	defer rows.Close()
	recs := []SessionRecord{}
	for rows.Next() {
		var (
			r                    SessionRecord
			ip, ua, reason       *string
			endedAt              *time.Time
			created, last, until time.Time
		)
		if err := rows.Scan(&r.ID, &r.UserID, &ip, &ua, &created, &last, &until, &endedAt, &reason); err != nil {
			return nil, fmt.Errorf("authn: session history: %w", err)
		}
		r.IP, r.UserAgent, r.EndReason = deref(ip), deref(ua), deref(reason)
		r.CreatedAt, r.LastActivity, r.ExpiresAt = created.UTC(), last.UTC(), until.UTC()
		r.EndedAt = utcPtr(endedAt)
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("authn: session history: %w", err)
	}
	return recs, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
