package authn

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// User is an account as the user store keeps it. Role and Permissions are
// read from the user's role (joined), never written through a User.
type User struct {
	ID             string // UUID, lower-case canonical form
	Email          string // as given (surrounding spaces trimmed); unique case-insensitively
	HashedPassword string // argon2id PHC string, or a legacy bcrypt hash
	FirstName      string
	LastName       string
	RoleID         int
	Role           string   // the role's name
	Permissions    []string // the role's permissions; never nil
	IsActive       bool
	IsSuperuser    bool
	IsVerified     bool
	LastLogin      *time.Time
	LoginAttempts  int
	LockedUntil    *time.Time
	LegacyID       *int64 // the legacy app's integer user id, if any
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// RoleMFARequired: the user's role requires a second factor (read from
	// the role, like Role and Permissions).
	RoleMFARequired bool
}

// UserUpdate names the fields UpdateUser changes: nil fields stay as they
// are. LegacyID cannot say "remove it" through a nil pointer, so ClearLegacyID
// does that (setting both is an error).
type UserUpdate struct {
	Email         *string
	FirstName     *string
	LastName      *string
	RoleID        *int
	IsActive      *bool
	IsSuperuser   *bool
	IsVerified    *bool
	LegacyID      *int64
	ClearLegacyID bool
}

// empty reports whether upd changes nothing.
func (upd UserUpdate) empty() bool {
	return upd.Email == nil && upd.FirstName == nil && upd.LastName == nil && upd.RoleID == nil &&
		upd.IsActive == nil && upd.IsSuperuser == nil && upd.IsVerified == nil &&
		upd.LegacyID == nil && !upd.ClearLegacyID
}

// UserFilter selects a page of users for ListUsers.
type UserFilter struct {
	// Query keeps users whose e-mail, first name or last name contains it,
	// ignoring case and surrounding spaces. Empty keeps everyone. It is a
	// plain substring: % and _ have no special meaning.
	Query string
	// RoleID and Active, when set, keep users with that role or state.
	RoleID *int
	Active *bool
	// Limit is the page size: DefaultListLimit when <= 0, at most MaxListLimit.
	Limit int
	// Cursor is the next value of the previous page; empty for the first.
	// It is opaque: a cursor that was not made by ListUsers is refused with
	// ErrInvalidCursor.
	Cursor string
}

// Page sizes of ListUsers and SessionHistory.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// listLimit applies the default and the cap to a requested page size.
func listLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultListLimit
	case n > MaxListLimit:
		return MaxListLimit
	default:
		return n
	}
}

// Role is a named set of permissions; every user has exactly one. The
// schema seeds 1 = "admin" (permission "*") and 2 = "user" (none), and a
// user created without a role gets 2.
type Role struct {
	ID          int
	Name        string
	Permissions []string // never nil when read from the store
	// MFARequired makes the role's users set up a second factor before
	// their first session.
	MFARequired bool
}

// SessionRecord is one row of session history (user_sessions): what an
// admin or the user sees about past and present sessions. ID is the public
// session id, never the token or its hash. Empty IP, UserAgent and EndReason
// are stored as NULL and read back as "".
type SessionRecord struct {
	ID           string
	UserID       string
	IP           string
	UserAgent    string
	CreatedAt    time.Time
	LastActivity time.Time
	ExpiresAt    time.Time
	EndedAt      *time.Time
	EndReason    string
}

// emailAsStored is the form in which the user store keeps and looks up an
// e-mail address: surrounding spaces trimmed, ASCII letters left as typed,
// other letters lower-cased.
//
// Why only the non-ASCII letters: uniqueness and lookups ignore case in the
// database, but SQLite's NOCASE and lower() fold ASCII only while
// PostgreSQL's lower() folds whatever its locale knows. Lower-casing the
// non-ASCII letters here leaves the databases only ASCII case to fold, which
// they do identically, so "ÉLODIE@x" and "élodie@x" are the same account on
// both, and an address typed in ASCII is kept exactly as its owner typed it.
func emailAsStored(email string) string {
	email = strings.TrimSpace(email)
	for i := 0; i < len(email); i++ {
		if email[i] >= utf8.RuneSelf {
			return strings.Map(lowerNonASCII, email)
		}
	}
	return email
}

func lowerNonASCII(r rune) rune {
	if r < utf8.RuneSelf {
		return r
	}
	return unicode.ToLower(r)
}

// canonicalUUID parses id in any form uuid.Parse accepts and returns its
// lower-case canonical form; ok is false for anything else.
func canonicalUUID(id string) (string, bool) {
	if len(id) > 64 { // longest accepted form is 45 bytes; skip parsing junk
		return "", false
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// dbTime is the form every time takes on its way into the database: UTC,
// truncated to the microsecond PostgreSQL keeps, so that both backends give
// back exactly the value they were given.
func dbTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// dbTimePtr is dbTime for nullable columns.
func dbTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := dbTime(*t)
	return &v
}

// utcPtr normalises a time read back from the database.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}
