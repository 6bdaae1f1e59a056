package authn

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Settings shared by the three kinds of JWT this package makes and checks.
const (
	// TokenIssuer is the "iss" of every token Portero signs.
	TokenIssuer = "portero"

	// TokenLeeway is the clock skew tolerated on exp, nbf and iat. Portero
	// instances share a clock source (NTP) and the legacy app runs next to
	// them; a few seconds absorb drift without stretching a 60-second
	// assertion noticeably.
	TokenLeeway = 5 * time.Second
)

// Reasons a token is refused, wrapped under ErrInvalidToken for logs. They
// are fixed strings: nothing from the token itself is echoed, so a hostile
// token cannot inject text into log lines.
var (
	errTokenTooLarge   = errors.New("token too large")
	errTokenEmpty      = errors.New("token empty")
	errTokenAlphabet   = errors.New("token has a byte outside base64url and '.'")
	errUnexpectedAlg   = errors.New("unexpected alg")
	errMissingKID      = errors.New("missing kid")
	errUnknownKID      = errors.New("unknown kid")
	errCritHeader      = errors.New("crit header not supported")
	errMissingClaim    = errors.New("missing required claim")
	errClaimType       = errors.New("claim has the wrong type")
	errClaimValue      = errors.New("claim has an invalid value")
	errLifetimeTooLong = errors.New("token lifetime exceeds the maximum")
)

// invalidToken wraps a cause under ErrInvalidToken: callers match
// ErrInvalidToken (and answer 401 whatever the cause), logs get the cause.
func invalidToken(cause error) error {
	return fmt.Errorf("%w: %w", ErrInvalidToken, cause)
}

// checkShape refuses what no JWS compact serialisation can look like before
// any decoding: an empty or oversized token, or one with a byte outside the
// base64url alphabet and '.'. The size check means a multi-megabyte
// Authorization header costs a length comparison, not a base64 and JSON
// pass. The alphabet check closes a malleability gap: Go's base64 decoder
// (even in strict mode) skips '\r' and '\n', so without it "a.b.c" and
// "a.b\nc" would both verify.
func checkShape(token string, limit int) error {
	switch {
	case token == "":
		return invalidToken(errTokenEmpty)
	case len(token) > limit:
		return invalidToken(errTokenTooLarge)
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return invalidToken(errTokenAlphabet)
		}
	}
	return nil
}

// jwtHeader is the JOSE header of the tokens Portero signs. Field order
// gives {"alg":…,"kid":…,"typ":"JWT"}, the sorted order python-jose and
// most libraries produce too.
type jwtHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ"`
}

// signCompact makes a compact JWS. Signing is done here rather than through
// jwt.Token so the claim layout (integer exp/iat, a single-string aud) is
// exactly the struct's and does not depend on golang-jwt's package-level
// knobs (TimePrecision, MarshalSingleStringAsArray).
func signCompact(method jwt.SigningMethod, kid string, claims any, key any) (string, error) {
	header, err := json.Marshal(jwtHeader{Alg: method.Alg(), Kid: kid, Typ: "JWT"})
	if err != nil {
		return "", fmt.Errorf("authn: encode jwt header: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("authn: encode jwt claims: %w", err)
	}
	enc := base64.RawURLEncoding
	var b strings.Builder
	b.Grow(enc.EncodedLen(len(header)) + enc.EncodedLen(len(payload)) + 2 + 128)
	b.WriteString(enc.EncodeToString(header))
	b.WriteByte('.')
	b.WriteString(enc.EncodeToString(payload))
	sig, err := method.Sign(b.String(), key)
	if err != nil {
		return "", fmt.Errorf("authn: sign jwt: %w", err)
	}
	b.WriteByte('.')
	b.WriteString(enc.EncodeToString(sig))
	return b.String(), nil
}

// checkHeader refuses what golang-jwt would silently accept: a "crit"
// header names extensions the verifier must understand (RFC 7515 §4.1.11),
// and this one understands none.
func checkHeader(t *jwt.Token) error {
	if _, ok := t.Header["crit"]; ok {
		return errCritHeader
	}
	return nil
}

// headerKID returns the token's kid, which must be a non-empty string.
func headerKID(t *jwt.Token) (string, error) {
	v, ok := t.Header["kid"]
	if !ok {
		return "", errMissingKID
	}
	kid, ok := v.(string)
	if !ok || kid == "" {
		return "", errMissingKID
	}
	return kid, nil
}

// requireTimes checks what golang-jwt leaves optional for Portero's own
// tokens: iat must be present, and exp must not lie further after iat than
// the kind of token allows (0: no limit). A token with a far-off exp was not
// made by this code, whatever its signature says.
func requireTimes(c *jwt.RegisteredClaims, maxLifetime time.Duration) error {
	if c.IssuedAt == nil || c.ExpiresAt == nil {
		return errMissingClaim
	}
	if maxLifetime > 0 && c.ExpiresAt.Sub(c.IssuedAt.Time) > maxLifetime {
		return errLifetimeTooLong
	}
	return nil
}
