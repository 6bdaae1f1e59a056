package authn

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/portero/portero/proxy"
)

// Minter makes the tokens the proxy forwards upstream: the identity
// assertion and, for legacy_token routes, a JWT in the legacy app's format.
type Minter struct {
	assertions *Assertions
	legacy     *LegacyTokens // nil without a legacy secret
	subject    string        // LegacySubjectID or LegacySubjectEmail
	legacyTTL  time.Duration
	now        func() time.Time

	// Signing an assertion on every request of a busy user is wasted work:
	// one is reused while at least half its lifetime is left, and while it
	// states exactly the facts of the identity at hand.
	mu     sync.Mutex
	recent map[assertionKey]mintedAssertion
}

type assertionKey struct{ userID, audience string }

type mintedAssertion struct {
	token    string
	reuseTo  time.Time
	email    string
	roles    []string
	legacyID *int64
}

// states reports whether the assertion says exactly what id says.
func (c mintedAssertion) states(id proxy.Identity) bool {
	return c.email == id.Email && slices.Equal(c.roles, id.Roles) && equalInt64Ptr(c.legacyID, id.LegacyID)
}

// maxCachedAssertions bounds the reuse cache; it is simply emptied when full.
const maxCachedAssertions = 10000

// NewMinter builds the proxy's token minter. now is the clock that decides
// when a minted assertion is too old to reuse (nil: time.Now).
func NewMinter(a *Assertions, legacy *LegacyTokens, subject string, legacyTTL time.Duration, now func() time.Time) *Minter {
	if now == nil {
		now = time.Now
	}
	return &Minter{assertions: a, legacy: legacy, subject: subject, legacyTTL: legacyTTL, now: now, recent: map[assertionKey]mintedAssertion{}}
}

var _ proxy.Minter = (*Minter)(nil)

// Assertion mints X-Auth-Assertion.
func (m *Minter) Assertion(id proxy.Identity, audience string) (string, error) {
	// Every fact the assertion states is compared, so a role change is
	// never served a stale assertion.
	key := assertionKey{userID: id.UserID, audience: audience}
	now := m.now()
	m.mu.Lock()
	if c, ok := m.recent[key]; ok && now.Before(c.reuseTo) && c.states(id) {
		m.mu.Unlock()
		return c.token, nil
	}
	m.mu.Unlock()
	tok, err := m.assertions.Mint(Identity{UserID: id.UserID, Email: id.Email, Roles: id.Roles, LegacyID: id.LegacyID}, audience)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	if len(m.recent) >= maxCachedAssertions {
		clear(m.recent)
	}
	m.recent[key] = mintedAssertion{token: tok, reuseTo: now.Add(m.assertions.TTL() / 2),
		email: id.Email, roles: slices.Clone(id.Roles), legacyID: cloneInt(id.LegacyID)}
	m.mu.Unlock()
	return tok, nil
}

func cloneInt(p *int64) *int64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// LegacyToken mints a short-lived legacy-format JWT for the identity. A
// user the legacy app never knew (no legacy id) gets none: the request goes
// upstream without Authorization and the legacy app answers as it would.
func (m *Minter) LegacyToken(id proxy.Identity) (string, error) {
	if m.legacy == nil {
		return "", fmt.Errorf("%w: no legacy jwt secret configured", ErrTokenConfig)
	}
	subj := LegacySubject{Email: id.Email}
	if m.subject != LegacySubjectEmail {
		if id.LegacyID == nil {
			return "", nil
		}
		subj = LegacySubject{LegacyID: id.LegacyID}
	}
	return m.legacy.Mint(subj, m.legacyTTL)
}
