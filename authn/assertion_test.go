package authn

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

const testAudience = "http://legacy-app:8000"

func newTestAssertions(tb testing.TB, ring *Keyring, cfg AssertionConfig) *Assertions {
	tb.Helper()
	a, err := NewAssertions(ring, cfg)
	if err != nil {
		tb.Fatalf("NewAssertions: %v", err)
	}
	return a
}

var testIdentity = Identity{
	UserID:   "0b8f6c9e-6a53-4a4c-9a53-0f2f6a1c7d11",
	Email:    "ana@example.com",
	Roles:    []string{"analyst", "admin"},
	LegacyID: int64p(42),
}

var assertionAlgs = []string{AssertionHS256, AssertionEdDSA}

func TestAssertionsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, alg := range assertionAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			a := newTestAssertions(t, testKeyring(t, testSecret(0, 32)), AssertionConfig{Algorithm: alg, Now: clock.Now})
			if a.Algorithm() != alg || a.TTL() != DefaultAssertionTTL {
				t.Fatalf("Algorithm, TTL = %s, %s", a.Algorithm(), a.TTL())
			}
			tok, err := a.Mint(testIdentity, testAudience)
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Verify(tok, testAudience)
			if err != nil {
				t.Fatal(err)
			}
			if got.UserID != testIdentity.UserID || got.Email != testIdentity.Email ||
				!slices.Equal(got.Roles, testIdentity.Roles) || got.LegacyID == nil || *got.LegacyID != 42 ||
				got.Audience != testAudience || got.ID == "" ||
				!got.IssuedAt.Equal(clock.Now()) || !got.ExpiresAt.Equal(clock.Now().Add(DefaultAssertionTTL)) {
				t.Fatalf("Verify = %+v", got)
			}

			header, payload, _ := jwtParts(t, tok)
			if header["alg"] != alg || header["kid"] == nil || header["typ"] != "JWT" {
				t.Errorf("header = %v", header)
			}
			want := map[string]any{
				"iss": "portero", "aud": testAudience, "sub": testIdentity.UserID, "email": testIdentity.Email,
				"roles": []any{"analyst", "admin"}, "legacy_id": json.Number("42"),
				"iat": json.Number(jsonInt(clock.Now().Unix())), "exp": json.Number(jsonInt(clock.Now().Add(30 * time.Second).Unix())),
				"jti": payload["jti"],
			}
			if fmt.Sprint(payload) != fmt.Sprint(want) {
				t.Errorf("payload = %v\nwant      %v", payload, want)
			}

			// Another mint of the same identity gets another jti.
			tok2, err := a.Mint(testIdentity, testAudience)
			if err != nil {
				t.Fatal(err)
			}
			if _, p2, _ := jwtParts(t, tok2); p2["jti"] == payload["jti"] {
				t.Error("jti repeated")
			}

			// An assertion lives TTL (plus leeway) on the injected clock.
			clock.Advance(DefaultAssertionTTL + TokenLeeway - time.Second)
			if _, err := a.Verify(tok, testAudience); err != nil {
				t.Fatalf("within leeway: %v", err)
			}
			clock.Advance(time.Second)
			if _, err := a.Verify(tok, testAudience); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("after exp: %v", err)
			}
		})
	}
}

func TestAssertionsMinimalIdentity(t *testing.T) {
	t.Parallel()
	a := newTestAssertions(t, testKeyring(t, testSecret(0, 32)), AssertionConfig{Now: newFakeClock().Now})
	tok, err := a.Mint(Identity{UserID: "u"}, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	_, payload, _ := jwtParts(t, tok)
	if _, ok := payload["legacy_id"]; ok {
		t.Error("legacy_id present for a user without one")
	}
	if roles, ok := payload["roles"].([]any); !ok || len(roles) != 0 {
		t.Errorf("roles = %#v, want an empty array", payload["roles"])
	}
	got, err := a.Verify(tok, testAudience)
	if err != nil || got.LegacyID != nil || len(got.Roles) != 0 {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
}

func TestAssertionsConfig(t *testing.T) {
	t.Parallel()
	ring := testKeyring(t, testSecret(0, 32))
	for _, tc := range []struct {
		ttl, want time.Duration
	}{
		{0, DefaultAssertionTTL},
		{10 * time.Second, 10 * time.Second},
		{time.Hour, MaxAssertionTTL},
		{time.Millisecond, time.Second},
	} {
		a := newTestAssertions(t, ring, AssertionConfig{TTL: tc.ttl})
		if a.TTL() != tc.want {
			t.Errorf("TTL %s -> %s, want %s", tc.ttl, a.TTL(), tc.want)
		}
	}
	for _, cfg := range []AssertionConfig{{TTL: -time.Second}, {Algorithm: "RS256"}, {Algorithm: "none"}, {Algorithm: "hs256"}} {
		if _, err := NewAssertions(ring, cfg); !errors.Is(err, ErrTokenConfig) {
			t.Errorf("%+v: err = %v, want ErrTokenConfig", cfg, err)
		}
	}
	a := newTestAssertions(t, ring, AssertionConfig{})
	if _, err := a.Mint(Identity{}, testAudience); !errors.Is(err, ErrTokenInput) {
		t.Errorf("empty user: %v", err)
	}
	if _, err := a.Mint(testIdentity, ""); !errors.Is(err, ErrTokenInput) {
		t.Errorf("empty audience: %v", err)
	}
}

// TestAssertionsForgery runs the same attacks against both algorithms; an
// upstream that trusts X-Auth-Assertion must never be handed one of these.
func TestAssertionsForgery(t *testing.T) {
	t.Parallel()
	for _, alg := range assertionAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			assertionForgeryCases(t, alg)
		})
	}
}

func assertionForgeryCases(t *testing.T, alg string) {
	clock := newFakeClock()
	now := clock.Now()
	ring := testKeyring(t, testSecret(0, 32))
	a := newTestAssertions(t, ring, AssertionConfig{Algorithm: alg, Now: clock.Now})
	valid, err := a.Mint(testIdentity, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	validHeader, validClaims, _ := jwtParts(t, valid)
	kid := validHeader["kid"]

	// resign signs edited claims with the right key and algorithm: the
	// attacks that need the key, to show a check other than the signature
	// does its work.
	hsKey := derivedKey(t, ring, PurposeAssertion)
	edSeed := derivedKey(t, ring, PurposeAssertionEdDSA)
	edPriv := ed25519.NewKeyFromSeed(edSeed.Material())
	resign := func(editH, editC func(map[string]any)) string {
		hd, cl := maps.Clone(validHeader), maps.Clone(validClaims)
		if editH != nil {
			editH(hd)
		}
		if editC != nil {
			editC(cl)
		}
		input := encodeSegment(t, hd) + "." + encodeSegment(t, cl)
		if alg == AssertionEdDSA {
			return input + "." + b64.EncodeToString(ed25519.Sign(edPriv, []byte(input)))
		}
		return hmacSign(t, sha256New, hsKey.Material(), hd, cl)
	}
	if _, err := a.Verify(resign(nil, nil), testAudience); err != nil {
		t.Fatalf("re-signed valid token refused: %v", err)
	}
	// hs signs with an HMAC of the caller's choosing: the confusion attacks.
	hs := func(h func() hash.Hash, key []byte, hAlg string) string {
		hd := maps.Clone(validHeader)
		hd["alg"] = hAlg
		return hmacSign(t, h, key, hd, validClaims)
	}
	set := func(name string, v any) func(map[string]any) { return func(m map[string]any) { m[name] = v } }
	del := func(name string) func(map[string]any) { return func(m map[string]any) { delete(m, name) } }

	other := newTestAssertions(t, testKeyring(t, testSecret(1, 32)), AssertionConfig{Algorithm: alg, Now: clock.Now})
	otherTok, err := other.Mint(testIdentity, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	session := newTestSessionTokens(t, ring, clock)
	sessionTok, err := session.Issue(testSessionKey, testIdentity.UserID, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	pub := a.JWKS()
	var pubBytes []byte
	if len(pub.Keys) > 0 {
		pubBytes, _ = b64.DecodeString(pub.Keys[0].X)
	}

	cases := []struct{ name, token, audience string }{
		{"changed roles, original signature", withOriginalSignature(t, valid, set("roles", []string{"admin", "superuser"})), ""},
		{"changed sub, original signature", withOriginalSignature(t, valid, set("sub", "someone-else")), ""},
		{"changed legacy_id, original signature", withOriginalSignature(t, valid, set("legacy_id", 1)), ""},
		{"changed aud, original signature", withOriginalSignature(t, valid, set("aud", "http://other")), "http://other"},
		{"alg none", hmacSign(t, nil, nil, map[string]any{"alg": "none", "kid": kid}, validClaims), ""},
		{"alg none, original signature", withHeader(t, valid, set("alg", "none")), ""},
		{"HS256 keyed with the public key", hs(sha256New, pubBytes, "HS256"), ""},
		{"HS512 keyed with the assertion key", hs(sha512New, hsKey.Material(), "HS512"), ""},
		{"RS256 header, HMAC signature", hs(sha256New, hsKey.Material(), "RS256"), ""},
		{"EdDSA header, HMAC signature", hs(sha256New, hsKey.Material(), "EdDSA"), ""},
		{"other secret's token", otherTok, ""},
		{"other secret's token, our kid", withHeader(t, otherTok, set("kid", kid)), ""},
		{"session token as assertion", sessionTok, SessionTokenAudience},
		{"unknown kid", resign(set("kid", "ffffffffffffffff"), nil), ""},
		{"missing kid", resign(del("kid"), nil), ""},
		{"crit header", resign(set("crit", []string{"x"}), nil), ""},
		{"expired", resign(nil, func(m map[string]any) {
			m["iat"], m["exp"] = now.Add(-time.Minute).Unix(), now.Add(-30*time.Second).Unix()
		}), ""},
		{"missing exp", resign(nil, del("exp")), ""},
		{"missing iat", resign(nil, del("iat")), ""},
		{"lifetime over 60 s", resign(nil, set("exp", now.Add(61*time.Second).Unix())), ""},
		{"issued in the future", resign(nil, func(m map[string]any) {
			m["iat"], m["exp"] = now.Add(time.Minute).Unix(), now.Add(90*time.Second).Unix()
		}), ""},
		{"not yet valid", resign(nil, set("nbf", now.Add(time.Minute).Unix())), ""},
		{"wrong audience", valid, "http://other-upstream"},
		{"empty expected audience", valid, "-"},
		{"missing audience", resign(nil, del("aud")), ""},
		{"wrong issuer", resign(nil, set("iss", "legacy")), ""},
		{"missing issuer", resign(nil, del("iss")), ""},
		{"missing sub", resign(nil, del("sub")), ""},
		{"missing jti", resign(nil, del("jti")), ""},
		{"roles not a list", resign(nil, set("roles", "admin")), ""},
		{"truncated", valid[:len(valid)-4], ""},
		{"non-canonical signature", nonCanonicalSig(valid), ""},
		{"huge", valid + strings.Repeat("x", MaxAssertionBytes), ""},
		{"empty", "", ""},
		{"garbage", "{}", ""},
	}
	if alg == AssertionEdDSA {
		// An upstream expecting EdDSA must not take an HS256 assertion even
		// when it is keyed with Portero's own HS256 assertion key.
		cases = append(cases, struct{ name, token, audience string }{
			"HS256 keyed with the HS256 assertion key", hs(sha256New, hsKey.Material(), "HS256"), "",
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			aud := tc.audience
			switch aud {
			case "":
				aud = testAudience
			case "-":
				aud = ""
			}
			got, err := a.Verify(tc.token, aud)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", got, err)
			}
			if got.UserID != "" || got.Roles != nil {
				t.Errorf("refused assertion returned %+v", got)
			}
		})
	}
}

func TestAssertionsKeyRotation(t *testing.T) {
	t.Parallel()
	for _, alg := range assertionAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			oldS, newS := testSecret(0, 32), testSecret(1, 32)
			cfg := AssertionConfig{Algorithm: alg, Now: clock.Now}
			old := newTestAssertions(t, testKeyring(t, oldS), cfg)
			tok, err := old.Mint(testIdentity, testAudience)
			if err != nil {
				t.Fatal(err)
			}
			rotated := newTestAssertions(t, testKeyring(t, newS, oldS), cfg)
			if _, err := rotated.Verify(tok, testAudience); err != nil {
				t.Fatalf("previous key after rotation: %v", err)
			}
			removed := newTestAssertions(t, testKeyring(t, newS), cfg)
			if _, err := removed.Verify(tok, testAudience); !errors.Is(err, errUnknownKID) {
				t.Fatalf("removed key: err = %v, want unknown kid", err)
			}
		})
	}
}

func TestAssertionsJWKS(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	oldS, newS := testSecret(0, 32), testSecret(1, 32)

	hs := newTestAssertions(t, testKeyring(t, newS, oldS), AssertionConfig{})
	if set := hs.JWKS(); len(set.Keys) != 0 {
		t.Fatalf("HS256 published keys: %+v", set)
	}
	if out, _ := json.Marshal(hs.JWKS()); string(out) != `{"keys":[]}` {
		t.Errorf("empty JWKS = %s", out)
	}

	ed := newTestAssertions(t, testKeyring(t, newS, oldS), AssertionConfig{Algorithm: AssertionEdDSA, Now: clock.Now})
	set := ed.JWKS()
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want current and previous", len(set.Keys))
	}
	k := set.Keys[0]
	if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.Use != "sig" || len(k.Kid) != 16 {
		t.Errorf("jwk = %+v", k)
	}
	// Deterministic: another instance from the same secrets publishes the
	// same keys, so every Portero behind the load balancer agrees.
	again := newTestAssertions(t, testKeyring(t, newS, oldS), AssertionConfig{Algorithm: AssertionEdDSA})
	if !slices.Equal(again.JWKS().Keys, set.Keys) {
		t.Error("JWKS differs between instances with the same secret")
	}
	// Nothing secret in what is published.
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	seed := derivedKey(t, testKeyring(t, newS), PurposeAssertionEdDSA).Material()
	if bytes.Contains(raw, []byte(b64.EncodeToString(seed))) || bytes.Contains(raw, newS) {
		t.Error("JWKS contains private material")
	}

	// A Go upstream verifies with the published set alone, after a JSON trip.
	var published JWKSet
	if err := json.Unmarshal(raw, &published); err != nil {
		t.Fatal(err)
	}
	v, err := NewAssertionVerifier(published, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ed.Mint(testIdentity, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(tok, testAudience)
	if err != nil || got.UserID != testIdentity.UserID || !slices.Equal(got.Roles, testIdentity.Roles) {
		t.Fatalf("AssertionVerifier.Verify = %+v, %v", got, err)
	}
	oldTok, err := newTestAssertions(t, testKeyring(t, oldS), AssertionConfig{Algorithm: AssertionEdDSA, Now: clock.Now}).Mint(testIdentity, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(oldTok, testAudience); err != nil {
		t.Fatalf("previous key through JWKS: %v", err)
	}
	if _, err := v.Verify(withOriginalSignature(t, tok, func(m map[string]any) { m["roles"] = []string{"admin"} }), testAudience); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("forged roles through JWKS: %v", err)
	}
	// An HS256 assertion signed with the public key (the classic confusion)
	// is refused by the public-key verifier.
	h, p, _ := jwtParts(t, tok)
	h["alg"] = "HS256"
	x, _ := b64.DecodeString(k.X)
	if _, err := v.Verify(hmacSign(t, sha256New, x, h, p), testAudience); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("HS256 with public key: %v", err)
	}
}

func TestNewAssertionVerifierRefusesBadSets(t *testing.T) {
	t.Parallel()
	good := newTestAssertions(t, testKeyring(t, testSecret(0, 32)), AssertionConfig{Algorithm: AssertionEdDSA}).JWKS().Keys[0]
	edit := func(f func(*JWK)) JWKSet {
		k := good
		f(&k)
		return JWKSet{Keys: []JWK{k}}
	}
	cases := map[string]JWKSet{
		"empty":          {},
		"RSA key":        edit(func(k *JWK) { k.Kty = "RSA" }),
		"X25519 key":     edit(func(k *JWK) { k.Crv = "X25519" }),
		"HS256 alg":      edit(func(k *JWK) { k.Alg = "HS256" }),
		"no kid":         edit(func(k *JWK) { k.Kid = "" }),
		"short x":        edit(func(k *JWK) { k.X = k.X[:20] }),
		"padded x":       edit(func(k *JWK) { k.X += "=" }),
		"duplicated kid": {Keys: []JWK{good, good}},
	}
	for name, set := range cases {
		if _, err := NewAssertionVerifier(set, nil); !errors.Is(err, ErrTokenConfig) {
			t.Errorf("%s: err = %v, want ErrTokenConfig", name, err)
		}
	}
}
