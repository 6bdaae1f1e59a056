package authn

import (
	"errors"
	"testing"
)

// FuzzVerifyAssertion: upstreams written in Go verify X-Auth-Assertion with
// this code, and what reaches them may come from anywhere. Never panic,
// refuse with ErrInvalidToken, accept only what Mint made.
func FuzzVerifyAssertion(f *testing.F) {
	clock := newFakeClock()
	ring := testKeyring(f, testSecret(0, 32))
	verifiers := map[string]*Assertions{}
	valid := map[string]bool{}
	for _, alg := range assertionAlgs {
		a := newTestAssertions(f, ring, AssertionConfig{Algorithm: alg, Now: clock.Now})
		a.newJTI = func() string { return "fuzz-jti" } // same token in every fuzz worker
		verifiers[alg] = a
		tok, err := a.Mint(testIdentity, testAudience)
		if err != nil {
			f.Fatal(err)
		}
		valid[tok] = true
		f.Add(tok)
		f.Add(withOriginalSignature(f, tok, func(m map[string]any) { m["roles"] = []string{"admin"} }))
		f.Add(withHeader(f, tok, func(m map[string]any) { m["alg"] = "none" }))
		f.Add(nonCanonicalSig(tok))
	}
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		for alg, a := range verifiers {
			got, err := a.Verify(token, testAudience)
			if err != nil {
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("%s: error %v is not ErrInvalidToken", alg, err)
				}
				continue
			}
			if !valid[token] || got.UserID != testIdentity.UserID {
				t.Fatalf("%s: accepted a token Mint never made: %q", alg, token)
			}
		}
	})
}
