package authn

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerifyLegacy feeds arbitrary strings to a legacy verifier. It must
// never panic, must refuse with ErrInvalidToken, and must accept only the
// tokens signed with the secret in the seed corpus: the fuzzer does not
// hold the secret, so any other acceptance is a forgery.
func FuzzVerifyLegacy(f *testing.F) {
	clock := newFakeClock()
	l := newTestLegacy(f, LegacyConfig{Now: clock.Now})
	minted, err := l.Mint(LegacySubject{LegacyID: int64p(42)}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	// python-jose fixtures verify at the fake clock's time too (exp 2100).
	accepted := map[string]int64{minted: 42, pythonJoseID42: 42}
	for _, seed := range []string{
		minted, pythonJoseID42, pythonJoseExpired, pythonJoseEmail,
		withOriginalSignature(f, minted, func(m map[string]any) { m["sub"] = "1" }),
		withHeader(f, minted, func(m map[string]any) { m["alg"] = "none" }),
		hmacSign(f, sha512New, []byte(pythonJoseSecret), map[string]any{"alg": "HS512", "typ": "JWT"}, map[string]any{"sub": "42", "exp": 4102444800}),
		hmacSign(f, nil, nil, map[string]any{"alg": "none"}, map[string]any{"sub": "42", "exp": 4102444800}),
		nonCanonicalSig(minted),
		"", "..", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiI0MiJ9.", strings.Repeat("A.", 3000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		sub, err := l.Verify(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v is not ErrInvalidToken", err)
			}
			if sub.LegacyID != nil || sub.Email != "" {
				t.Fatalf("refused token returned %+v", sub)
			}
			return
		}
		want, ok := accepted[token]
		if !ok {
			t.Fatalf("accepted a token signed without the secret: %q", token)
		}
		if sub.LegacyID == nil || *sub.LegacyID != want {
			t.Fatalf("subject %+v", sub)
		}
	})
}
