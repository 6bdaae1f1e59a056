package authn

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseSessionToken feeds arbitrary strings to Parse. It must never
// panic, must refuse with ErrInvalidToken, and must accept nothing but the
// tokens Issue made: the fuzzer does not hold the key, so anything else it
// gets accepted is a forgery (or a second spelling of a real token, which
// the alphabet check and strict decoding exist to prevent).
func FuzzParseSessionToken(f *testing.F) {
	clock := newFakeClock()
	ring := testKeyring(f, testSecret(0, 32))
	s := newTestSessionTokens(f, ring, clock)
	key := derivedKey(f, ring, PurposeSessionToken)
	valid, err := s.Issue(testSessionKey, "user-1", clock.Now().Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	now := clock.Now()
	claims := map[string]any{
		"iss": "portero", "aud": "portero-api", "sub": "user-1", "sid": testSessionKey,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	for _, seed := range []string{
		valid,
		withOriginalSignature(f, valid, func(m map[string]any) { m["sub"] = "admin" }),
		withHeader(f, valid, func(m map[string]any) { m["alg"] = "none" }),
		hmacSign(f, nil, nil, map[string]any{"alg": "none", "kid": key.ID}, claims),
		hmacSign(f, sha512New, key.Material(), map[string]any{"alg": "HS512", "kid": key.ID}, claims),
		hmacSign(f, sha256New, key.Material(), map[string]any{"alg": "RS256", "kid": key.ID}, claims),
		nonCanonicalSig(valid),
		valid[:len(valid)-2],
		"", ".", "..", "a.b.c", "eyJ.eyJ.", strings.Repeat("A", 5000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		got, err := s.Parse(token)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v is not ErrInvalidToken", err)
			}
			if got != (SessionClaims{}) {
				t.Fatalf("refused token returned claims %+v", got)
			}
			return
		}
		if token != valid {
			t.Fatalf("accepted a token Issue never made: %q", token)
		}
		if got.SessionKey != testSessionKey || got.UserID != "user-1" {
			t.Fatalf("claims %+v", got)
		}
	})
}
