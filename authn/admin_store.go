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
