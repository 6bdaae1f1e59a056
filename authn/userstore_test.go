package authn_test

import (
	"testing"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/authn/userstoretest"
	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// TestUserStoreContract runs the one contract suite against PostgreSQL and
// SQLite, each on a fresh migrated database.
func TestUserStoreContract(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		userstoretest.Run(t, func(*testing.T) authn.UserStore { return authn.NewUserStore(db) })
	})
}
