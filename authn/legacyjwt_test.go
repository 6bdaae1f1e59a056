package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"hash"
	"maps"
	"strings"
	"testing"
	"time"
)

// The legacy app's secret and three tokens as python-jose makes them:
// jwt.encode({"sub": "42", "exp": ...}, SECRET, algorithm="HS256"). They
// were built outside Go (Python's hmac, json and base64, replaying
// python-jose's encoding: sorted compact header, compact payload, unpadded
// base64url), so they check Verify against the real layout rather than
// against this package's own Mint.
const (
	pythonJoseSecret = "legacy-secret-from-the-python-app"
	// {"sub":"42","exp":4102444800} (2100-01-01)
	pythonJoseID42 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsImV4cCI6NDEwMjQ0NDgwMH0.7Focf0xjqT6LGbVXlkU9Cljj87Tokxt-J9uozyrIIME"
	// {"sub":"alice@example.com","exp":4102444800}
	pythonJoseEmail = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZUBleGFtcGxlLmNvbSIsImV4cCI6NDEwMjQ0NDgwMH0.WqFV4LAqTSXerMEMqko_lqMNmX612iJXEVJqnNZAzI8"
	// {"sub":"42","exp":1700000000} (2023-11-14, expired)
	pythonJoseExpired = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsImV4cCI6MTcwMDAwMDAwMH0.VVymSiskE1qFi1GIIHNcrNCf0HlRyvWWOx0VUaN9hf0"
)

func newTestLegacy(tb testing.TB, cfg LegacyConfig) *LegacyTokens {
	tb.Helper()
	if cfg.Secret == nil {
		cfg.Secret = []byte(pythonJoseSecret)
	}
	l, err := NewLegacyTokens(cfg)
	if err != nil {
		tb.Fatalf("NewLegacyTokens: %v", err)
	}
	return l
}

func int64p(v int64) *int64 { return &v }

func TestLegacyVerifiesPythonJoseTokens(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	byID := newTestLegacy(t, LegacyConfig{Now: clock.Now})
	sub, err := byID.Verify(pythonJoseID42)
	if err != nil {
		t.Fatal(err)
	}
	if sub.LegacyID == nil || *sub.LegacyID != 42 || sub.Email != "" {
		t.Fatalf("subject = %+v", sub)
	}
	if _, err := byID.Verify(pythonJoseExpired); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired python-jose token: err = %v", err)
	}
	// An e-mail where an id is expected is refused, not mapped to anyone.
	if _, err := byID.Verify(pythonJoseEmail); !errors.Is(err, errClaimValue) {
		t.Fatalf("e-mail subject under legacy_id: err = %v", err)
	}

	byEmail := newTestLegacy(t, LegacyConfig{Subject: LegacySubjectEmail, Now: clock.Now})
	sub, err = byEmail.Verify(pythonJoseEmail)
	if err != nil || sub.Email != "alice@example.com" || sub.LegacyID != nil {
		t.Fatalf("email subject = %+v, %v", sub, err)
	}
	if _, err := byEmail.Verify(pythonJoseID42); !errors.Is(err, errClaimValue) {
		t.Fatalf("id subject under email: err = %v", err)
	}
}

// TestLegacyHandBuiltFixture builds the python-jose layout byte for byte
// with crypto/hmac, no JWT library involved, at the fake clock's time.
func TestLegacyHandBuiltFixture(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := newTestLegacy(t, LegacyConfig{Now: clock.Now})
	header := `{"alg":"HS256","typ":"JWT"}`
	payload := `{"sub":"42","exp":` + jsonInt(clock.Now().Add(30*time.Minute).Unix()) + `}`
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, []byte(pythonJoseSecret))
	mac.Write([]byte(input))
	token := input + "." + b64.EncodeToString(mac.Sum(nil))
	sub, err := l.Verify(token)
	if err != nil || sub.LegacyID == nil || *sub.LegacyID != 42 {
		t.Fatalf("Verify = %+v, %v", sub, err)
	}
	clock.Advance(30*time.Minute + TokenLeeway)
	if _, err := l.Verify(token); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("after exp: err = %v", err)
	}
}

func jsonInt(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestLegacyMintRoundTripAndLayout(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	cases := []struct {
		name    string
		cfg     LegacyConfig
		subject LegacySubject
		claim   string
		want    any // the subject claim as decoded with UseNumber
	}{
		{"legacy id in sub", LegacyConfig{}, LegacySubject{LegacyID: int64p(42)}, "sub", "42"},
		{"zero id", LegacyConfig{}, LegacySubject{LegacyID: int64p(0)}, "sub", "0"},
		{"max id", LegacyConfig{}, LegacySubject{LegacyID: int64p(1<<63 - 1)}, "sub", "9223372036854775807"},
		{"email in sub", LegacyConfig{Subject: LegacySubjectEmail}, LegacySubject{Email: "Bob@Example.com"}, "sub", "Bob@Example.com"},
		{"id in own claim, as string", LegacyConfig{Claim: "user_id"}, LegacySubject{LegacyID: int64p(7)}, "user_id", "7"},
		{"id in own claim, as number", LegacyConfig{Claim: "user_id", NumericID: true}, LegacySubject{LegacyID: int64p(7)}, "user_id", json.Number("7")},
		{"HS512 with aud and iss", LegacyConfig{Algorithm: "HS512", Audience: "muestras", Issuer: "muestras-api"}, LegacySubject{LegacyID: int64p(9)}, "sub", "9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.Now = clock.Now
			l := newTestLegacy(t, tc.cfg)
			tok, err := l.Mint(tc.subject, 2*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.Verify(tok)
			if err != nil {
				t.Fatalf("Verify(Mint) = %v", err)
			}
			if (got.LegacyID == nil) != (tc.subject.LegacyID == nil) || got.LegacyID != nil && *got.LegacyID != *tc.subject.LegacyID || got.Email != tc.subject.Email {
				t.Fatalf("round trip %+v -> %+v", tc.subject, got)
			}

			header, payload, _ := jwtParts(t, tok)
			alg := tc.cfg.Algorithm
			if alg == "" {
				alg = "HS256"
			}
			if !maps.Equal(header, map[string]any{"alg": alg, "typ": "JWT"}) {
				t.Errorf("header = %v, want python-jose's", header)
			}
			wantKeys := map[string]bool{tc.claim: true, "exp": true, "iat": true}
			if tc.cfg.Audience != "" {
				wantKeys["aud"], wantKeys["iss"] = true, true
			}
			for k := range payload {
				if !wantKeys[k] {
					t.Errorf("unexpected claim %q", k)
				}
			}
			if payload[tc.claim] != tc.want {
				t.Errorf("%s = %#v, want %#v", tc.claim, payload[tc.claim], tc.want)
			}
			if payload["exp"] != json.Number(jsonInt(clock.Now().Add(2*time.Minute).Unix())) ||
				payload["iat"] != json.Number(jsonInt(clock.Now().Unix())) {
				t.Errorf("exp, iat = %v, %v; want integers", payload["exp"], payload["iat"])
			}
		})
	}
}

func TestLegacyMintRefusesBadInput(t *testing.T) {
	t.Parallel()
	byID := newTestLegacy(t, LegacyConfig{})
	byEmail := newTestLegacy(t, LegacyConfig{Subject: LegacySubjectEmail})
	cases := []struct {
		name string
		l    *LegacyTokens
		sub  LegacySubject
		ttl  time.Duration
	}{
		{"no legacy id", byID, LegacySubject{Email: "a@b.c"}, time.Minute},
		{"negative legacy id", byID, LegacySubject{LegacyID: int64p(-1)}, time.Minute},
		{"no email", byEmail, LegacySubject{LegacyID: int64p(1)}, time.Minute},
		{"bad email", byEmail, LegacySubject{Email: "a b@c"}, time.Minute},
		{"zero ttl", byID, LegacySubject{LegacyID: int64p(1)}, 0},
		{"sub-second ttl", byID, LegacySubject{LegacyID: int64p(1)}, time.Millisecond},
	}
	for _, tc := range cases {
		if _, err := tc.l.Mint(tc.sub, tc.ttl); !errors.Is(err, ErrTokenInput) {
			t.Errorf("%s: err = %v, want ErrTokenInput", tc.name, err)
		}
	}
}

func TestNewLegacyTokensRefusesBadConfig(t *testing.T) {
	t.Parallel()
	secret := []byte(pythonJoseSecret)
	cases := []struct {
		name string
		cfg  LegacyConfig
		want error
	}{
		{"empty secret", LegacyConfig{}, ErrWeakSecret},
		{"alg none", LegacyConfig{Secret: secret, Algorithm: "none"}, ErrTokenConfig},
		{"alg RS256", LegacyConfig{Secret: secret, Algorithm: "RS256"}, ErrTokenConfig},
		{"alg lower case", LegacyConfig{Secret: secret, Algorithm: "hs256"}, ErrTokenConfig},
		{"unknown subject kind", LegacyConfig{Secret: secret, Subject: "uuid"}, ErrTokenConfig},
		{"subject in exp", LegacyConfig{Secret: secret, Claim: "exp"}, ErrTokenConfig},
		{"subject in aud", LegacyConfig{Secret: secret, Claim: "aud"}, ErrTokenConfig},
		{"numeric id in sub", LegacyConfig{Secret: secret, NumericID: true}, ErrTokenConfig},
		{"numeric e-mail", LegacyConfig{Secret: secret, Claim: "user", Subject: LegacySubjectEmail, NumericID: true}, ErrTokenConfig},
	}
	for _, tc := range cases {
		if _, err := NewLegacyTokens(tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestLegacyForgery: every token an attacker could bring to a dual-mode
// route must be refused with ErrInvalidToken.
func TestLegacyForgery(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	now := clock.Now()
	secret := []byte(pythonJoseSecret)
	plain := newTestLegacy(t, LegacyConfig{Now: clock.Now})
	withAud := newTestLegacy(t, LegacyConfig{Now: clock.Now, Audience: "muestras", Issuer: "muestras-api"})
	byEmail := newTestLegacy(t, LegacyConfig{Now: clock.Now, Subject: LegacySubjectEmail})
	ownClaim := newTestLegacy(t, LegacyConfig{Now: clock.Now, Claim: "user_id"})

	valid, err := plain.Mint(LegacySubject{LegacyID: int64p(42)}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	header := map[string]any{"alg": "HS256", "typ": "JWT"}
	claims := map[string]any{"sub": "42", "exp": now.Add(time.Hour).Unix()}
	sign := func(h func() hash.Hash, key []byte, editH, editC func(map[string]any)) string {
		hd, cl := maps.Clone(header), maps.Clone(claims)
		if editH != nil {
			editH(hd)
		}
		if editC != nil {
			editC(cl)
		}
		return hmacSign(t, h, key, hd, cl)
	}
	set := func(name string, v any) func(map[string]any) { return func(m map[string]any) { m[name] = v } }
	del := func(name string) func(map[string]any) { return func(m map[string]any) { delete(m, name) } }
	rawClaims := func(json string) string { // claims JSON written verbatim (numbers kept as typed)
		return b64.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + b64.EncodeToString([]byte(json))
	}
	signRaw := func(json string) string {
		input := rawClaims(json)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(input))
		return input + "." + b64.EncodeToString(mac.Sum(nil))
	}
	exp := jsonInt(now.Add(time.Hour).Unix())

	if _, err := plain.Verify(sign(sha256New, secret, nil, nil)); err != nil {
		t.Fatalf("hand-built valid token refused: %v", err)
	}
	if sub, err := ownClaim.Verify(signRaw(`{"user_id":42,"exp":` + exp + `}`)); err != nil || *sub.LegacyID != 42 {
		t.Fatalf("numeric id in own claim: %+v, %v", sub, err)
	}

	cases := []struct {
		name  string
		l     *LegacyTokens
		token string
	}{
		{"changed sub, original signature", plain, withOriginalSignature(t, valid, set("sub", "1"))},
		{"extended exp, original signature", plain, withOriginalSignature(t, valid, set("exp", now.Add(1000*time.Hour).Unix()))},
		{"alg none", plain, sign(nil, nil, set("alg", "none"), nil)},
		{"alg none, original signature", plain, withHeader(t, valid, set("alg", "none"))},
		{"alg HS512 with the right secret", plain, sign(sha512New, secret, set("alg", "HS512"), nil)},
		{"alg HS384 with the right secret", plain, sign(sha384New, secret, set("alg", "HS384"), nil)},
		{"alg RS256, secret as public key", plain, sign(sha256New, secret, set("alg", "RS256"), nil)},
		{"alg HS256 where HS512 is configured", newTestLegacy(t, LegacyConfig{Now: clock.Now, Algorithm: "HS512"}), valid},
		{"wrong secret", plain, sign(sha256New, []byte("another-secret"), nil, nil)},
		{"Portero's session key", plain, sign(sha256New, derivedKey(t, testKeyring(t, testSecret(0, 32)), PurposeSessionToken).Material(), nil, nil)},
		{"expired", plain, sign(sha256New, secret, nil, set("exp", now.Add(-time.Minute).Unix()))},
		{"expired python-jose token", plain, pythonJoseExpired},
		{"missing exp", plain, sign(sha256New, secret, nil, del("exp"))},
		{"exp as string", plain, sign(sha256New, secret, nil, set("exp", exp))},
		{"exp null", plain, signRaw(`{"sub":"42","exp":null}`)},
		{"not yet valid", plain, sign(sha256New, secret, nil, set("nbf", now.Add(time.Hour).Unix()))},
		{"crit header", plain, sign(sha256New, secret, set("crit", []string{"b64"}), nil)},
		{"audience not asked for", plain, sign(sha256New, secret, nil, set("aud", "other-service"))},
		{"wrong audience", withAud, sign(sha256New, secret, nil, func(m map[string]any) { m["aud"], m["iss"] = "other", "muestras-api" })},
		{"missing audience", withAud, sign(sha256New, secret, nil, set("iss", "muestras-api"))},
		{"wrong issuer", withAud, sign(sha256New, secret, nil, func(m map[string]any) { m["aud"], m["iss"] = "muestras", "evil" })},
		{"missing issuer", withAud, sign(sha256New, secret, nil, set("aud", "muestras"))},
		{"missing sub", plain, sign(sha256New, secret, nil, del("sub"))},
		{"sub null", plain, signRaw(`{"sub":null,"exp":` + exp + `}`)},
		{"numeric sub", plain, signRaw(`{"sub":42,"exp":` + exp + `}`)},
		{"empty sub", plain, sign(sha256New, secret, nil, set("sub", ""))},
		{"sub with leading zero", plain, sign(sha256New, secret, nil, set("sub", "042"))},
		{"sub with plus", plain, sign(sha256New, secret, nil, set("sub", "+42"))},
		{"negative sub", plain, sign(sha256New, secret, nil, set("sub", "-42"))},
		{"sub with space", plain, sign(sha256New, secret, nil, set("sub", " 42"))},
		{"sub as float", plain, sign(sha256New, secret, nil, set("sub", "42.0"))},
		{"sub overflowing int64", plain, sign(sha256New, secret, nil, set("sub", "9223372036854775808"))},
		{"sub list", plain, sign(sha256New, secret, nil, set("sub", []string{"42"}))},
		{"float id in own claim", ownClaim, signRaw(`{"user_id":42.5,"exp":` + exp + `}`)},
		{"exponent id in own claim", ownClaim, signRaw(`{"user_id":4e1,"exp":` + exp + `}`)},
		{"own claim missing (sub present)", ownClaim, sign(sha256New, secret, nil, nil)},
		{"email without @", byEmail, sign(sha256New, secret, nil, set("sub", "alice"))},
		{"email with space", byEmail, sign(sha256New, secret, nil, set("sub", "alice @example.com"))},
		{"email with two @", byEmail, sign(sha256New, secret, nil, set("sub", "a@b@c"))},
		{"email with newline", byEmail, sign(sha256New, secret, nil, set("sub", "a@b\nX-Injected: 1"))},
		{"email too long", byEmail, sign(sha256New, secret, nil, set("sub", strings.Repeat("a", 320)+"@b.c"))},
		{"truncated", plain, valid[:len(valid)-3]},
		{"non-canonical signature", plain, nonCanonicalSig(valid)},
		{"padded", plain, valid + "=="},
		{"huge", plain, valid + strings.Repeat("A", MaxLegacyTokenBytes)},
		{"empty", plain, ""},
		{"garbage", plain, "Bearer xyz"},
		{"claims not JSON", plain, b64.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + b64.EncodeToString([]byte("not json")) + ".AA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.l.Verify(tc.token)
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", got, err)
			}
			if got.LegacyID != nil || got.Email != "" {
				t.Errorf("refused token still returned %+v", got)
			}
		})
	}
}
