package authn_test

import (
	"context"
	"encoding/json"
	"errors"
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

// TestLegacyImportStateStores: both stores keep the import snapshot per
// user (JSON in, the same JSON out; "" before the first import) and refuse
// users they do not have.
func TestLegacyImportStateStores(t *testing.T) {
	t.Parallel()
	type states interface {
		LegacyImportState(ctx context.Context, userID string) (string, error)
		SetLegacyImportState(ctx context.Context, userID, state string) error
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		users := authn.NewUserStore(db)
		st, ok := users.(states)
		if !ok {
			t.Fatal("the store keeps no legacy import state")
		}
		u, err := users.CreateUser(ctx, authn.User{Email: "s@example.test", HashedPassword: "$2b$04$QeKz8rWEIGRz63t2FD0LPOBUGA3cSIb3L7XHI8q0RST7bvVdSgnpu", IsActive: true})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := st.LegacyImportState(ctx, u.ID); err != nil || got != "" {
			t.Fatalf("before any import: %q, %v", got, err)
		}
		const state = `{"role": "admin", "active": true}`
		if err := st.SetLegacyImportState(ctx, u.ID, state); err != nil {
			t.Fatal(err)
		}
		got, err := st.LegacyImportState(ctx, u.ID)
		var back map[string]any
		if err != nil || json.Unmarshal([]byte(got), &back) != nil || back["role"] != "admin" || back["active"] != true {
			t.Fatalf("read back %q, %v", got, err)
		}
		const nobody = "00000000-0000-4000-8000-000000000000"
		if _, err := st.LegacyImportState(ctx, nobody); !errors.Is(err, authn.ErrUserNotFound) {
			t.Errorf("state of an unknown user: %v", err)
		}
		if err := st.SetLegacyImportState(ctx, nobody, state); !errors.Is(err, authn.ErrUserNotFound) {
			t.Errorf("setting the state of an unknown user: %v", err)
		}
	})
}
