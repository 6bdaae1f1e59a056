package authn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/portero/portero/proxy"
)

// Where a CSRF token travels: JSON clients send the header, HTML forms the
// field. GET /auth/csrf hands the token to a single-page app.
const (
	CSRFHeader    = "X-CSRF-Token"
	CSRFFormField = "csrf_token"
)

// CSRF makes and checks the tokens that protect cookie-authenticated
// state-changing requests to Portero's own endpoints.
//
// A token is "v1.<salt>.<mac>": a fresh random salt and an HMAC-SHA256,
// keyed by the keyring's PurposeCSRF key, over the salt and a digest of what
// the token is bound to:
//   - for a signed-in browser, the session cookie's value. A cross-site page
//     can make the browser send the cookie but can neither read it nor read
//     a page of ours, so it cannot produce the matching token. Nothing is
//     stored: every instance sharing the secret checks every token, and a
//     token dies with the cookie it was made for.
//   - before sign-in, a random nonce in a cookie of its own (a signed double
//     submit), so a cross-site page cannot sign a browser into the attacker's
//     account either.
//
// The salt makes each rendering of a token different, so a compressed
// response never repeats a secret byte for byte (BREACH). Tokens made with a
// previous secret keep verifying until that secret leaves the keyring.
type CSRF struct {
	keys *DerivedKeys
}

// NewCSRF derives the CSRF key from the keyring.
func NewCSRF(ring *Keyring) (*CSRF, error) {
	keys, err := ring.Derive(PurposeCSRF)
	if err != nil {
		return nil, err
	}
	return &CSRF{keys: keys}, nil
}

// newRandomCSRF is the fallback when Handlers are built without a CSRF: a
// key of this process only, so protection is never off; tokens then do not
// verify on other instances or after a restart.
func newRandomCSRF() *CSRF {
	secret := make([]byte, MinSecretBytes)
	_, _ = rand.Read(secret)
	ring, err := NewKeyring(secret)
	if err != nil {
		panic(fmt.Sprintf("authn: random CSRF keyring: %v", err)) // unreachable: the secret is long enough
	}
	c, err := NewCSRF(ring)
	if err != nil {
		panic(fmt.Sprintf("authn: random CSRF key: %v", err)) // unreachable: the purpose is fixed
	}
	return c
}

// Token kinds, part of what the MAC covers, so a token of one kind never
// verifies as the other.
const (
	csrfKindSession = "session"
	csrfKindSignIn  = "signin"
	csrfVersion     = "v1"
	csrfSaltLen     = 16
)

// SessionToken is the token for requests that carry the session cookie with
// this value.
func (c *CSRF) SessionToken(cookieValue string) string {
	return c.make(csrfKindSession, cookieValue)
}

// ValidSession reports whether token was made for this session cookie value.
func (c *CSRF) ValidSession(cookieValue, token string) bool {
	return c.valid(csrfKindSession, cookieValue, token)
}

func (c *CSRF) signInToken(nonce string) string { return c.make(csrfKindSignIn, nonce) }

func (c *CSRF) validSignIn(nonce, token string) bool {
	return nonce != "" && c.valid(csrfKindSignIn, nonce, token)
}

func (c *CSRF) make(kind, binding string) string {
	salt := make([]byte, csrfSaltLen)
	_, _ = rand.Read(salt)
	mac := csrfMAC(c.keys.Current().Material(), kind, binding, salt)
	enc := base64.RawURLEncoding
	return csrfVersion + "." + enc.EncodeToString(salt) + "." + enc.EncodeToString(mac)
}

func (c *CSRF) valid(kind, binding, token string) bool {
	if binding == "" || len(token) > 128 {
		return false
	}
	version, rest, ok := strings.Cut(token, ".")
	if !ok || version != csrfVersion {
		return false
	}
	saltText, macText, ok := strings.Cut(rest, ".")
	if !ok {
		return false
	}
	enc := base64.RawURLEncoding
	salt, err := enc.DecodeString(saltText)
	if err != nil || len(salt) != csrfSaltLen {
		return false
	}
	mac, err := enc.DecodeString(macText)
	if err != nil || len(mac) != sha256.Size {
		return false
	}
	for _, k := range c.keys.All() {
		if hmac.Equal(mac, csrfMAC(k.Material(), kind, binding, salt)) {
			return true
		}
	}
	return false
}

// csrfMAC covers a label, the kind, a digest of the binding (fixed length,
// so no two kind/binding pairs run together) and the salt.
func csrfMAC(key []byte, kind, binding string, salt []byte) []byte {
	sum := sha256.Sum256([]byte(binding))
	m := hmac.New(sha256.New, key)
	m.Write([]byte("portero/csrf/" + csrfVersion + "\x00" + kind + "\x00"))
	m.Write(sum[:])
	m.Write(salt)
	return m.Sum(nil)
}

// newNonce is the value of the pre-sign-in cookie: 256 random bits.
func newNonce() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signInCookieName is the pre-sign-in cookie's name. With Secure cookies it
// takes the __Host- prefix: the browser then refuses it from a sibling
// subdomain or over plain HTTP, so nobody can plant a nonce whose token
// they know.
func (b *browser) signInCookieName() string {
	if b.h.cfg.CookieSecure {
		return SignInCookieSecure
	}
	return SignInCookiePlain
}

// The names the sign-in form's cookie may have; the proxy keeps them from
// the upstream like the session cookie.
const (
	SignInCookieSecure = "__Host-portero_signin"
	SignInCookiePlain  = "portero_signin"
)

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// csrfProtect guards every state-changing request that carries the session
// cookie: it must come from Portero's own origin (Origin, else Referer) and
// carry the session's token in X-CSRF-Token or the csrf_token form field.
// Requests without the cookie (bearer tokens, anonymous calls) cannot ride
// on a browser's ambient credentials and pass untouched. The routes that
// take a password instead of the cookie are the exceptions: the sign-in
// forms (password, code step, second-factor set-up) check their own
// pre-session token and the origin, and the cookie login API (whose JSON a
// cross-site page cannot send without a CORS preflight we never grant, but
// whose form variant it can) checks the origin.
func (b *browser) csrfProtect(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if safeMethod(r.Method) {
			return next(c)
		}
		route := strings.TrimPrefix(c.Path(), b.h.cfg.APIPrefix)
		switch route {
		case "/auth/login", "/auth/mfa/verify", pathSignIn, pathSignMFA, pathEnrol:
			return next(c)
		case "/auth/cookie/login", "/auth/cookie/mfa/verify":
			if !sameOrigin(r) {
				return b.csrfRefused(c, "CSRF_ORIGIN_MISMATCH")
			}
			return next(c)
		}
		ck, err := r.Cookie(b.h.cfg.CookieName)
		if err != nil || ck.Value == "" {
			return next(c)
		}
		if !sameOrigin(r) {
			return b.csrfRefused(c, "CSRF_ORIGIN_MISMATCH")
		}
		token := r.Header.Get(CSRFHeader)
		if token == "" {
			token = formToken(c)
		}
		switch {
		case token == "":
			return b.csrfRefused(c, "CSRF_TOKEN_MISSING")
		case !b.csrf.ValidSession(ck.Value, token):
			return b.csrfRefused(c, "CSRF_TOKEN_INVALID")
		}
		return next(c)
	}
}

// formToken reads the csrf_token field of a url-encoded body, bounded like
// every other body; the handler then finds the form already parsed.
func formToken(c echo.Context) string {
	r := c.Request()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return ""
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		return ""
	}
	return r.PostForm.Get(CSRFFormField)
}

// csrfRefused answers 403: a page for the browser pages, FastAPI-style JSON
// for the API.
func (b *browser) csrfRefused(c echo.Context, code string) error {
	r := c.Request()
	b.h.log.Info("cross-site request refused", zap.String("request_id", proxy.RequestID(r.Context())),
		zap.String("path", c.Path()), zap.String("method", r.Method), zap.String("reason", code),
		zap.String("origin", r.Header.Get("Origin")))
	b.h.svc.flows.metrics.csrfRefused(code)
	if b.isPage(c) {
		return b.render(c, http.StatusForbidden, tplMessage, pageData{
			Heading: "Request refused",
			Error:   "This request did not come from a page of this site, so it was refused. Go back, reload the page and try again.",
		})
	}
	return apiErr(http.StatusForbidden, code)
}

// csrfToken is GET /auth/csrf: the token a single-page app sends in
// X-CSRF-Token along with the session cookie. Without the cookie no token
// is needed, and none is given.
func (b *browser) csrfToken(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	var token *string
	if ck, err := c.Request().Cookie(b.h.cfg.CookieName); err == nil && ck.Value != "" {
		t := b.csrf.SessionToken(ck.Value)
		token = &t
	}
	return writeJSON(c, http.StatusOK, map[string]any{
		"csrf_token": token, "header_name": CSRFHeader, "form_field": CSRFFormField,
	})
}
