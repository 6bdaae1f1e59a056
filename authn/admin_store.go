package authn

import (
	"context"
	"errors"
	"fmt"

	"github.com/portero/portero/storage"
)

// roleDeleter is the store method role deletion needs. It is kept out of
// UserStore (whose contract suite other stores must pass) and asked for by
// type assertion: both stores NewUserStore makes have it.
type roleDeleter interface {
	// DeleteRole removes role id if no user has it. Errors:
	// ErrRoleNotFound, ErrRoleInUse.
	DeleteRole(ctx context.Context, id int) error
}

var _ roleDeleter = (*sqlUserStore)(nil)

// DeleteRole deletes in one statement that also checks the role is unused,
// so a user given the role meanwhile cannot be left pointing at nothing; the
// foreign key on users.role_id catches the last race (a user inserted
// between the check and the commit).
func (s *sqlUserStore) DeleteRole(ctx context.Context, id int) error {
	n, err := s.db.exec(ctx, "DELETE FROM roles WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM users WHERE role_id = $1)", id)
	switch {
	case storage.IsForeignKeyViolation(err):
		return ErrRoleInUse
	case err != nil:
		return fmt.Errorf("authn: delete role: %w", err)
	case n > 0:
		return nil
	}
	if _, err := s.RoleByID(ctx, id); err != nil {
		if errors.Is(err, ErrRoleNotFound) {
			return ErrRoleNotFound
		}
		return err
	}
	return ErrRoleInUse
}

// legacyImportStates keeps what the legacy table said about each imported
// user at the last import (opaque JSON, "" when none). Asked for by type
// assertion like roleDeleter: both stores NewUserStore makes have it.
type legacyImportStates interface {
	LegacyImportState(ctx context.Context, userID string) (string, error)
	SetLegacyImportState(ctx context.Context, userID, state string) error
}

var _ legacyImportStates = (*sqlUserStore)(nil)

func (s *sqlUserStore) LegacyImportState(ctx context.Context, userID string) (string, error) {
	id, ok := canonicalUUID(userID)
	if !ok {
		return "", ErrUserNotFound
	}
	var state string
	err := s.db.queryRow(ctx, "SELECT COALESCE("+fmt.Sprintf(s.d.jsonText, "legacy_import")+", '') FROM users WHERE id = $1", id).Scan(&state)
	switch {
	case errors.Is(err, errNoRows):
		return "", ErrUserNotFound
	case err != nil:
		return "", fmt.Errorf("authn: legacy import state: %w", err)
	}
	return state, nil
}

func (s *sqlUserStore) SetLegacyImportState(ctx context.Context, userID, state string) error {
	return s.execUser(ctx, "set legacy import state", userID,
		"UPDATE users SET legacy_import = "+fmt.Sprintf(s.d.jsonParam, "$2")+" WHERE id = $1", state)
}
