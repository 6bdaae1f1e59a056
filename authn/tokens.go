package authn

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Bearer token layout. The audience keeps a session token from being
// accepted anywhere else a Portero-signed JWT might be checked; the key is
// derived for PurposeSessionToken alone, so even an identical layout signed
// with another purpose's key would not verify.
const (
	SessionTokenAudience = "portero-api"

	// MaxSessionTokenBytes bounds a bearer token before it is decoded. A
	// real one is about 400 bytes.
	MaxSessionTokenBytes = 4096

	// maxSessionRefBytes bounds the sid claim: a store key is 64 hex
	// characters, a token secret 43.
	maxSessionRefBytes = 256
)

// SessionClaims are the facts a verified bearer token carries.
type SessionClaims struct {
	// SessionKey names the live session in the store. Parse only proves
	// that Portero signed it; the caller must still find the session alive,
	// which is what makes logout and revocation act at once.
	SessionKey string
	UserID     string
	ExpiresAt  time.Time
}

// SessionTokens issues and parses the bearer JWTs handed to API clients at
// login: HS256 with a key derived for PurposeSessionToken, the key's kid in
// the header, iss "portero", aud "portero-api", sub = user id, sid = session
// key, iat and exp. Anything else, including any other alg, is refused.
// Safe for concurrent use.
type SessionTokens struct {
	keys   *DerivedKeys
	now    func() time.Time
	parser *jwt.Parser
}

// NewSessionTokens derives the session-token keys from ring. now is the
// clock deciding expiry (nil: time.Now).
func NewSessionTokens(ring *Keyring, now func() time.Time) (*SessionTokens, error) {
	keys, err := ring.Derive(PurposeSessionToken)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &SessionTokens{
		keys: keys,
		now:  now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithIssuer(TokenIssuer),
			jwt.WithAudience(SessionTokenAudience),
			jwt.WithLeeway(TokenLeeway),
			jwt.WithTimeFunc(now),
			// One encoding per token: no trailing-bit variants of a signature.
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// Format prints the kids only (see DerivedKeys.Format).
func (s SessionTokens) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "authn.SessionTokens{kids:%s}", s.keys.kids())
}

// sessionTokenBody is the payload Issue signs.
type sessionTokenBody struct {
	Iss string `json:"iss"`
	Aud string `json:"aud"`
	Sub string `json:"sub"`
	SID string `json:"sid"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

// Issue signs a bearer token for the session. expires should be the
// session's absolute expiry: the token cannot outlive it, and the store
// decides the idle timeout on every request anyway. exp is kept in whole
// seconds, rounded down, so the token never outlives expires.
//
// sessionKey is whatever the caller looks the session up by. The store key
// (sessions.Token.Key) works; passing the token secret instead
// (sessions.Token.Secret, turned into the key with sessions.KeyOf) means a
// dump of the store plus a leaked secret_key still yields no usable bearer
// token, at no cost since the JWT is as much a bearer secret as the cookie.
func (s *SessionTokens) Issue(sessionKey, userID string, expires time.Time) (string, error) {
	now := s.now()
	switch {
	case sessionKey == "" || len(sessionKey) > maxSessionRefBytes:
		return "", fmt.Errorf("%w: session key empty or longer than %d bytes", ErrTokenInput, maxSessionRefBytes)
	case userID == "":
		return "", fmt.Errorf("%w: empty user id", ErrTokenInput)
	case expires.Unix() <= now.Unix():
		return "", fmt.Errorf("%w: expiry is not in the future", ErrTokenInput)
	}
	key := s.keys.Current()
	return signCompact(jwt.SigningMethodHS256, key.ID, sessionTokenBody{
		Iss: TokenIssuer,
		Aud: SessionTokenAudience,
		Sub: userID,
		SID: sessionKey,
		Iat: now.Unix(),
		Exp: expires.Unix(),
	}, key.Material())
}

// sessionTokenClaims is what Parse decodes into.
type sessionTokenClaims struct {
	jwt.RegisteredClaims
	SID string `json:"sid"`
}

// Validate runs after golang-jwt's own checks (signature, exp, iat, iss,
// aud) and adds Portero's: sub and sid present, iat present.
func (c *sessionTokenClaims) Validate() error {
	if c.Subject == "" || c.SID == "" {
		return errMissingClaim
	}
	if len(c.SID) > maxSessionRefBytes {
		return errClaimValue
	}
	return requireTimes(&c.RegisteredClaims, 0)
}

// Parse verifies a bearer token and returns its claims. Every failure is
// ErrInvalidToken (the wrapped cause is for logs only).
func (s *SessionTokens) Parse(token string) (SessionClaims, error) {
	if err := checkShape(token, MaxSessionTokenBytes); err != nil {
		return SessionClaims{}, err
	}
	var c sessionTokenClaims
	if _, err := s.parser.ParseWithClaims(token, &c, s.keyFor); err != nil {
		return SessionClaims{}, invalidToken(err)
	}
	return SessionClaims{SessionKey: c.SID, UserID: c.Subject, ExpiresAt: c.ExpiresAt.Time}, nil
}

// keyFor picks the verification key by kid. The alg is checked again here,
// by identity of the method rather than by name, so the HMAC key can never
// be handed to another algorithm whatever the parser options say.
func (s *SessionTokens) keyFor(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodHS256 {
		return nil, errUnexpectedAlg
	}
	if err := checkHeader(t); err != nil {
		return nil, err
	}
	kid, err := headerKID(t)
	if err != nil {
		return nil, err
	}
	k, ok := s.keys.Lookup(kid)
	if !ok {
		return nil, errUnknownKID
	}
	return k.Material(), nil
}

// Signed reports whether token carries a valid signature by one of
// Portero's session-token keys, whatever its claims (it may have expired).
// The proxy uses it to keep Portero's bearer tokens from the upstream.
func (s *SessionTokens) Signed(token string) bool {
	if checkShape(token, MaxSessionTokenBytes) != nil {
		return false
	}
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithoutClaimsValidation())
	_, err := p.Parse(token, s.keyFor)
	return err == nil
}
