package authn

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Identity assertion (X-Auth-Assertion) settings.
const (
	// AssertionHS256 signs assertions with a key derived from secret_key:
	// upstreams that verify must share the secret (a Go upstream uses
	// Assertions.Verify with the same Keyring).
	AssertionHS256 = "HS256"
	// AssertionEdDSA signs with an Ed25519 key derived from secret_key;
	// upstreams verify with the public key alone (JWKS), so no upstream ever
	// holds anything that could mint an assertion.
	AssertionEdDSA = "EdDSA"

	// MaxAssertionTTL is the longest an assertion lives. An assertion rides
	// on one proxied request; a minute covers a slow upstream and the clock
	// skew between hosts.
	MaxAssertionTTL = 60 * time.Second
	// DefaultAssertionTTL is used when AssertionConfig.TTL is zero.
	DefaultAssertionTTL = 30 * time.Second

	// MaxAssertionBytes bounds an assertion before it is decoded.
	MaxAssertionBytes = 8192

	jtiBytes = 16
)

// Identity is who an assertion speaks for.
type Identity struct {
	UserID   string
	Email    string
	Roles    []string
	LegacyID *int64
}

// AssertionClaims are the facts of a verified assertion.
type AssertionClaims struct {
	Identity
	Audience  string
	ID        string // jti, unique per assertion, for upstreams that refuse replays
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// AssertionConfig are the optional settings of NewAssertions.
type AssertionConfig struct {
	// Algorithm is AssertionHS256 (default) or AssertionEdDSA.
	Algorithm string
	// TTL is how long an assertion lives: zero means DefaultAssertionTTL;
	// anything above MaxAssertionTTL is clamped to it.
	TTL time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Assertions mints the short-lived JWTs Portero forwards upstream in
// X-Auth-Assertion: iss "portero", aud = the upstream, sub = user id,
// email, roles, legacy_id (when the user has one), iat, exp (at most 60 s
// later) and a random jti, signed with a kid naming the key. Safe for
// concurrent use.
type Assertions struct {
	alg      string
	ttl      time.Duration
	now      func() time.Time
	hmacKeys *DerivedKeys // AssertionHS256
	edKeys   []ed25519Key // AssertionEdDSA, current first
	verifier *assertionVerifier

	// newJTI makes the jti; tests replace it to get reproducible tokens
	// (a fuzz worker must mint exactly the seed the coordinator made).
	newJTI func() string
}

type ed25519Key struct {
	id   string
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// Format prints the settings and kids, never key material (see
// DerivedKeys.Format).
func (a Assertions) Format(f fmt.State, _ rune) {
	var kids []string
	if a.hmacKeys != nil {
		kids = a.hmacKeys.kids()
	}
	for _, k := range a.edKeys {
		kids = append(kids, k.id)
	}
	fmt.Fprintf(f, "authn.Assertions{alg:%s ttl:%s kids:%s}", a.alg, a.ttl, kids)
}

// NewAssertions derives the assertion keys from ring.
func NewAssertions(ring *Keyring, cfg AssertionConfig) (*Assertions, error) {
	a := &Assertions{alg: cfg.Algorithm, ttl: cfg.TTL, now: cfg.Now, newJTI: randomJTI}
	if a.alg == "" {
		a.alg = AssertionHS256
	}
	if a.now == nil {
		a.now = time.Now
	}
	switch {
	case a.ttl < 0:
		return nil, fmt.Errorf("%w: negative assertion ttl", ErrTokenConfig)
	case a.ttl == 0:
		a.ttl = DefaultAssertionTTL
	case a.ttl < time.Second:
		// exp is in whole seconds; a shorter ttl would make tokens that are
		// already expired when minted.
		a.ttl = time.Second
	case a.ttl > MaxAssertionTTL:
		a.ttl = MaxAssertionTTL
	}
	switch a.alg {
	case AssertionHS256:
		keys, err := ring.Derive(PurposeAssertion)
		if err != nil {
			return nil, err
		}
		a.hmacKeys = keys
		a.verifier = newAssertionVerifier(jwt.SigningMethodHS256, a.now, func(kid string) (any, bool) {
			k, ok := keys.Lookup(kid)
			return k.Material(), ok
		})
	case AssertionEdDSA:
		seeds, err := ring.Derive(PurposeAssertionEdDSA)
		if err != nil {
			return nil, err
		}
		for _, s := range seeds.All() {
			priv := ed25519.NewKeyFromSeed(s.Material())
			pub := priv.Public().(ed25519.PublicKey)
			a.edKeys = append(a.edKeys, ed25519Key{id: ed25519KeyID(pub), priv: priv, pub: pub})
		}
		a.verifier = newAssertionVerifier(jwt.SigningMethodEdDSA, a.now, a.edPublicKey)
	default:
		return nil, fmt.Errorf("%w: assertion algorithm must be %s or %s", ErrTokenConfig, AssertionHS256, AssertionEdDSA)
	}
	return a, nil
}

// ed25519KeyID names an Ed25519 key by its public half, the way a verifier
// holding only the JWKS could recompute it. It is the keyID scheme applied
// to the public key instead of the secret.
func ed25519KeyID(pub ed25519.PublicKey) string {
	return keyID(PurposeAssertionEdDSA+"/public", pub)
}

func (a *Assertions) edPublicKey(kid string) (any, bool) {
	for _, k := range a.edKeys {
		if k.id == kid {
			return k.pub, true
		}
	}
	return nil, false
}

// Algorithm is the JWT alg assertions are signed with.
func (a *Assertions) Algorithm() string { return a.alg }

// TTL is the lifetime of a minted assertion, after defaults and clamping.
func (a *Assertions) TTL() time.Duration { return a.ttl }

// assertionBody is the payload Mint signs. roles is always an array (never
// null) so upstreams need no special case for a user without roles.
type assertionBody struct {
	Iss      string   `json:"iss"`
	Aud      string   `json:"aud"`
	Sub      string   `json:"sub"`
	Email    string   `json:"email"`
	Roles    []string `json:"roles"`
	LegacyID *int64   `json:"legacy_id,omitempty"`
	Iat      int64    `json:"iat"`
	Exp      int64    `json:"exp"`
	Jti      string   `json:"jti"`
}

// Mint signs an assertion of id for the upstream named by audience.
func (a *Assertions) Mint(id Identity, audience string) (string, error) {
	switch {
	case id.UserID == "":
		return "", fmt.Errorf("%w: empty user id", ErrTokenInput)
	case audience == "":
		return "", fmt.Errorf("%w: empty audience", ErrTokenInput)
	}
	roles := id.Roles
	if roles == nil {
		roles = []string{}
	}
	now := a.now()
	body := assertionBody{
		Iss:      TokenIssuer,
		Aud:      audience,
		Sub:      id.UserID,
		Email:    id.Email,
		Roles:    roles,
		LegacyID: id.LegacyID,
		Iat:      now.Unix(),
		Exp:      now.Add(a.ttl).Unix(),
		Jti:      a.newJTI(),
	}
	if a.alg == AssertionEdDSA {
		k := a.edKeys[0]
		return signCompact(jwt.SigningMethodEdDSA, k.id, body, k.priv)
	}
	k := a.hmacKeys.Current()
	return signCompact(jwt.SigningMethodHS256, k.ID, body, k.Material())
}

// randomJTI is 128 random bits, unpadded base64url.
func randomJTI() string {
	var jti [jtiBytes]byte
	_, _ = rand.Read(jti[:]) // never fails since Go 1.24 (it crashes instead)
	return base64.RawURLEncoding.EncodeToString(jti[:])
}

// Verify checks an assertion meant for audience, as an upstream would:
// the configured algorithm only, a known kid, iss "portero", the audience,
// exp present and not past, a lifetime of at most MaxAssertionTTL, sub and
// jti present. Every failure is ErrInvalidToken.
func (a *Assertions) Verify(token, audience string) (AssertionClaims, error) {
	return a.verifier.verify(token, audience)
}

// JWK is one public key in JSON Web Key form (RFC 8037 for Ed25519).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKSet is a JSON Web Key Set: {"keys": [...]}.
type JWKSet struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the public keys upstreams verify EdDSA assertions with, the
// current first, previous ones kept during rotation. With HS256 there is no
// public key, and the set is empty: a symmetric key is never published.
func (a *Assertions) JWKS() JWKSet {
	set := JWKSet{Keys: make([]JWK, 0, len(a.edKeys))}
	for _, k := range a.edKeys {
		set.Keys = append(set.Keys, JWK{
			Kty: "OKP",
			Crv: "Ed25519",
			X:   base64.RawURLEncoding.EncodeToString(k.pub),
			Kid: k.id,
			Alg: AssertionEdDSA,
			Use: "sig",
		})
	}
	return set
}

// AssertionVerifier checks EdDSA assertions with public keys only; it is
// what a Go upstream that does not share secret_key uses, fed with the JWKS
// Portero publishes.
type AssertionVerifier struct {
	v *assertionVerifier
}

// NewAssertionVerifier builds a verifier from a JWKS. Only Ed25519 keys
// (kty OKP, crv Ed25519, alg EdDSA or empty) are taken; anything else in
// the set is an error rather than silently skipped, so a misconfigured set
// is noticed at start-up. now is the clock (nil: time.Now).
func NewAssertionVerifier(set JWKSet, now func() time.Time) (*AssertionVerifier, error) {
	if now == nil {
		now = time.Now
	}
	keys := make(map[string]ed25519.PublicKey, len(set.Keys))
	for i, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Alg != "" && k.Alg != AssertionEdDSA) || k.Kid == "" {
			return nil, fmt.Errorf("%w: jwks key %d is not an Ed25519 signing key with a kid", ErrTokenConfig, i)
		}
		x, err := base64.RawURLEncoding.Strict().DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: jwks key %d has a malformed x", ErrTokenConfig, i)
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("%w: jwks key %d repeats a kid", ErrTokenConfig, i)
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: jwks has no keys", ErrTokenConfig)
	}
	return &AssertionVerifier{v: newAssertionVerifier(jwt.SigningMethodEdDSA, now, func(kid string) (any, bool) {
		k, ok := keys[kid]
		return k, ok
	})}, nil
}

// Verify checks an assertion exactly as Assertions.Verify does.
func (v *AssertionVerifier) Verify(token, audience string) (AssertionClaims, error) {
	return v.v.verify(token, audience)
}

// assertionVerifier is the verification shared by Assertions and
// AssertionVerifier: one pinned method, keys found by kid.
type assertionVerifier struct {
	method jwt.SigningMethod
	now    func() time.Time
	key    func(kid string) (any, bool)
}

func newAssertionVerifier(method jwt.SigningMethod, now func() time.Time, key func(string) (any, bool)) *assertionVerifier {
	return &assertionVerifier{method: method, now: now, key: key}
}

// assertionClaims is what verify decodes into.
type assertionClaims struct {
	jwt.RegisteredClaims
	Email    string   `json:"email"`
	Roles    []string `json:"roles"`
	LegacyID *int64   `json:"legacy_id"`
}

func (c *assertionClaims) Validate() error {
	if c.Subject == "" || c.ID == "" {
		return errMissingClaim
	}
	return requireTimes(&c.RegisteredClaims, MaxAssertionTTL)
}

func (v *assertionVerifier) verify(token, audience string) (AssertionClaims, error) {
	if err := checkShape(token, MaxAssertionBytes); err != nil {
		return AssertionClaims{}, err
	}
	if audience == "" {
		// An empty expected audience would make golang-jwt skip the check.
		return AssertionClaims{}, invalidToken(errClaimValue)
	}
	// The audience differs per call, so the parser is made per call; its
	// options are a handful of field writes.
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{v.method.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(TokenIssuer),
		jwt.WithAudience(audience),
		jwt.WithLeeway(TokenLeeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithStrictDecoding(),
	)
	var c assertionClaims
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if t.Method != v.method {
			return nil, errUnexpectedAlg
		}
		if err := checkHeader(t); err != nil {
			return nil, err
		}
		kid, err := headerKID(t)
		if err != nil {
			return nil, err
		}
		k, ok := v.key(kid)
		if !ok {
			return nil, errUnknownKID
		}
		return k, nil
	})
	if err != nil {
		return AssertionClaims{}, invalidToken(err)
	}
	return AssertionClaims{
		Identity: Identity{
			UserID:   c.Subject,
			Email:    c.Email,
			Roles:    c.Roles,
			LegacyID: c.LegacyID,
		},
		Audience:  audience,
		ID:        c.ID,
		IssuedAt:  c.IssuedAt.Time,
		ExpiresAt: c.ExpiresAt.Time,
	}, nil
}
