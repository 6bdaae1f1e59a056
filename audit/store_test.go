package audit_test

import (
	"testing"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/audit/audittest"
	"github.com/portero/portero/storage/storagetest"
)

func TestStoreContract(t *testing.T) {
	t.Parallel()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		audittest.Run(t, func(t *testing.T) audit.Store { return audit.NewStore(storagetest.NewPostgres(t)) })
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		audittest.Run(t, func(t *testing.T) audit.Store { return audit.NewStore(storagetest.NewSQLite(t)) })
	})
}
