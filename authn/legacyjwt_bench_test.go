package authn

import (
	"testing"
	"time"
)

// BenchmarkLegacyVerify is what a dual-mode request with a legacy JWT pays
// before the user lookup.
func BenchmarkLegacyVerify(b *testing.B) {
	l := newTestLegacy(b, LegacyConfig{Now: newFakeClock().Now})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Verify(pythonJoseID42); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLegacyMint is what a legacy_token route pays per request.
func BenchmarkLegacyMint(b *testing.B) {
	l := newTestLegacy(b, LegacyConfig{Now: newFakeClock().Now})
	sub := LegacySubject{LegacyID: int64p(42)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Mint(sub, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}
