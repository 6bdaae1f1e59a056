package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/portero/portero/proxy"
	"github.com/portero/portero/sessions"
)

// Credentials finds the Portero session a request carries: the session
// cookie, or a bearer JWT naming a live session. It also serves the proxy's
// gateway and dual routes.
type Credentials struct {
	svc        *Service
	cookieName string
	legacy     *LegacyTokens // nil when no legacy secret is configured
	cache      *ttlCache[proxy.Identity]
	// bearers remembers verified bearer JWTs for a minute: the signature
	// check is the costliest step of a bearer request. The session behind
	// the token is still looked up on every request, so logout and
	// revocation act at once.
	bearers *ttlCache[SessionClaims]
	// foreign remembers bearer tokens Portero did not sign, and legacyJWTs
	// the legacy tokens verified, for a minute (never past a legacy token's
	// expiry): on a dual route every request carries one, and verifying it
	// again each time was most of what the route cost.
	foreign   *ttlCache[struct{}]
	legacyJWT *ttlCache[LegacySubject]
	// signed remembers tokens whose signature is Portero's, for OwnToken.
	signed *ttlCache[struct{}]
}

// NewCredentials builds the request authenticator.
func NewCredentials(svc *Service, cookieName string, legacy *LegacyTokens) *Credentials {
	return &Credentials{svc: svc, cookieName: cookieName, legacy: legacy,
		cache: newTTLCache[proxy.Identity](30*time.Second, 10000), bearers: newTTLCache[SessionClaims](time.Minute, 10000),
		foreign: newTTLCache[struct{}](time.Minute, 10000), legacyJWT: newTTLCache[LegacySubject](time.Minute, 10000),
		signed: newTTLCache[struct{}](time.Minute, 10000)}
}

// parseBearer verifies a session JWT, or finds it verified a moment ago.
func (c *Credentials) parseBearer(raw string) (SessionClaims, error) {
	now := c.svc.now()
	if claims, ok := c.bearers.get(raw, now); ok && now.Before(claims.ExpiresAt) {
		return claims, nil
	}
	if _, ok := c.foreign.get(raw, now); ok {
		return SessionClaims{}, errForeignToken
	}
	claims, err := c.svc.tokens.Parse(raw)
	if err != nil {
		if !c.svc.tokens.Signed(raw) {
			c.foreign.put(raw, struct{}{}, now)
		}
		return SessionClaims{}, err
	}
	c.bearers.put(raw, claims, now)
	return claims, nil
}

// errForeignToken is a bearer token Portero did not sign (remembered);
// errForeignCredentials is how Principal reports it, made once since every
// request of a dual route with a legacy token meets it.
var (
	errForeignToken       = fmt.Errorf("%w: not signed by Portero", ErrInvalidToken)
	errForeignCredentials = fmt.Errorf("%w: %w", proxy.ErrInvalidCredentials, errForeignToken)
)

// Principal authenticates a request to Portero's own endpoints.
func (c *Credentials) Principal(ctx context.Context, r *http.Request, slide bool) (Principal, error) {
	if ck, err := r.Cookie(c.cookieName); err == nil && ck.Value != "" {
		tok, err := sessions.ParseToken(ck.Value)
		if err != nil {
			return Principal{}, proxy.ErrInvalidCredentials
		}
		sess, err := c.load(ctx, tok.Key(), slide)
		if err != nil {
			return Principal{}, err
		}
		return Principal{Session: sess, Via: "cookie"}, nil
	}
	raw, ok := bearer(r)
	if !ok {
		return Principal{}, proxy.ErrNoCredentials
	}
	claims, err := c.parseBearer(raw)
	switch {
	case errors.Is(err, errForeignToken):
		return Principal{}, errForeignCredentials
	case err != nil:
		return Principal{}, fmt.Errorf("%w: %w", proxy.ErrInvalidCredentials, err)
	}
	key, err := sessions.KeyOf(claims.SessionKey)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", proxy.ErrInvalidCredentials, err)
	}
	sess, err := c.load(ctx, key, slide)
	if err != nil {
		return Principal{}, err
	}
	if sess.UserID != claims.UserID {
		return Principal{}, proxy.ErrInvalidCredentials
	}
	return Principal{Session: sess, Via: "bearer"}, nil
}

func (c *Credentials) load(ctx context.Context, key string, slide bool) (sessions.Session, error) {
	var sess sessions.Session
	var err error
	if slide {
		sess, err = c.svc.sessions.Touch(ctx, key, c.svc.now())
	} else {
		sess, err = c.svc.sessions.Get(ctx, key)
	}
	switch {
	case err == nil:
		return sess, nil
	case errors.Is(err, sessions.ErrNotFound):
		return sessions.Session{}, proxy.ErrInvalidCredentials
	default:
		return sessions.Session{}, fmt.Errorf("%w: %w", proxy.ErrAuthUnavailable, err)
	}
}

func bearer(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(v[len(prefix):]), true
}

// Session implements proxy.Authenticator for gateway and dual routes. A
// bearer token that is not Portero's counts as no credentials, so a dual
// route can try it as a legacy token next.
func (c *Credentials) Session(ctx context.Context, r *http.Request, slide bool) (proxy.Identity, error) {
	p, err := c.Principal(ctx, r, slide)
	if err != nil {
		if errors.Is(err, errForeignToken) {
			return proxy.Identity{}, proxy.ErrNoCredentials
		}
		if _, isBearer := bearer(r); isBearer && errors.Is(err, proxy.ErrInvalidCredentials) && !c.IsOwnToken(r) {
			return proxy.Identity{}, proxy.ErrNoCredentials
		}
		return proxy.Identity{}, err
	}
	s := p.Session
	return proxy.Identity{UserID: s.UserID, Email: s.Email, Roles: s.Roles, Permissions: s.Permissions, LegacyID: s.LegacyID, Via: p.Via}, nil
}

// IsOwnToken reports whether the request's bearer token was signed by
// Portero (the session behind it may be dead).
func (c *Credentials) IsOwnToken(r *http.Request) bool {
	raw, ok := bearer(r)
	return ok && c.OwnToken(raw)
}

// OwnToken reports whether token was signed by Portero, whether or not its
// session lives. Legacy and shadow routes ask on every request that carries
// one (to count it and to keep it from the upstream), so the answer is
// remembered both ways: checking the signature each time made a legacy
// route half as fast for clients already holding Portero tokens.
func (c *Credentials) OwnToken(token string) bool {
	now := c.svc.now()
	if _, known := c.foreign.get(token, now); known {
		return false
	}
	if _, known := c.bearers.get(token, now); known {
		return true
	}
	if _, known := c.signed.get(token, now); known {
		return true
	}
	if c.svc.tokens.Signed(token) {
		c.signed.put(token, struct{}{}, now)
		return true
	}
	c.foreign.put(token, struct{}{}, now)
	return false
}

// Legacy implements proxy.Authenticator: a valid legacy JWT, mapped to the
// Portero user by legacy id or e-mail. Lookups are cached briefly so a busy
// dual route does not query the database on every request.
func (c *Credentials) Legacy(ctx context.Context, r *http.Request) (proxy.Identity, error) {
	raw, ok := bearer(r)
	if !ok || c.legacy == nil {
		return proxy.Identity{}, proxy.ErrNoCredentials
	}
	// The verifier's clock decides expiry, cached or not.
	now := c.legacy.cfg.Now()
	subj, ok := c.legacyJWT.get(raw, now)
	if !ok || !now.Before(subj.ExpiresAt) {
		var err error
		if subj, err = c.legacy.Verify(raw); err != nil {
			return proxy.Identity{}, fmt.Errorf("%w: %w", proxy.ErrInvalidCredentials, err)
		}
		c.legacyJWT.put(raw, subj, now)
	}
	key := subj.Email
	if subj.LegacyID != nil {
		key = fmt.Sprintf("#%d", *subj.LegacyID)
	}
	if id, ok := c.cache.get(key, c.svc.now()); ok {
		return id, nil
	}
	var u User
	var err error
	if subj.LegacyID != nil {
		u, err = c.svc.users.UserByLegacyID(ctx, *subj.LegacyID)
	} else {
		u, err = c.svc.users.UserByEmail(ctx, subj.Email)
	}
	switch {
	case errors.Is(err, ErrUserNotFound):
		return proxy.Identity{}, proxy.ErrInvalidCredentials
	case err != nil:
		return proxy.Identity{}, fmt.Errorf("%w: %w", proxy.ErrAuthUnavailable, err)
	case !u.IsActive:
		return proxy.Identity{}, proxy.ErrInvalidCredentials
	}
	roles, perms := identityOf(u)
	id := proxy.Identity{UserID: u.ID, Email: u.Email, Roles: roles, Permissions: perms, LegacyID: u.LegacyID, Via: "legacy_jwt"}
	c.cache.put(key, id, c.svc.now())
	return id, nil
}

// ttlCache remembers values for a short time, bounded in size.
type ttlCache[V any] struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[V any](ttl time.Duration, max int) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: max, entries: map[string]ttlEntry[V]{}}
}

func (c *ttlCache[V]) get(key string, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(key string, v V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		clear(c.entries) // crude but bounded; refills within one TTL
	}
	c.entries[key] = ttlEntry[V]{v: v, expires: now.Add(c.ttl)}
}
