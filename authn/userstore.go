package authn

import (
	"context"
	"fmt"
	"time"

	"github.com/portero/portero/storage"
)

// UserStore keeps users, roles and session history in the relational
// database. Login, registration, the admin API and the CLI all use it.
// Implementations: one per storage dialect (PostgreSQL, SQLite), made by
// NewUserStore; both pass userstoretest.Run.
//
// Ids are UUIDs in any form uuid.Parse accepts and come back lower-case
// canonical. A malformed id names no user: lookups and writes answer
// ErrUserNotFound, listings answer nothing. Times come back in UTC,
// truncated to the microsecond.
type UserStore interface {
	// CreateUser stores u and returns it as stored (Role and Permissions
	// filled in). The store generates ID when empty, uses role 2 ("user")
	// when RoleID is 0, and sets UpdatedAt, and CreatedAt when zero, from its
	// clock. Role and Permissions of u are ignored. Errors: ErrEmailTaken,
	// ErrLegacyIDTaken, ErrUserIDTaken, ErrUnknownRole, ErrInvalidUser.
	CreateUser(ctx context.Context, u User) (User, error)

	// UserByID, UserByEmail and UserByLegacyID return one user or
	// ErrUserNotFound. UserByEmail ignores case and surrounding spaces.
	UserByID(ctx context.Context, id string) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	UserByLegacyID(ctx context.Context, legacyID int64) (User, error)

	// UpdateUser changes the fields set in upd, bumps UpdatedAt, and returns
	// the user as stored. An empty update returns the user unchanged.
	// Errors: ErrUserNotFound, ErrEmailTaken, ErrLegacyIDTaken,
	// ErrUnknownRole, ErrInvalidUser.
	UpdateUser(ctx context.Context, id string, upd UserUpdate) (User, error)

	// SetPassword replaces the password hash and bumps UpdatedAt.
	SetPassword(ctx context.Context, id, hash string) error

	// RecordLoginSuccess sets LastLogin to at and clears the failure
	// counters. UpdatedAt is left alone: it tracks changes people make to
	// the account, not logins.
	RecordLoginSuccess(ctx context.Context, id string, at time.Time) error

	// UpgradeHash replaces the password hash with upgraded only while it is
	// still verified (the hash a login just checked), and reports whether it
	// did: a password changed or reset meanwhile is never overwritten with
	// a hash of the old one. A missing user is no error (false). UpdatedAt
	// is left alone, as for a login.
	UpgradeHash(ctx context.Context, id, verified, upgraded string) (bool, error)

	// RecordLoginFailure mirrors the lockout counters (kept authoritatively
	// elsewhere) into the user row for admins and statistics.
	RecordLoginFailure(ctx context.Context, id string, attempts int, lockedUntil *time.Time) error

	// Unlock clears the failure counters and the lock, and bumps UpdatedAt.
	Unlock(ctx context.Context, id string) error

	// DeleteUser removes the user and their session history.
	DeleteUser(ctx context.Context, id string) error

	// ListUsers returns one page of users ordered by e-mail (ignoring ASCII
	// case, byte order otherwise), then id, and the cursor of the next page
	// ("" after the last). Paging is by key, not offset: users added or
	// removed meanwhile never make a page repeat or skip anyone else.
	ListUsers(ctx context.Context, f UserFilter) (users []User, next string, err error)

	// CountUsers counts every user.
	CountUsers(ctx context.Context) (int, error)

	// CountActiveUsers counts users whose last login is at or after since.
	CountActiveUsers(ctx context.Context, since time.Time) (int, error)

	// LockedUsers returns users locked at now (LockedUntil after now), the
	// latest lock expiry first, at most MaxListLimit of them; CountLockedUsers
	// counts them all.
	LockedUsers(ctx context.Context, now time.Time) ([]User, error)
	CountLockedUsers(ctx context.Context, now time.Time) (int, error)

	// RoleByID and RoleByName return a role or ErrRoleNotFound. Names are
	// compared exactly.
	RoleByID(ctx context.Context, id int) (Role, error)
	RoleByName(ctx context.Context, name string) (Role, error)
	// ListRoles returns every role ordered by id.
	ListRoles(ctx context.Context) ([]Role, error)
	// CreateRole stores a new role (r.ID must be 0; the store assigns it).
	// Errors: ErrRoleNameTaken, ErrInvalidRole.
	CreateRole(ctx context.Context, r Role) (Role, error)
	// UpdateRole replaces the name and permissions of role r.ID.
	// Errors: ErrRoleNotFound, ErrRoleNameTaken, ErrInvalidRole.
	UpdateRole(ctx context.Context, r Role) (Role, error)

	// RecordSessionStart adds a session history row. CreatedAt defaults to
	// the store's clock and LastActivity to CreatedAt. Recording the same
	// session id again is a no-op, so a retried write is harmless. Errors:
	// ErrUserNotFound, ErrInvalidSessionRecord (no id, no expiry).
	RecordSessionStart(ctx context.Context, s SessionRecord) error

	// RecordSessionEnd marks the session ended at at for reason, unless it
	// has ended already: the first end wins. A session without a history
	// row is not an error: its start may have been lost to a database
	// outage, and ending it must not fail the logout. It returns when the
	// session started, or the zero time if it ended nothing.
	RecordSessionEnd(ctx context.Context, id string, at time.Time, reason string) (time.Time, error)

	// RecordSessionEndForUser ends every open session of the user except
	// exceptID ("" for none) and returns when each one it ended started.
	RecordSessionEndForUser(ctx context.Context, userID string, at time.Time, reason, exceptID string) ([]time.Time, error)

	// SessionHistory returns the user's sessions, newest first, at most
	// limit of them (DefaultListLimit when <= 0, at most MaxListLimit).
	SessionHistory(ctx context.Context, userID string, limit int) ([]SessionRecord, error)
}

// UserStoreOption changes an optional setting of NewUserStore.
type UserStoreOption func(*userStoreOptions)

type userStoreOptions struct {
	now func() time.Time
}

// WithUserStoreClock sets the clock that stamps created_at and updated_at
// (default time.Now).
func WithUserStoreClock(now func() time.Time) UserStoreOption {
	return func(o *userStoreOptions) {
		if now != nil {
			o.now = now
		}
	}
}

// NewUserStore returns the user store for db's dialect. db must be migrated
// (storage.DB.Migrate) and stays owned by the caller.
func NewUserStore(db *storage.DB, opts ...UserStoreOption) UserStore {
	o := userStoreOptions{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	switch db.Dialect() {
	case storage.Postgres:
		return newSQLUserStore(pgConn{pool: db.Pool()}, postgresDialect, o.now)
	case storage.SQLite:
		return newSQLUserStore(sqliteConn{db: db.SQL()}, sqliteDialect, o.now)
	default:
		// storage.Open makes only the two; anything else is a programming error.
		panic(fmt.Sprintf("authn: NewUserStore: unsupported dialect %v", db.Dialect()))
	}
}
