package authn

import "testing"

// The assertion is minted once per proxied request on gateway and dual
// routes, so Mint sits on the hot path; Verify is the upstream's cost.
func BenchmarkAssertionsMint(b *testing.B) {
	for _, alg := range assertionAlgs {
		b.Run(alg, func(b *testing.B) {
			a := newTestAssertions(b, testKeyring(b, testSecret(0, 32)), AssertionConfig{Algorithm: alg, Now: newFakeClock().Now})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Mint(testIdentity, testAudience); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAssertionsVerify(b *testing.B) {
	for _, alg := range assertionAlgs {
		b.Run(alg, func(b *testing.B) {
			a := newTestAssertions(b, testKeyring(b, testSecret(0, 32)), AssertionConfig{Algorithm: alg, Now: newFakeClock().Now})
			tok, err := a.Mint(testIdentity, testAudience)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Verify(tok, testAudience); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
