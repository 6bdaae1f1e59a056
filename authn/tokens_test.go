package authn

import (
	"errors"
	"fmt"
	"hash"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testSessionKey = "3f1c2a9d0b7e4c5a8f6e1d2c3b4a59687f6e5d4c3b2a19081726354453627180"

func newTestSessionTokens(tb testing.TB, ring *Keyring, clock *fakeClock) *SessionTokens {
	tb.Helper()
	s, err := NewSessionTokens(ring, clock.Now)
	if err != nil {
		tb.Fatalf("NewSessionTokens: %v", err)
	}
	return s
}

func TestSessionTokensRoundTrip(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestSessionTokens(t, testKeyring(t, testSecret(0, 32)), clock)
	expires := clock.Now().Add(12*time.Hour + 500*time.Millisecond)
	tok, err := s.Issue(testSessionKey, "user-1", expires)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) > 600 {
		t.Errorf("token is %d bytes", len(tok))
	}
	got, err := s.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	want := SessionClaims{SessionKey: testSessionKey, UserID: "user-1", ExpiresAt: expires.Truncate(time.Second)}
	if got.SessionKey != want.SessionKey || got.UserID != want.UserID || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("Parse = %+v, want %+v", got, want)
	}

	header, payload, _ := jwtParts(t, tok)
	wantKID := derivedKey(t, testKeyring(t, testSecret(0, 32)), PurposeSessionToken).ID
	if header["alg"] != "HS256" || header["typ"] != "JWT" || header["kid"] != wantKID || len(header) != 3 {
		t.Errorf("header = %v", header)
	}
	for claim, want := range map[string]string{"iss": "portero", "aud": "portero-api", "sub": "user-1", "sid": testSessionKey} {
		if payload[claim] != want {
			t.Errorf("%s = %v, want %q", claim, payload[claim], want)
		}
	}
	if fmt.Sprint(payload["exp"]) != strconv.FormatInt(expires.Unix(), 10) || payload["iat"] == nil {
		t.Errorf("exp = %v, iat = %v", payload["exp"], payload["iat"])
	}

	// The token dies with its exp (plus the leeway), on the injected clock.
	clock.Advance(12*time.Hour + TokenLeeway - time.Second)
	if _, err := s.Parse(tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := s.Parse(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("after exp: err = %v", err)
	}
}

func TestSessionTokensIssueRefusesBadInput(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestSessionTokens(t, testKeyring(t, testSecret(0, 32)), clock)
	now := clock.Now()
	cases := []struct {
		name, key, user string
		expires         time.Time
	}{
		{"empty session key", "", "u", now.Add(time.Hour)},
		{"huge session key", strings.Repeat("k", 257), "u", now.Add(time.Hour)},
		{"empty user", testSessionKey, "", now.Add(time.Hour)},
		{"expired", testSessionKey, "u", now.Add(-time.Second)},
		{"now", testSessionKey, "u", now},
		{"within the same second", testSessionKey, "u", now.Add(500 * time.Millisecond)},
	}
	for _, tc := range cases {
		if _, err := s.Issue(tc.key, tc.user, tc.expires); !errors.Is(err, ErrTokenInput) {
			t.Errorf("%s: err = %v, want ErrTokenInput", tc.name, err)
		}
	}
}

// TestSessionTokensForgery is the issue's "JWT forgery" list and more: each
// case is a token an attacker could present, and every one must be refused
// with ErrInvalidToken and nothing else.
func TestSessionTokensForgery(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	ring := testKeyring(t, testSecret(0, 32))
	s := newTestSessionTokens(t, ring, clock)
	key := derivedKey(t, ring, PurposeSessionToken)
	now := clock.Now()

	valid, err := s.Issue(testSessionKey, "user-1", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	header := map[string]any{"alg": "HS256", "typ": "JWT", "kid": key.ID}
	claims := map[string]any{
		"iss": "portero", "aud": "portero-api", "sub": "user-1", "sid": testSessionKey,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	// sign builds a token by hand from edited copies of header and claims.
	sign := func(h func() hash.Hash, k []byte, editH func(map[string]any), editC func(map[string]any)) string {
		hd, cl := maps.Clone(header), maps.Clone(claims)
		if editH != nil {
			editH(hd)
		}
		if editC != nil {
			editC(cl)
		}
		return hmacSign(t, h, k, hd, cl)
	}
	del := func(name string) func(map[string]any) { return func(m map[string]any) { delete(m, name) } }
	set := func(name string, v any) func(map[string]any) { return func(m map[string]any) { m[name] = v } }

	otherRing := testKeyring(t, testSecret(1, 32))
	otherKey := derivedKey(t, otherRing, PurposeSessionToken)
	assertionKey := derivedKey(t, ring, PurposeAssertion)
	csrfKey := derivedKey(t, ring, PurposeCSRF)

	// The hand-built path must agree with Issue, or the cases below would
	// prove nothing.
	if _, err := s.Parse(sign(sha256New, key.Material(), nil, nil)); err != nil {
		t.Fatalf("hand-built valid token refused: %v", err)
	}

	cases := []struct {
		name  string
		token string
		cause error // the wrapped reason, when it is one of ours
	}{
		{"changed sub, original signature", withOriginalSignature(t, valid, set("sub", "admin")), nil},
		{"changed sid, original signature", withOriginalSignature(t, valid, set("sid", strings.Repeat("0", 64))), nil},
		{"extended exp, original signature", withOriginalSignature(t, valid, set("exp", now.Add(100*time.Hour).Unix())), nil},
		{"changed kid, original signature", withHeader(t, valid, set("kid", otherKey.ID)), errUnknownKID},
		{"alg none, no signature", sign(nil, nil, set("alg", "none"), nil), nil},
		{"alg none, original signature", withHeader(t, valid, set("alg", "none")), nil},
		{"alg None", sign(nil, nil, set("alg", "None"), nil), nil},
		{"alg hs256 lower case", sign(sha256New, key.Material(), set("alg", "hs256"), nil), nil},
		{"alg HS512 with the right key", sign(sha512New, key.Material(), set("alg", "HS512"), nil), nil},
		{"alg HS384 with the right key", sign(sha384New, key.Material(), set("alg", "HS384"), nil), nil},
		{"alg RS256, HMAC key as public key", sign(sha256New, key.Material(), set("alg", "RS256"), nil), nil},
		{"alg EdDSA", sign(sha256New, key.Material(), set("alg", "EdDSA"), nil), nil},
		{"alg missing", sign(sha256New, key.Material(), del("alg"), nil), nil},
		{"wrong key, our kid", sign(sha256New, otherKey.Material(), nil, nil), nil},
		{"wrong key, its own kid", sign(sha256New, otherKey.Material(), set("kid", otherKey.ID), nil), errUnknownKID},
		{"assertion key (other purpose)", sign(sha256New, assertionKey.Material(), set("kid", assertionKey.ID), nil), errUnknownKID},
		{"CSRF key with our kid", sign(sha256New, csrfKey.Material(), nil, nil), nil},
		{"raw secret as key", sign(sha256New, testSecret(0, 32), nil, nil), nil},
		{"empty key", sign(sha256New, []byte{}, nil, nil), nil},
		{"unknown kid", sign(sha256New, key.Material(), set("kid", "0123456789abcdef"), nil), errUnknownKID},
		{"missing kid", sign(sha256New, key.Material(), del("kid"), nil), errMissingKID},
		{"empty kid", sign(sha256New, key.Material(), set("kid", ""), nil), errMissingKID},
		{"numeric kid", sign(sha256New, key.Material(), set("kid", 7), nil), errMissingKID},
		{"crit header", sign(sha256New, key.Material(), set("crit", []string{"exp"}), nil), errCritHeader},
		{"expired", sign(sha256New, key.Material(), nil, set("exp", now.Add(-TokenLeeway-time.Second).Unix())), nil},
		{"missing exp", sign(sha256New, key.Material(), nil, del("exp")), nil},
		{"exp not a number", sign(sha256New, key.Material(), nil, set("exp", "soon")), nil},
		{"not yet valid (nbf)", sign(sha256New, key.Material(), nil, set("nbf", now.Add(time.Minute).Unix())), nil},
		{"issued in the future", sign(sha256New, key.Material(), nil, set("iat", now.Add(time.Minute).Unix())), nil},
		{"missing iat", sign(sha256New, key.Material(), nil, del("iat")), errMissingClaim},
		{"wrong audience", sign(sha256New, key.Material(), nil, set("aud", "portero-assertion")), nil},
		{"audience list without ours", sign(sha256New, key.Material(), nil, set("aud", []string{"a", "b"})), nil},
		{"missing audience", sign(sha256New, key.Material(), nil, del("aud")), nil},
		{"wrong issuer", sign(sha256New, key.Material(), nil, set("iss", "legacy")), nil},
		{"missing issuer", sign(sha256New, key.Material(), nil, del("iss")), nil},
		{"missing sub", sign(sha256New, key.Material(), nil, del("sub")), errMissingClaim},
		{"missing sid", sign(sha256New, key.Material(), nil, del("sid")), errMissingClaim},
		{"sid not a string", sign(sha256New, key.Material(), nil, set("sid", 5)), nil},
		{"huge sid", sign(sha256New, key.Material(), nil, set("sid", strings.Repeat("s", 300))), errClaimValue},
		{"truncated signature", valid[:len(valid)-1], nil},
		{"signature removed", valid[:strings.LastIndexByte(valid, '.')+1], nil},
		{"two segments", valid[:strings.LastIndexByte(valid, '.')], nil},
		{"four segments", valid + ".x", nil},
		{"non-canonical signature encoding", nonCanonicalSig(valid), nil},
		{"padded signature", valid + "=", errTokenAlphabet},
		{"newline inside", valid[:10] + "\n" + valid[10:], errTokenAlphabet},
		{"surrounding space", " " + valid, errTokenAlphabet},
		{"Bearer prefix left on", "Bearer " + valid, errTokenAlphabet},
		{"huge", valid + strings.Repeat("A", MaxSessionTokenBytes), errTokenTooLarge},
		{"empty", "", errTokenEmpty},
		{"garbage", "not a token", errTokenAlphabet},
		{"dots only", "..", nil},
		{"base64 garbage", "abc.def.ghi", nil},
		{"header not an object", b64.EncodeToString([]byte(`[1]`)) + "." + b64.EncodeToString([]byte(`{}`)) + ".AA", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Parse(tc.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Parse = %+v, %v; want ErrInvalidToken", got, err)
			}
			if got != (SessionClaims{}) {
				t.Errorf("refused token still returned claims %+v", got)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("cause = %v, want %v", err, tc.cause)
			}
		})
	}
}

func TestSessionTokensKeyRotation(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	oldSecret, newSecret := testSecret(0, 32), testSecret(1, 32)
	before := newTestSessionTokens(t, testKeyring(t, oldSecret), clock)
	tok, err := before.Issue(testSessionKey, "user-1", clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	// Rotated: new secret current, old one kept as previous.
	rotated := newTestSessionTokens(t, testKeyring(t, newSecret, oldSecret), clock)
	if got, err := rotated.Parse(tok); err != nil || got.UserID != "user-1" {
		t.Fatalf("token of the previous secret after rotation: %+v, %v", got, err)
	}
	fresh, err := rotated.Issue(testSessionKey, "user-2", clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := jwtParts(t, fresh)
	if h["kid"] != derivedKey(t, testKeyring(t, newSecret), PurposeSessionToken).ID {
		t.Fatalf("new tokens signed with kid %v, not the new secret's", h["kid"])
	}
	if _, err := before.Parse(fresh); !errors.Is(err, errUnknownKID) {
		t.Fatalf("an instance not yet rotated: err = %v, want unknown kid", err)
	}

	// Old secret removed: its tokens die at once.
	removed := newTestSessionTokens(t, testKeyring(t, newSecret), clock)
	if _, err := removed.Parse(tok); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, errUnknownKID) {
		t.Fatalf("token of a removed secret: err = %v", err)
	}
	if _, err := removed.Parse(fresh); err != nil {
		t.Fatalf("token of the current secret: %v", err)
	}
}

func TestSessionTokensErrorsNameNoDetailsOfTheToken(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newTestSessionTokens(t, testKeyring(t, testSecret(0, 32)), clock)
	tok, err := s.Issue("secret-session-key-value", "user-1", clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	forged := withOriginalSignature(t, tok, func(m map[string]any) { m["sub"] = "<script>injected" })
	_, err = s.Parse(forged)
	if err == nil {
		t.Fatal("forged token accepted")
	}
	for _, leak := range []string{"secret-session-key-value", "<script>", "user-1", forged[:20]} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q contains %q", err, leak)
		}
	}
}
