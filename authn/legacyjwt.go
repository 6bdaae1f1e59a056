package authn

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Legacy subject kinds: what the legacy app puts in its subject claim.
const (
	// LegacySubjectID: the legacy app's integer user id, as python-jose
	// apps write it ({"sub": "42"}, sub being a string per RFC 7519).
	LegacySubjectID = "legacy_id"
	// LegacySubjectEmail: the user's e-mail address.
	LegacySubjectEmail = "email"

	// DefaultLegacyClaim is where python-jose apps put the user.
	DefaultLegacyClaim = "sub"

	// MaxLegacyTokenBytes bounds a legacy JWT before it is decoded; legacy
	// tokens may carry extra claims, so the bound is looser than ours.
	MaxLegacyTokenBytes = 8192

	maxLegacyEmailBytes = 320
)

// LegacyConfig describes the legacy app's own JWTs (configs.Legacy, plus
// the optional checks the legacy app performs).
type LegacyConfig struct {
	// Secret is the legacy app's signing secret (its SECRET_KEY). It is the
	// legacy app's choice, so no minimum length beyond non-empty is imposed.
	Secret []byte
	// Algorithm is HS256 (default), HS384 or HS512. Tokens signed with any
	// other algorithm, including another of these three, are refused.
	Algorithm string
	// Subject is LegacySubjectID (default) or LegacySubjectEmail.
	Subject string
	// Claim names the claim holding the subject; default "sub".
	Claim string
	// NumericID makes Mint write a legacy id as a JSON number instead of a
	// string; for apps that keep the id in a claim of their own
	// ({"user_id": 42}). Not allowed with the "sub" claim, which RFC 7519 and
	// python-jose require to be a string.
	NumericID bool
	// Audience and Issuer, when set, are required on verified tokens and
	// written into minted ones. When empty, Mint writes neither: python-jose
	// refuses a token with an "aud" its caller did not ask for.
	Audience string
	Issuer   string
	// Now is the clock deciding expiry (nil: time.Now).
	Now func() time.Time
}

// LegacySubject is who a legacy JWT names: exactly one of LegacyID and
// Email is set, according to the configured subject kind.
type LegacySubject struct {
	LegacyID *int64
	Email    string
	// ExpiresAt is when Verify stops accepting the token (its exp plus
	// TokenLeeway): a verified token may be remembered until then, never after.
	ExpiresAt time.Time
}

// LegacyTokens verifies the legacy app's JWTs (dual mode) and mints new
// ones in the same layout (legacy_token routes), so the unchanged legacy
// app accepts them. Safe for concurrent use.
type LegacyTokens struct {
	cfg    LegacyConfig
	secret []byte
	method *jwt.SigningMethodHMAC
	parser *jwt.Parser
}

// NewLegacyTokens checks cfg and applies the defaults.
func NewLegacyTokens(cfg LegacyConfig) (*LegacyTokens, error) {
	if len(cfg.Secret) == 0 {
		return nil, fmt.Errorf("%w: legacy jwt secret is empty", ErrWeakSecret)
	}
	secret := append([]byte(nil), cfg.Secret...)
	cfg.Secret = nil // kept once, in secret
	if cfg.Algorithm == "" {
		cfg.Algorithm = jwt.SigningMethodHS256.Alg()
	}
	if cfg.Subject == "" {
		cfg.Subject = LegacySubjectID
	}
	if cfg.Claim == "" {
		cfg.Claim = DefaultLegacyClaim
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var method *jwt.SigningMethodHMAC
	switch cfg.Algorithm {
	case "HS256":
		method = jwt.SigningMethodHS256
	case "HS384":
		method = jwt.SigningMethodHS384
	case "HS512":
		method = jwt.SigningMethodHS512
	default:
		return nil, fmt.Errorf("%w: legacy jwt algorithm must be HS256, HS384 or HS512", ErrTokenConfig)
	}
	if cfg.Subject != LegacySubjectID && cfg.Subject != LegacySubjectEmail {
		return nil, fmt.Errorf("%w: legacy subject must be %s or %s", ErrTokenConfig, LegacySubjectID, LegacySubjectEmail)
	}
	switch cfg.Claim {
	case "exp", "iat", "nbf", "aud", "iss", "jti":
		return nil, fmt.Errorf("%w: legacy subject claim cannot be a registered time or audience claim", ErrTokenConfig)
	}
	if cfg.NumericID && (cfg.Claim == DefaultLegacyClaim || cfg.Subject != LegacySubjectID) {
		return nil, fmt.Errorf("%w: numeric legacy ids need a claim other than sub and the legacy_id subject", ErrTokenConfig)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{method.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(TokenLeeway),
		jwt.WithTimeFunc(cfg.Now),
		// Numbers stay json.Number, so an id is never rounded through float64.
		jwt.WithJSONNumber(),
		// Legitimate encoders (python-jose, PyJWT) write canonical base64url;
		// strict decoding refuses the trailing-bit variants of a signature.
		jwt.WithStrictDecoding(),
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	return &LegacyTokens{cfg: cfg, secret: secret, method: method, parser: jwt.NewParser(opts...)}, nil
}

// Verify checks a legacy JWT (signature with the pinned algorithm, exp
// required and enforced, nbf if present, aud and iss if configured) and
// returns its subject. Every failure is ErrInvalidToken.
func (l *LegacyTokens) Verify(token string) (LegacySubject, error) {
	if err := checkShape(token, MaxLegacyTokenBytes); err != nil {
		return LegacySubject{}, err
	}
	claims := jwt.MapClaims{}
	if _, err := l.parser.ParseWithClaims(token, claims, l.keyFor); err != nil {
		return LegacySubject{}, invalidToken(err)
	}
	if _, hasAud := claims["aud"]; hasAud && l.cfg.Audience == "" {
		// python-jose refuses a token carrying an audience its caller did
		// not ask for; a token meant for another service sharing the legacy
		// secret is not a login to this app, here either.
		return LegacySubject{}, invalidToken(errClaimValue)
	}
	sub, err := l.subject(claims[l.cfg.Claim])
	if err != nil {
		return LegacySubject{}, invalidToken(err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil { // the parser requires exp: cannot happen
		return LegacySubject{}, invalidToken(errClaimValue)
	}
	sub.ExpiresAt = exp.Add(TokenLeeway)
	return sub, nil
}

// Format prints the settings, never the secret: fmt cannot be kept out of
// unexported fields any other way, and a logged *LegacyTokens must not leak.
func (l LegacyTokens) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "authn.LegacyTokens{alg:%s subject:%s claim:%s}", l.cfg.Algorithm, l.cfg.Subject, l.cfg.Claim)
}

func (l *LegacyTokens) keyFor(t *jwt.Token) (any, error) {
	if t.Method != l.method {
		return nil, errUnexpectedAlg
	}
	if err := checkHeader(t); err != nil {
		return nil, err
	}
	return l.secret, nil
}

// subject reads the configured claim. A string is what python-jose apps
// write; a JSON integer is accepted only in a claim other than sub (RFC 7519
// makes sub a string, and python-jose refuses anything else there).
func (l *LegacyTokens) subject(v any) (LegacySubject, error) {
	var s string
	switch v := v.(type) {
	case nil:
		return LegacySubject{}, errMissingClaim
	case string:
		s = v
	case json.Number:
		if l.cfg.Claim == DefaultLegacyClaim || l.cfg.Subject != LegacySubjectID {
			return LegacySubject{}, errClaimType
		}
		s = v.String()
	default:
		return LegacySubject{}, errClaimType
	}
	if l.cfg.Subject == LegacySubjectEmail {
		if !plausibleEmail(s) {
			return LegacySubject{}, errClaimValue
		}
		return LegacySubject{Email: s}, nil
	}
	id, ok := parseLegacyID(s)
	if !ok {
		return LegacySubject{}, errClaimValue
	}
	return LegacySubject{LegacyID: &id}, nil
}

// parseLegacyID accepts a non-negative decimal integer in its one canonical
// spelling (str(42) in Python): no sign, no leading zeros, no spaces, no
// fraction or exponent, within int64.
func parseLegacyID(s string) (int64, bool) {
	if s == "" || len(s) > 19 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return id, true
}

// plausibleEmail is a sanity check, not a validator: the address is only
// used to look a user up (case-insensitively), so it must merely be
// something a user row could hold: valid UTF-8, one '@' with text either
// side, no spaces or control characters, at most 320 bytes.
func plausibleEmail(s string) bool {
	if len(s) > maxLegacyEmailBytes || !utf8.ValidString(s) {
		return false
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.IndexByte(s[at+1:], '@') >= 0 {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Mint makes a legacy-format JWT for subject, valid for ttl: the header
// python-jose writes ({"alg":…,"typ":"JWT"}), the subject claim (a string
// unless NumericID), integer exp and iat, and aud/iss only when configured.
// subject must carry what the configured kind needs (LegacyID or Email).
func (l *LegacyTokens) Mint(subject LegacySubject, ttl time.Duration) (string, error) {
	if ttl < time.Second {
		return "", fmt.Errorf("%w: legacy token lifetime must be at least a second", ErrTokenInput)
	}
	var value any
	switch l.cfg.Subject {
	case LegacySubjectID:
		if subject.LegacyID == nil || *subject.LegacyID < 0 {
			return "", fmt.Errorf("%w: user has no legacy id", ErrTokenInput)
		}
		if l.cfg.NumericID {
			value = *subject.LegacyID
		} else {
			value = strconv.FormatInt(*subject.LegacyID, 10)
		}
	case LegacySubjectEmail:
		if !plausibleEmail(subject.Email) {
			return "", fmt.Errorf("%w: user has no usable e-mail", ErrTokenInput)
		}
		value = subject.Email
	}
	now := l.cfg.Now()
	claims := map[string]any{
		l.cfg.Claim: value,
		"iat":       now.Unix(),
		"exp":       now.Add(ttl).Unix(),
	}
	if l.cfg.Audience != "" {
		claims["aud"] = l.cfg.Audience
	}
	if l.cfg.Issuer != "" {
		claims["iss"] = l.cfg.Issuer
	}
	return signCompact(l.method, "", claims, l.secret)
}
