package sessions

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// TokenLen is the length of an encoded token: 32 bytes in unpadded base64url.
const TokenLen = 43

// redacted is what a Token prints as, whatever the verb.
const redacted = "[REDACTED]"

// Token is the bearer secret of one session: 256 random bits. It travels to
// the client (cookie value or inside the bearer JWT) and nowhere else; the
// stores only ever see Key. Printing a Token with fmt or a logger shows
// "[REDACTED]"; Secret is the one way to get the encoded value.
type Token struct {
	raw [32]byte
	set bool
}

// NewToken returns a fresh random token.
func NewToken() (Token, error) {
	var t Token
	// crypto/rand.Read never returns an error since Go 1.24 (it crashes the
	// program instead); the error result keeps callers honest if that changes.
	if _, err := rand.Read(t.raw[:]); err != nil {
		return Token{}, fmt.Errorf("sessions: new token: %w", err)
	}
	t.set = true
	return t, nil
}

// ParseToken accepts exactly what Secret produces: 43 characters of the
// base64url alphabet, no padding, no whitespace, and the two unused low bits
// of the last character zero (so every token has exactly one spelling).
// Anything else is ErrInvalidToken.
func ParseToken(s string) (Token, error) {
	if len(s) != TokenLen {
		return Token{}, ErrInvalidToken
	}
	// The decoder silently skips '\r' and '\n', so check the alphabet first.
	for i := 0; i < len(s); i++ {
		if !isURLChar(s[i]) {
			return Token{}, ErrInvalidToken
		}
	}
	var t Token
	n, err := base64.RawURLEncoding.Strict().Decode(t.raw[:], []byte(s))
	if err != nil || n != len(t.raw) {
		return Token{}, ErrInvalidToken
	}
	t.set = true
	return t, nil
}

func isURLChar(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// KeyOf parses an encoded token and returns its store key.
func KeyOf(secret string) (string, error) {
	t, err := ParseToken(secret)
	if err != nil {
		return "", err
	}
	return t.Key(), nil
}

// IsZero reports whether t was neither made by NewToken nor parsed.
func (t Token) IsZero() bool { return !t.set }

// Secret returns the encoded token, the value handed to the client. Do not
// log it.
func (t Token) Secret() string { return base64.RawURLEncoding.EncodeToString(t.raw[:]) }

// Key is the store key of the token's session: the hex SHA-256 of the raw
// token. A dump of the store yields keys, from which no token can be made.
func (t Token) Key() string {
	sum := sha256.Sum256(t.raw[:])
	return hex.EncodeToString(sum[:])
}

// String keeps tokens out of logs.
func (t Token) String() string { return redacted }

// GoString keeps tokens out of %#v output.
func (t Token) GoString() string { return redacted }

// Format keeps tokens out of every fmt verb (%x, %d and friends would
// otherwise print the raw bytes).
func (t Token) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalText keeps tokens out of JSON and YAML encodings of structs that
// happen to hold one.
func (t Token) MarshalText() ([]byte, error) { return []byte(redacted), nil }
