package authn

import (
	"fmt"
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
}

// NewMinter builds the proxy's token minter.
func NewMinter(a *Assertions, legacy *LegacyTokens, subject string, legacyTTL time.Duration) *Minter {
	return &Minter{assertions: a, legacy: legacy, subject: subject, legacyTTL: legacyTTL}
}

var _ proxy.Minter = (*Minter)(nil)

// Assertion mints X-Auth-Assertion.
func (m *Minter) Assertion(id proxy.Identity, audience string) (string, error) {
	return m.assertions.Mint(Identity{UserID: id.UserID, Email: id.Email, Roles: id.Roles, LegacyID: id.LegacyID}, audience)
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
