package authn

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestNewKeyringRejectsShortSecrets(t *testing.T) {
	t.Parallel()
	good := testSecret(0, MinSecretBytes)
	short := testSecret(1, MinSecretBytes-1)
	cases := []struct {
		name     string
		current  []byte
		previous [][]byte
	}{
		{"empty current", nil, nil},
		{"short current", short, nil},
		{"short previous", good, [][]byte{short}},
		{"empty previous", good, [][]byte{{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewKeyring(tc.current, tc.previous...)
			if !errors.Is(err, ErrWeakSecret) {
				t.Fatalf("err = %v, want ErrWeakSecret", err)
			}
			if strings.Contains(err.Error(), string(short)) {
				t.Error("error message contains the secret")
			}
		})
	}
}

func TestKeyringDropsDuplicateSecrets(t *testing.T) {
	t.Parallel()
	a, b := testSecret(0, 32), testSecret(1, 40)
	k := testKeyring(t, a, a, b, bytes.Clone(b))
	if k.Len() != 2 {
		t.Fatalf("Len = %d, want 2", k.Len())
	}
}

func TestKeyringCopiesSecrets(t *testing.T) {
	t.Parallel()
	s := testSecret(0, 32)
	k := testKeyring(t, s)
	before := derivedKey(t, k, PurposeSessionToken)
	s[0] ^= 0xff
	after := derivedKey(t, k, PurposeSessionToken)
	if before.ID != after.ID || !bytes.Equal(before.Material(), after.Material()) {
		t.Fatal("changing the caller's slice changed the keyring")
	}
}

func TestDeriveIsDeterministicAndPurposeBound(t *testing.T) {
	t.Parallel()
	secret := testSecret(3, 48)
	k1, k2 := testKeyring(t, secret), testKeyring(t, bytes.Clone(secret))
	purposes := []string{PurposeSessionToken, PurposeAssertion, PurposeAssertionEdDSA, PurposeCSRF}
	seenKeys := map[string]string{}
	seenIDs := map[string]string{}
	for _, p := range purposes {
		a, b := derivedKey(t, k1, p), derivedKey(t, k2, p)
		if a.ID != b.ID || !bytes.Equal(a.Material(), b.Material()) {
			t.Errorf("%s: two keyrings from one secret disagree", p)
		}
		if len(a.Material()) != 32 || len(a.ID) != 16 {
			t.Errorf("%s: key %d bytes, kid %q", p, len(a.Material()), a.ID)
		}
		if _, err := hex.DecodeString(a.ID); err != nil {
			t.Errorf("%s: kid %q is not hex", p, a.ID)
		}
		if bytes.Contains(a.Material(), secret[:8]) {
			t.Errorf("%s: derived key contains the secret", p)
		}
		if strings.Contains(hex.EncodeToString(a.Material()), a.ID) {
			t.Errorf("%s: kid is part of the key", p)
		}
		if q, dup := seenKeys[string(a.Material())]; dup {
			t.Errorf("purposes %s and %s share a key", p, q)
		}
		if q, dup := seenIDs[a.ID]; dup {
			t.Errorf("purposes %s and %s share a kid", p, q)
		}
		seenKeys[string(a.Material())], seenIDs[a.ID] = p, p
	}
	if _, err := k1.Derive(""); !errors.Is(err, ErrTokenConfig) {
		t.Errorf("Derive(\"\") err = %v, want ErrTokenConfig", err)
	}
}

func TestDerivedKeysRotation(t *testing.T) {
	t.Parallel()
	oldS, newS := testSecret(0, 32), testSecret(1, 32)
	oldKey := derivedKey(t, testKeyring(t, oldS), PurposeSessionToken)
	d, err := testKeyring(t, newS, oldS).Derive(PurposeSessionToken)
	if err != nil {
		t.Fatal(err)
	}
	if d.Current().ID == oldKey.ID {
		t.Fatal("current key is the previous secret's")
	}
	got, ok := d.Lookup(oldKey.ID)
	if !ok || !bytes.Equal(got.Material(), oldKey.Material()) {
		t.Fatal("previous key not found by its kid")
	}
	if len(d.All()) != 2 || d.All()[0].ID != d.Current().ID {
		t.Fatal("All does not list the current key first")
	}
	if _, ok := d.Lookup("0000000000000000"); ok {
		t.Fatal("unknown kid found")
	}
	if d.Purpose() != PurposeSessionToken {
		t.Fatalf("Purpose = %q", d.Purpose())
	}
}

func TestKeyringPrintsNoSecret(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t")
	k := testKeyring(t, secret)
	key := derivedKey(t, k, PurposeCSRF)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		for _, v := range []any{k, *k, key, struct{ K *Keyring }{k}} {
			out := fmt.Sprintf(verb, v)
			decimal := strings.Trim(fmt.Sprint(key.Material()[:4]), "[]")
			if strings.Contains(out, "s3cr3t") || strings.Contains(out, hex.EncodeToString(key.Material()[:4])) ||
				strings.Contains(out, decimal) {
				t.Errorf("%s of %T leaks: %s", verb, v, out)
			}
		}
	}
}

// TestTokenTypesPrintNoKeys: a handler that logs one of these with %+v
// must not write a key to the log.
func TestTokenTypesPrintNoKeys(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t")
	ring := testKeyring(t, secret)
	session, err := NewSessionTokens(ring, nil)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := NewLegacyTokens(LegacyConfig{Secret: []byte("legacy-s3cr3t")})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := NewAssertions(ring, AssertionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ed, err := NewAssertions(ring, AssertionConfig{Algorithm: AssertionEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var leaks []string
	for _, p := range []string{PurposeSessionToken, PurposeAssertion, PurposeAssertionEdDSA} {
		m := derivedKey(t, ring, p).Material()
		leaks = append(leaks, hex.EncodeToString(m[:6]), strings.Trim(fmt.Sprint(m[:3]), "[]"))
	}
	ep := ed.edKeys[0].priv
	leaks = append(leaks, strings.Trim(fmt.Sprint([]byte(ep[:3])), "[]"), "s3cr3t")
	for _, v := range []any{session, *session, legacy, *legacy, hs, *hs, ed, *ed} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
			out := fmt.Sprintf(verb, v)
			for _, leak := range leaks {
				if strings.Contains(out, leak) {
					t.Errorf("%s of %T contains key material %q: %s", verb, v, leak, out)
				}
			}
		}
	}
}
