package authn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/sessions"
)

// RegisterInput is a registration request. RoleID and IsSuperuser are
// honoured only when an admin registers the user.
type RegisterInput struct {
	Email       string
	Password    string
	FirstName   string
	LastName    string
	RoleID      *int
	IsSuperuser *bool
	IsVerified  *bool
	LegacyID    *int64
}

// ErrRegistrationClosed means self-registration is not open.
var ErrRegistrationClosed = errors.New("authn: registration closed")

// Register creates a user. actor is nil for self-registration.
func (s *Service) Register(ctx context.Context, in RegisterInput, actor *Principal, meta ClientMeta) (User, error) {
	admin := actor != nil && actor.IsAdmin()
	switch {
	case admin:
	case s.cfg.Registration == "open":
		// A self-registration never picks its role or privileges.
		in.RoleID, in.IsSuperuser, in.IsVerified, in.LegacyID = nil, nil, nil, nil
	default:
		return User{}, ErrRegistrationClosed
	}
	email := strings.TrimSpace(in.Email)
	if err := s.cfg.Policy.Validate(in.Password, email); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	u := User{Email: email, HashedPassword: hash, FirstName: in.FirstName, LastName: in.LastName, IsActive: true, LegacyID: in.LegacyID}
	if in.RoleID != nil {
		u.RoleID = *in.RoleID
	}
	if in.IsSuperuser != nil {
		u.IsSuperuser = *in.IsSuperuser
	}
	if in.IsVerified != nil {
		u.IsVerified = *in.IsVerified
	}
	created, err := s.users.CreateUser(ctx, u)
	if err != nil {
		if errors.Is(err, ErrEmailTaken) {
			return User{}, ErrUserExists
		}
		return User{}, storeErr(err)
	}
	details := map[string]any{"email": created.Email, "role_id": created.RoleID}
	if actor != nil {
		details["by"] = actor.Session.UserID
	}
	if err := s.record(ctx, meta, audit.ActionRegister, created.ID, details); err != nil {
		return User{}, err
	}
	return created, nil
}

// ErrUserExists is a registration for an e-mail already registered.
var ErrUserExists = errors.New("authn: user already exists")

// storeErr passes the store's meaningful errors on and turns the rest
// (connection failures) into ErrUnavailable.
func storeErr(err error) error {
	for _, known := range []error{ErrUserNotFound, ErrEmailTaken, ErrLegacyIDTaken, ErrUnknownRole, ErrInvalidUser, ErrRoleNotFound, ErrInvalidCursor} {
		if errors.Is(err, known) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Logout ends the caller's session.
func (s *Service) Logout(ctx context.Context, p Principal, meta ClientMeta) error {
	if err := s.sessions.Delete(ctx, p.Session.Key); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	_, _ = s.users.RecordSessionEnd(ctx, p.Session.ID, s.now(), "logout")
	s.metrics.sessionEnds("logout", 1, s.now(), p.Session.CreatedAt)
	return s.record(ctx, meta, audit.ActionLogout, p.Session.UserID, map[string]any{"session_id": p.Session.ID})
}

// actionPasswordChangeFailed: a change-password with a wrong current password.
const actionPasswordChangeFailed = "auth.password.change_failed"

// ErrPasswordMismatch is a change-password whose confirmation differs, or
// whose current password is wrong.
var (
	ErrPasswordMismatch     = errors.New("authn: new password and confirmation differ")
	ErrWrongCurrentPassword = errors.New("authn: current password is wrong")
)

// ChangePassword checks the current password, stores the new one and ends
// every other session of the user.
func (s *Service) ChangePassword(ctx context.Context, p Principal, current, next, confirm string, meta ClientMeta) error {
	if next != confirm {
		return ErrPasswordMismatch
	}
	u, err := s.users.UserByID(ctx, p.Session.UserID)
	if err != nil {
		return storeErr(err)
	}
	att, ok, err := s.verifyCurrentPassword(ctx, u, current, meta)
	if err != nil {
		return err
	}
	if !ok {
		// A guess here counts like a failed login, and a lock it sets is
		// mirrored and audited like one: admins and stats see it.
		if err := s.countFailure(ctx, att, u, meta); err != nil {
			return err
		}
		if err := s.record(ctx, meta, actionPasswordChangeFailed, u.ID, map[string]any{"reason": "bad_password"}); err != nil {
			return err
		}
		return ErrWrongCurrentPassword
	}
	// The right password ends the attempt as a login's does: earlier
	// failures are forgotten, and a lock set meanwhile by a concurrent guess
	// still refuses it.
	if lockedFor, err := att.Succeed(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	} else if lockedFor > 0 {
		return ErrWrongCurrentPassword
	}
	if err := s.cfg.Policy.Validate(next, u.Email); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	if err := s.users.SetPassword(ctx, u.ID, hash); err != nil {
		return storeErr(err)
	}
	// Commit the password first, then end the others: a session opened with
	// the old password a moment ago is caught by this sweep.
	ended, err := s.endUserSessions(ctx, u.ID, "password_changed", p.Session.Key, p.Session.ID)
	if err != nil {
		return err
	}
	s.noticePasswordChanged(u)
	return s.record(ctx, meta, audit.ActionPasswordChanged, u.ID, map[string]any{"sessions_ended": ended})
}

// verifyCurrentPassword checks a signed-in user's password again (to
// change it, to turn off the second factor) under the account's lockout: a
// locked account or too many attempts answers as a wrong password. The
// caller settles the attempt it returns.
func (s *Service) verifyCurrentPassword(ctx context.Context, u User, password string, meta ClientMeta) (*Attempt, bool, error) {
	att, err := s.lockout.Begin(ctx, accountKey(&u, u.Email), lockoutAddr(meta.IP))
	if err != nil {
		if errors.Is(err, ErrTooManyAttempts) {
			return nil, false, ErrWrongCurrentPassword
		}
		return nil, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ok, _, err := s.hasher.Verify(ctx, password, u.HashedPassword)
	if err != nil {
		_ = att.Release(ctx)
		return nil, false, err
	}
	return att, ok, nil
}

// endUserSessions ends the user's sessions, but for the one keepKey and
// keepID name ("" for none), in the store and then in the history, and
// counts them. The history is best effort: it must not fail a request
// whose sessions are already gone.
func (s *Service) endUserSessions(ctx context.Context, userID, reason, keepKey, keepID string) (int, error) {
	n, err := s.sessions.DeleteByUser(ctx, userID, keepKey)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	started, _ := s.users.RecordSessionEndForUser(ctx, userID, s.now(), reason, keepID)
	s.metrics.sessionEnds(reason, n, s.now(), started...)
	return n, nil
}

// Me returns the caller's account.
func (s *Service) Me(ctx context.Context, p Principal) (User, error) {
	u, err := s.users.UserByID(ctx, p.Session.UserID)
	return u, storeErrOrNil(err)
}

func storeErrOrNil(err error) error {
	if err == nil {
		return nil
	}
	return storeErr(err)
}

// ProfileUpdate is what a user may change about themself.
type ProfileUpdate struct {
	FirstName *string
	LastName  *string
}

// UpdateMe changes the caller's own profile fields.
func (s *Service) UpdateMe(ctx context.Context, p Principal, upd ProfileUpdate, meta ClientMeta) (User, error) {
	u, err := s.users.UpdateUser(ctx, p.Session.UserID, UserUpdate{FirstName: upd.FirstName, LastName: upd.LastName})
	if err != nil {
		return User{}, storeErr(err)
	}
	if err := s.record(ctx, meta, audit.ActionUserUpdated, u.ID, map[string]any{"by": u.ID, "fields": changed(upd.FirstName != nil, "first_name", upd.LastName != nil, "last_name")}); err != nil {
		return User{}, err
	}
	return u, nil
}

func changed(pairs ...any) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i].(bool) {
			out = append(out, pairs[i+1].(string))
		}
	}
	return out
}

// Sessions lists the caller's live sessions.
func (s *Service) Sessions(ctx context.Context, p Principal) ([]sessions.Session, error) {
	list, err := s.sessions.ListByUser(ctx, p.Session.UserID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return list, nil
}

// ErrSessionNotFound is a revocation of a session that is not the caller's.
var ErrSessionNotFound = errors.New("authn: session not found")

// RevokeSession ends one of the caller's sessions by its public id.
func (s *Service) RevokeSession(ctx context.Context, p Principal, id string, meta ClientMeta) error {
	err := s.sessions.DeleteByID(ctx, p.Session.UserID, id)
	switch {
	case errors.Is(err, sessions.ErrNotFound):
		return ErrSessionNotFound
	case err != nil:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	started, _ := s.users.RecordSessionEnd(ctx, id, s.now(), "revoked")
	s.metrics.sessionEnds("revoked", 1, s.now(), started)
	return s.record(ctx, meta, audit.ActionSessionRevoked, p.Session.UserID, map[string]any{"session_id": id})
}

// Unlock lifts a lockout (admin).
func (s *Service) Unlock(ctx context.Context, actor Principal, userID string, meta ClientMeta) (User, error) {
	u, err := s.users.UserByID(ctx, userID)
	if err != nil {
		return User{}, storeErr(err)
	}
	wasLocked, err := s.lockout.Unlock(ctx, accountKey(&u, u.Email))
	if err != nil {
		return User{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if err := s.users.Unlock(ctx, u.ID); err != nil {
		return User{}, storeErr(err)
	}
	if err := s.record(ctx, meta, audit.ActionAccountUnlocked, u.ID, map[string]any{"by": actor.Session.UserID, "was_locked": wasLocked}); err != nil {
		return User{}, err
	}
	u.LoginAttempts, u.LockedUntil = 0, nil
	return u, nil
}

// GetUser returns any user (admin).
func (s *Service) GetUser(ctx context.Context, id string) (User, error) {
	u, err := s.users.UserByID(ctx, id)
	return u, storeErrOrNil(err)
}

// AdminUpdate is what an admin may change about a user.
type AdminUpdate struct {
	UserUpdate
	Password *string
}

// UpdateUser changes a user (admin). Deactivation ends the user's sessions;
// a role or privilege change rewrites their identity in live sessions.
func (s *Service) UpdateUser(ctx context.Context, actor Principal, id string, upd AdminUpdate, meta ClientMeta) (User, error) {
	before, err := s.users.UserByID(ctx, id)
	if err != nil {
		return User{}, storeErr(err)
	}
	var hash string
	if upd.Password != nil {
		email := before.Email
		if upd.Email != nil {
			email = *upd.Email
		}
		if err := s.cfg.Policy.Validate(*upd.Password, email); err != nil {
			return User{}, err
		}
		if hash, err = s.hasher.Hash(ctx, *upd.Password); err != nil {
			return User{}, err
		}
	}
	u, err := s.users.UpdateUser(ctx, id, upd.UserUpdate)
	if err != nil {
		return User{}, storeErr(err)
	}
	if hash != "" {
		if err := s.users.SetPassword(ctx, id, hash); err != nil {
			return User{}, storeErr(err)
		}
	}
	switch {
	case !u.IsActive || hash != "":
		reason := "deactivated"
		if u.IsActive {
			reason = "password_reset"
		}
		if _, err := s.endUserSessions(ctx, id, reason, "", ""); err != nil {
			return User{}, err
		}
	case u.Role != before.Role || u.IsSuperuser != before.IsSuperuser || u.Email != before.Email ||
		!equalInt64Ptr(u.LegacyID, before.LegacyID) || strings.Join(u.Permissions, ",") != strings.Join(before.Permissions, ","):
		roles, perms := identityOf(u)
		if err := s.sessions.UpdateUser(ctx, id, func(sess *sessions.Session) {
			sess.Email, sess.Roles, sess.Permissions, sess.LegacyID = u.Email, roles, perms, u.LegacyID
		}); err != nil {
			return User{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	if err := s.record(ctx, meta, audit.ActionUserUpdated, id, map[string]any{"by": actor.Session.UserID, "fields": updatedFields(upd)}); err != nil {
		return User{}, err
	}
	return u, nil
}

func equalInt64Ptr(a, b *int64) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func updatedFields(upd AdminUpdate) []string {
	return changed(upd.Email != nil, "email", upd.FirstName != nil, "first_name", upd.LastName != nil, "last_name",
		upd.RoleID != nil, "role_id", upd.IsActive != nil, "is_active", upd.IsSuperuser != nil, "is_superuser",
		upd.IsVerified != nil, "is_verified", upd.LegacyID != nil || upd.ClearLegacyID, "legacy_id", upd.Password != nil, "password")
}

// DeleteUser removes a user and ends their sessions (admin).
func (s *Service) DeleteUser(ctx context.Context, actor Principal, id string, meta ClientMeta) error {
	u, err := s.users.UserByID(ctx, id)
	if err != nil {
		return storeErr(err)
	}
	if _, err := s.endUserSessions(ctx, u.ID, "deleted", "", ""); err != nil {
		return err
	}
	if err := s.users.DeleteUser(ctx, u.ID); err != nil {
		return storeErr(err)
	}
	return s.record(ctx, meta, audit.ActionUserDeleted, u.ID, map[string]any{"by": actor.Session.UserID, "email": u.Email})
}

// Now is the service's clock (for handlers that set cookie expiry).
func (s *Service) Now() time.Time { return s.now() }
