package sessions

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestNewTokenRoundTrip(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 100 {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		s := tok.Secret()
		if len(s) != TokenLen {
			t.Fatalf("secret length %d, want %d", len(s), TokenLen)
		}
		if seen[s] {
			t.Fatalf("token repeated: %s", s)
		}
		seen[s] = true
		back, err := ParseToken(s)
		if err != nil {
			t.Fatalf("ParseToken(%q): %v", s, err)
		}
		if back != tok || back.Key() != tok.Key() {
			t.Fatalf("round trip changed the token")
		}
		raw, _ := base64.RawURLEncoding.DecodeString(s)
		sum := sha256.Sum256(raw)
		if tok.Key() != hex.EncodeToString(sum[:]) {
			t.Fatalf("Key is not the hex SHA-256 of the raw token")
		}
		if k, err := KeyOf(s); err != nil || k != tok.Key() {
			t.Fatalf("KeyOf = %q, %v", k, err)
		}
	}
}

func TestParseTokenRejects(t *testing.T) {
	t.Parallel()
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	good := tok.Secret()
	// The last character of a canonical token has its two unused low bits
	// clear; setting them gives the same bytes to a lenient decoder, so a
	// second spelling of the same token.
	lastNonCanonical := good[:42] + string(base64URLAlphabet[strings.IndexByte(base64URLAlphabet, good[42])|3])
	cases := map[string]string{
		"empty":            "",
		"short":            good[:42],
		"long":             good + "A",
		"padded":           good + "=",
		"std alphabet +":   "+" + good[1:],
		"std alphabet /":   "/" + good[1:],
		"space":            " " + good[1:],
		"newline inside":   good[:20] + "\n" + good[21:],
		"CR at end":        good[:42] + "\r",
		"non-ascii":        "é" + good[2:],
		"NUL":              "\x00" + good[1:],
		"dot":              "." + good[1:],
		"non-canonical":    lastNonCanonical,
		"uuid-ish":         "123e4567-e89b-12d3-a456-426614174000xxxxxxx",
		"jwt-looking junk": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdef",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParseToken(in); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("ParseToken(%q) err = %v, want ErrInvalidToken", in, err)
			}
			if _, err := KeyOf(in); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("KeyOf(%q) err = %v, want ErrInvalidToken", in, err)
			}
		})
	}
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestTokenNeverPrints(t *testing.T) {
	t.Parallel()
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	secret := tok.Secret()
	rawHex := fmt.Sprintf("%x", tok.raw)
	type holder struct{ T Token }
	js, err := json.Marshal(holder{tok})
	if err != nil {
		t.Fatal(err)
	}
	outs := []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", tok, tok, tok, tok, tok, tok, tok, tok),
		fmt.Sprintf("%v %+v", holder{tok}, &holder{tok}), tok.String(), string(js),
	}
	for _, out := range outs {
		if strings.Contains(out, secret) || strings.Contains(out, rawHex) || strings.Contains(out, tok.Key()) {
			t.Fatalf("token leaked in %q", out)
		}
	}
}

func TestZeroToken(t *testing.T) {
	t.Parallel()
	var z Token
	if !z.IsZero() {
		t.Fatal("zero Token is not IsZero")
	}
	tok, _ := NewToken()
	if tok.IsZero() {
		t.Fatal("new token IsZero")
	}
	// A parsed all-zero token is still a token: IsZero is about origin.
	p, err := ParseToken(strings.Repeat("A", TokenLen))
	if err != nil || p.IsZero() {
		t.Fatalf("ParseToken(all A) = %v, IsZero %v", err, p.IsZero())
	}
}

func FuzzParseToken(f *testing.F) {
	tok, _ := NewToken()
	f.Add(tok.Secret())
	f.Add("")
	f.Add(strings.Repeat("A", TokenLen))
	f.Add(strings.Repeat("_", TokenLen))
	f.Add(tok.Secret() + "=")
	f.Add(tok.Secret()[:20] + "\n" + tok.Secret()[21:])
	f.Add(strings.Repeat("/", TokenLen))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v is not ErrInvalidToken", err)
			}
			return
		}
		// Accepted tokens have exactly one spelling: what Secret prints.
		if got := tok.Secret(); got != s {
			t.Fatalf("accepted %q but it encodes as %q", s, got)
		}
		if len(tok.Key()) != 64 {
			t.Fatalf("key length %d", len(tok.Key()))
		}
	})
}
