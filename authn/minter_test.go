package authn_test

import (
	"testing"
	"time"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/proxy"
)

func TestMinterReusesAssertionsOnlyWhileFreshAndUnchanged(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ring, err := authn.NewKeyring([]byte("minter-test-secret-0123456789abcdef-xyz"))
	if err != nil {
		t.Fatal(err)
	}
	assertions, err := authn.NewAssertions(ring, authn.AssertionConfig{TTL: 30 * time.Second, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	m := authn.NewMinter(assertions, nil, authn.LegacySubjectID, time.Minute, clock)
	id := proxy.Identity{UserID: "8b0c7a5e-3f0e-4c47-9d59-8f0c2f7b8a11", Email: "a@example.com", Roles: []string{"user"}}

	first, err := m.Assertion(id, "http://legacy")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := m.Assertion(id, "http://legacy"); again != first {
		t.Error("a fresh assertion was not reused")
	}
	promoted := id
	promoted.Roles = []string{"admin"}
	if other, _ := m.Assertion(promoted, "http://legacy"); other == first {
		t.Error("an assertion was reused after the user's roles changed")
	}
	if other, _ := m.Assertion(id, "http://other"); other == first {
		t.Error("an assertion was reused for another audience")
	}
	now = now.Add(16 * time.Second) // past half the 30s lifetime
	later, _ := m.Assertion(id, "http://legacy")
	if later == first {
		t.Error("an assertion past half its lifetime was reused")
	}
	claims, err := assertions.Verify(later, "http://legacy")
	if err != nil || claims.ExpiresAt.Sub(now) < 29*time.Second {
		t.Errorf("reissued assertion: %v, expires %v after now", err, claims.ExpiresAt.Sub(now))
	}
}
