package authn

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/portero/portero/proxy"
)

// The browser pages: sign in, sign out and change password, rendered on the
// server with html/template from files embedded in the binary. They need no
// JavaScript and load nothing from elsewhere, so the Content-Security-Policy
// allows only this origin and no inline code at all.

//go:embed web/templates/*.html web/static/*
var webFS embed.FS

// PagesConfig brands the browser pages.
type PagesConfig struct {
	// Title names the site in page titles and the header; default "Portero".
	Title string
	// LogoURL is the header image: a same-origin path or an https:// URL;
	// empty shows the embedded logo.
	LogoURL string
}

// Paths of the browser pages and their helpers, below the API prefix.
const (
	pathSignIn   = "/auth/signin"
	pathSignOut  = "/auth/signout"
	pathPassword = "/auth/password"
	pathCSRF     = "/auth/csrf"
	pathStatic   = "/auth/static"
	pathForgot   = "/auth/forgot"
	pathSignMFA  = "/auth/signin/mfa"
	pathEnrol    = "/auth/signin/enrol"
	pathTwoStep  = "/auth/two-step"
)

// PathResetPage and PathVerifyPage are the pages the reset and verification
// mails link to (below the API prefix), the token in ?token=. They are not
// the JSON endpoints: a page only shows a form, so a mail scanner that
// follows the link uses nothing up.
const (
	PathResetPage  = "/auth/reset"
	PathVerifyPage = "/auth/confirm-email"
)

// Names of the page templates.
const (
	tplSignIn   = "signin.html"
	tplSignOut  = "signout.html"
	tplPassword = "password.html"
	tplMessage  = "message.html"
	tplForgot   = "forgot.html"
	tplReset    = "reset.html"
	tplConfirm  = "confirm.html"
	tplMFA      = "mfa.html"
	tplTwoStep  = "twostep.html"
	tplEnrol    = "enrol.html"
)

// Messages shown on the pages. The sign-in failure is one sentence for an
// unknown e-mail, a wrong password, an inactive account and (unless the lock
// is revealed) a locked one.
const (
	msgBadCredentials = "The e-mail address or password is incorrect."
	msgExpired        = "Your session has expired. Please sign in again."
	msgSignedOut      = "You have signed out."
	msgFormExpired    = "This form had expired, so nothing was sent. Please try again."
	msgUnavailable    = "This is not possible right now. Please try again in a moment."
	msgInternal       = "Something went wrong on our side. Please try again."
)

// browser serves the pages. It is built once per Echo() and read-only after.
type browser struct {
	h      *Handlers
	csrf   *CSRF
	pages  map[string]*template.Template
	assets map[string]asset
	title  string
	logo   string
	css    string
	csp    string
	hint   string
}

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// browserRoutes adds the pages, their assets, GET /auth/csrf and the CSRF
// guard for every state-changing request carrying the session cookie.
func (h *Handlers) browserRoutes(e *echo.Echo, g *echo.Group) {
	if h.cfg.CSRF == nil {
		h.cfg.CSRF = newRandomCSRF()
	}
	b, err := newBrowser(h)
	if err != nil {
		panic(err) // the templates are embedded and tested: only a broken build gets here
	}
	e.Use(b.csrfProtect)
	g.GET(pathSignIn, b.signInForm)
	g.POST(pathSignIn, b.signIn)
	g.POST(pathSignMFA, b.signInMFA)
	g.POST(pathEnrol, b.signInEnrol)
	g.GET(pathSignOut, b.signOutForm)
	g.POST(pathSignOut, b.signOut)
	g.GET(pathPassword, b.passwordForm)
	g.POST(pathPassword, b.changePassword)
	b.recoveryPages(g) // pages_recovery.go
	g.GET(pathTwoStep, b.twoStepPage)
	g.POST(pathTwoStep, b.twoStep)
	g.GET(pathCSRF, b.csrfToken)
	g.GET(pathStatic+"/:name", b.static)
}

func newBrowser(h *Handlers) (*browser, error) {
	b := &browser{h: h, csrf: h.cfg.CSRF, pages: map[string]*template.Template{}, assets: map[string]asset{},
		title: h.cfg.Pages.Title, hint: policyHint(h.svc.cfg.Policy)}
	if b.title == "" {
		b.title = "Portero"
	}
	statics, err := fs.Glob(webFS, "web/static/*")
	if err != nil {
		return nil, err
	}
	for _, name := range statics {
		body, err := webFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(body)
		ctype := mime.TypeByExtension(path.Ext(name))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		b.assets[path.Base(name)] = asset{body: body, ctype: ctype, etag: hex.EncodeToString(sum[:8])}
	}
	b.css = b.assetURL("portero.css")
	b.logo = h.cfg.Pages.LogoURL
	// data: images only: the two-step page shows its QR code inline, so
	// the secret it encodes is never served from a URL of its own.
	imgSrc := "'self' data:"
	if b.logo == "" {
		b.logo = b.assetURL("logo.svg")
	} else if u, err := url.Parse(b.logo); err == nil && u.Scheme == "https" && u.Host != "" {
		imgSrc += " https://" + u.Host
	} else if !strings.HasPrefix(b.logo, "/") || strings.HasPrefix(b.logo, "//") {
		return nil, fmt.Errorf("authn: pages logo %q must be a same-origin path or an https:// URL", b.logo)
	}
	// No 'unsafe-inline' anywhere: the pages have no scripts and no inline
	// styles. form-action also covers the redirect after a form is sent.
	b.csp = "default-src 'self'; img-src " + imgSrc + "; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

	for _, page := range []string{tplSignIn, tplSignOut, tplPassword, tplMessage, tplForgot, tplReset, tplConfirm, tplMFA, tplTwoStep, tplEnrol} {
		t, err := template.New(page).ParseFS(webFS, "web/templates/layout.html", "web/templates/mfa_parts.html", "web/templates/"+page)
		if err != nil {
			return nil, fmt.Errorf("authn: page %s: %w", page, err)
		}
		b.pages[page] = t
	}
	return b, nil
}

func (b *browser) assetURL(name string) string {
	return b.h.cfg.APIPrefix + pathStatic + "/" + name + "?v=" + b.assets[name].etag
}

// pageData is what the templates see. Every string is escaped by
// html/template for the context it lands in.
type pageData struct {
	Title      string
	Heading    string
	LogoURL    string
	CSSURL     string
	Prefix     string
	CSRF       string
	Next       string
	Email      string
	SignedInAs string
	Notice     string
	Error      string
	Problems   []string
	Hint       string
	LinkURL    string
	LinkText   string
	Token      string // a reset or verification token, carried by its form
	// The two-step page: whether the second factor is on, and while
	// setting it up the QR code (a data: URI), the secret, then the
	// recovery codes.
	MFAOn    bool
	QR       template.URL
	Secret   string
	Recovery []string
}

func (b *browser) isPage(c echo.Context) bool {
	switch strings.TrimPrefix(c.Path(), b.h.cfg.APIPrefix) {
	case pathSignIn, pathSignOut, pathPassword, pathForgot, PathResetPage, PathVerifyPage, pathSignMFA, pathEnrol, pathTwoStep:
		return true
	}
	return false
}

// securityHeaders go on every page and asset Portero serves itself.
func (b *browser) securityHeaders(c echo.Context) {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", b.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin keeps the return path out of other sites' logs and still
	// lets the browser send Origin on our own form posts.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if c.Request().TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// render writes a whole page or, if the template fails, a plain 500: it
// renders into a buffer first so no half page goes out.
func (b *browser) render(c echo.Context, status int, page string, d pageData) error {
	d.Title, d.LogoURL, d.CSSURL, d.Prefix = b.title, b.logo, b.css, b.h.cfg.APIPrefix
	if d.Next == "" {
		d.Next = "/"
	}
	var buf bytes.Buffer
	if err := b.pages[page].ExecuteTemplate(&buf, "layout", d); err != nil {
		b.h.log.Error("rendering page", zap.String("page", page), zap.Error(err))
		return &APIError{Status: http.StatusInternalServerError, Detail: "INTERNAL_ERROR", Cause: err}
	}
	b.securityHeaders(c)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

// message renders a page with a heading, one sentence and a link onwards.
func (b *browser) message(c echo.Context, status int, heading, text string) error {
	d := pageData{Heading: heading, LinkURL: b.h.cfg.APIPrefix + pathSignIn, LinkText: "Go to sign in"}
	if status >= 400 {
		d.Error = text
	} else {
		d.Notice = text
	}
	return b.render(c, status, tplMessage, d)
}

// failure renders an error page for an unexpected error, logging its cause.
func (b *browser) failure(c echo.Context, err error) error {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrHasherBusy) || errors.Is(err, proxy.ErrAuthUnavailable) {
		c.Response().Header().Set("Retry-After", "5")
		return b.message(c, http.StatusServiceUnavailable, "Try again shortly", msgUnavailable)
	}
	b.h.log.Error("page request failed", zap.String("request_id", proxy.RequestID(c.Request().Context())),
		zap.String("path", c.Path()), zap.Error(err))
	return b.message(c, http.StatusInternalServerError, "Something went wrong", msgInternal)
}

// seeOther redirects after a form (POST, redirect, GET) or to sign in.
func (b *browser) seeOther(c echo.Context, to string) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, to)
}

func (b *browser) signInURL(next, reason string) string {
	q := url.Values{}
	if next != "" && next != "/" {
		q.Set("next", next)
	}
	if reason != "" {
		q.Set("reason", reason)
	}
	u := b.h.cfg.APIPrefix + pathSignIn
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// session finds the live session of the browser's cookie; a bearer token
// does not count on these pages. It returns the cookie value too, which the
// page's CSRF token is bound to.
func (b *browser) session(c echo.Context, slide bool) (Principal, string, error) {
	r := c.Request()
	ck, err := r.Cookie(b.h.cfg.CookieName)
	if err != nil || ck.Value == "" {
		return Principal{}, "", proxy.ErrNoCredentials
	}
	p, err := b.h.creds.Principal(r.Context(), r, slide)
	if err != nil {
		return Principal{}, ck.Value, err
	}
	return p, ck.Value, nil
}

// parseForm reads a url-encoded body, bounded; the CSRF guard may have
// parsed it already.
func parseForm(c echo.Context) error {
	r := c.Request()
	if r.PostForm != nil {
		return nil
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxBodyBytes)
	return r.ParseForm()
}

func (b *browser) signInForm(c echo.Context) error {
	r := c.Request()
	q := r.URL.Query()
	d := pageData{Heading: "Sign in", Next: SafeNext(q.Get("next"))}
	switch q.Get("reason") {
	case "expired":
		d.Notice = msgExpired
	case "signed_out":
		d.Notice = msgSignedOut
	case "reset":
		d.Notice = msgReset
	}
	p, _, err := b.session(c, false)
	switch {
	case err == nil:
		d.SignedInAs = p.Session.Email
	case errors.Is(err, proxy.ErrInvalidCredentials):
		// The browser still holds a cookie whose session ended: idle
		// timeout, revocation or a password change elsewhere. Say so once.
		d.Notice = msgExpired
		b.h.clearCookie(c)
	}
	return b.signInPage(c, http.StatusOK, d)
}

// signInPage renders the form with a pre-session CSRF token, reusing the
// browser's nonce cookie so that two open sign-in tabs both work.
func (b *browser) signInPage(c echo.Context, status int, d pageData) error {
	d.CSRF = b.preSignInToken(c)
	d.Heading = "Sign in"
	return b.render(c, status, tplSignIn, d)
}

// preSignInToken is the CSRF token of a form sent without a session,
// bound to the browser's nonce cookie (set here if it has none).
func (b *browser) preSignInToken(c echo.Context) string {
	nonce := ""
	if ck, err := c.Request().Cookie(b.signInCookieName()); err == nil && validNonce(ck.Value) {
		nonce = ck.Value
	} else {
		nonce = newNonce()
		c.SetCookie(&http.Cookie{Name: b.signInCookieName(), Value: nonce, Path: "/",
			HttpOnly: true, Secure: b.h.cfg.CookieSecure, SameSite: http.SameSiteStrictMode})
	}
	return b.csrf.signInToken(nonce)
}

func validNonce(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (b *browser) signIn(c echo.Context) error {
	r := c.Request()
	if err := parseForm(c); err != nil {
		return b.message(c, http.StatusRequestEntityTooLarge, "Sign in", "The form was too large.")
	}
	f := r.PostForm
	d := pageData{Next: SafeNext(f.Get("next")), Email: strings.TrimSpace(f.Get("username"))}
	if len(d.Email) > 320 {
		d.Email = ""
	}
	if !sameOrigin(r) {
		return b.csrfRefused(c, "CSRF_ORIGIN_MISMATCH")
	}
	ck, err := r.Cookie(b.signInCookieName())
	if err != nil || !b.csrf.validSignIn(ck.Value, f.Get(CSRFFormField)) {
		d.Error = msgFormExpired
		return b.signInPage(c, http.StatusForbidden, d)
	}
	password := f.Get("password")
	if d.Email == "" || password == "" {
		d.Error = "Enter your e-mail address and your password."
		return b.signInPage(c, http.StatusUnprocessableEntity, d)
	}
	res, err := b.h.svc.Login(r.Context(), d.Email, password, meta(c))
	var mfa *MFARequiredError
	if errors.As(err, &mfa) {
		return b.mfaPage(c, http.StatusOK, pageData{Next: d.Next, Token: mfa.Token})
	}
	var enrol *MFAEnrolmentRequiredError
	if errors.As(err, &enrol) {
		return b.enrolPage(c, http.StatusOK, pageData{Next: d.Next, Token: enrol.Token})
	}
	if err != nil {
		status, msg, retry := signInFailure(err)
		if status >= 500 {
			return b.failure(c, err)
		}
		if retry > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(retry))
		}
		d.Error = msg
		return b.signInPage(c, status, d)
	}
	return b.signedIn(c, res, d.Next)
}

// signedIn ends a sign-in: the new session's cookie, then back to next.
func (b *browser) signedIn(c echo.Context, res LoginResult, next string) error {
	r := c.Request()
	// The browser's previous session, if any, ends: one browser, one session.
	if old, _, err := b.session(c, false); err == nil {
		_ = b.h.svc.Logout(r.Context(), old, meta(c))
	}
	proxy.SetUser(r.Context(), res.User.ID)
	b.h.setCookie(c, res.Token, res.Session)
	c.SetCookie(&http.Cookie{Name: b.signInCookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: b.h.cfg.CookieSecure, SameSite: http.SameSiteStrictMode})
	return b.seeOther(c, next)
}

// signInFailure is the page's answer to a refused login: status, sentence
// and Retry-After seconds.
func signInFailure(err error) (int, string, int) {
	var locked *LockedError
	var throttled *ThrottledError
	switch {
	case errors.As(err, &throttled):
		return http.StatusTooManyRequests, "Too many sign-in attempts from your network. Try again in " + minutes(throttled.RetryAfter) + ".",
			retrySeconds(throttled.RetryAfter)
	case errors.As(err, &locked):
		return http.StatusLocked, "This account is locked after too many failed sign-ins. Try again in " + minutes(locked.RetryAfter) +
			", or ask an administrator to unlock it.", retrySeconds(locked.RetryAfter)
	case errors.Is(err, ErrBadCredentials):
		return http.StatusBadRequest, msgBadCredentials, 0
	case errors.Is(err, ErrUserNotVerified):
		return http.StatusBadRequest, "Your e-mail address is not verified yet. Follow the link we sent you, or ask for a new one.", 0
	}
	return http.StatusInternalServerError, "", 0
}

func retrySeconds(d time.Duration) int { return max(int((d+time.Second-1)/time.Second), 1) }

// minutes says a wait in whole minutes, rounded up.
func minutes(d time.Duration) string {
	n := max(int((d+time.Minute-1)/time.Minute), 1)
	if n == 1 {
		return "1 minute"
	}
	return strconv.Itoa(n) + " minutes"
}

func (b *browser) signOutForm(c echo.Context) error {
	next := SafeNext(c.QueryParam("next"))
	p, cookie, err := b.session(c, false)
	switch {
	case errors.Is(err, proxy.ErrAuthUnavailable):
		return b.failure(c, err)
	case err != nil:
		return b.seeOther(c, b.signInURL(next, ""))
	}
	return b.render(c, http.StatusOK, tplSignOut, pageData{Heading: "Sign out", Next: next,
		SignedInAs: p.Session.Email, CSRF: b.csrf.SessionToken(cookie)})
}

// signOut ends the session; the CSRF guard has already checked the token
// and origin of a request that carries the cookie. Without a live session
// there is nothing to end, and the answer is the same.
func (b *browser) signOut(c echo.Context) error {
	p, _, err := b.session(c, false)
	switch {
	case errors.Is(err, proxy.ErrAuthUnavailable):
		return b.failure(c, err)
	case err == nil:
		if err := b.h.svc.Logout(c.Request().Context(), p, meta(c)); err != nil {
			return b.failure(c, err)
		}
	}
	b.h.clearCookie(c)
	return b.seeOther(c, b.signInURL("", "signed_out"))
}

func (b *browser) passwordForm(c echo.Context) error {
	p, cookie, err := b.session(c, true)
	if err != nil {
		return b.toSignIn(c, err)
	}
	d := pageData{Heading: "Change password", SignedInAs: p.Session.Email, CSRF: b.csrf.SessionToken(cookie), Hint: b.hint}
	if c.QueryParam("changed") == "1" {
		d.Notice = "Your password has been changed. Your other sessions were signed out."
	}
	return b.render(c, http.StatusOK, tplPassword, d)
}

// toSignIn sends a browser without a live session to sign in, coming back
// to the password page afterwards.
func (b *browser) toSignIn(c echo.Context, err error) error {
	return b.toSignInFrom(c, err, pathPassword)
}

// toSignInFrom is toSignIn coming back to page.
func (b *browser) toSignInFrom(c echo.Context, err error, page string) error {
	if errors.Is(err, proxy.ErrAuthUnavailable) {
		return b.failure(c, err)
	}
	reason := ""
	if errors.Is(err, proxy.ErrInvalidCredentials) {
		reason = "expired"
	}
	return b.seeOther(c, b.signInURL(b.h.cfg.APIPrefix+page, reason))
}

func (b *browser) changePassword(c echo.Context) error {
	p, cookie, err := b.session(c, true)
	if err != nil {
		return b.toSignIn(c, err)
	}
	if err := parseForm(c); err != nil {
		return b.message(c, http.StatusRequestEntityTooLarge, "Change password", "The form was too large.")
	}
	f := c.Request().PostForm
	d := pageData{Heading: "Change password", SignedInAs: p.Session.Email, CSRF: b.csrf.SessionToken(cookie), Hint: b.hint}
	current, next, confirm := f.Get("current_password"), f.Get("new_password"), f.Get("confirm_password")
	if current == "" || next == "" || confirm == "" {
		d.Error = "Fill in all three fields."
		return b.render(c, http.StatusUnprocessableEntity, tplPassword, d)
	}
	err = b.h.svc.ChangePassword(c.Request().Context(), p, current, next, confirm, meta(c))
	var pe *PasswordPolicyError
	switch {
	case err == nil:
		return b.seeOther(c, b.h.cfg.APIPrefix+pathPassword+"?changed=1")
	case errors.Is(err, ErrPasswordMismatch):
		d.Error = "The new password and its confirmation do not match."
		return b.render(c, http.StatusUnprocessableEntity, tplPassword, d)
	case errors.Is(err, ErrWrongCurrentPassword):
		d.Error = "The current password is incorrect."
		return b.render(c, http.StatusBadRequest, tplPassword, d)
	case errors.As(err, &pe):
		d.Error = "The new password does not meet the rules:"
		for _, r := range pe.Reasons {
			d.Problems = append(d.Problems, r.Message)
		}
		return b.render(c, http.StatusBadRequest, tplPassword, d)
	}
	return b.failure(c, err)
}

// static serves the embedded stylesheet and logo. Their URLs carry a
// version, so browsers may keep them for a day.
func (b *browser) static(c echo.Context) error {
	a, ok := b.assets[c.Param("name")]
	if !ok {
		return echo.ErrNotFound
	}
	b.securityHeaders(c)
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("ETag", `"`+a.etag+`"`)
	if c.Request().Header.Get("If-None-Match") == `"`+a.etag+`"` {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, a.ctype, a.body)
}

// policyHint describes the password policy in one sentence for the form.
func policyHint(p PasswordPolicy) string {
	var need []string
	if p.RequireUpper {
		need = append(need, "an upper-case letter")
	}
	if p.RequireLower {
		need = append(need, "a lower-case letter")
	}
	if p.RequireDigit {
		need = append(need, "a digit")
	}
	if p.RequireSymbol {
		syms := p.Symbols
		if syms == "" {
			syms = DefaultPasswordSymbols
		}
		need = append(need, "a symbol such as "+strings.Join(strings.Split(firstRunes(syms, 6), ""), " "))
	}
	s := fmt.Sprintf("At least %d characters", max(p.MinLength, 1))
	if len(need) > 0 {
		s += ", with " + joinAnd(need)
	}
	s += "."
	if p.RejectEmailLocalPart || p.RejectCommon {
		s += " Not your e-mail name or a commonly used password."
	}
	return s
}

func firstRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// maxReturnPath bounds a return path; a longer one is not a page a user was
// on, and is replaced by "/".
const maxReturnPath = 2048

// SafeNext returns raw if it is a path on this origin to send a browser
// back to after signing in, else "/". It accepts only a path that starts
// with exactly one "/" and consists of visible ASCII; it refuses
// scheme-relative "//host" and "/\host" (browsers read "\" as "/"),
// backslashes anywhere, control characters and spaces (browsers drop tabs
// and newlines from URLs, which turns "/\t/host" into "//host"), and the
// same tricks percent-encoded: raw is decoded once and checked again, so
// "/%2F/host", "%2F%2Fhost", "/%5Chost" and "/%09" end on "/" too. Encoded
// spaces and UTF-8 ("/caf%C3%A9") stay allowed: no browser decodes them
// into a separator.
func SafeNext(raw string) string {
	if len(raw) > maxReturnPath || !safePath(raw, false) {
		return "/"
	}
	decoded, err := url.PathUnescape(raw)
	if err != nil || !safePath(decoded, true) {
		return "/"
	}
	return raw
}

// safePath checks one reading of a return path; decoded relaxes the
// character rule to what an escape may stand for harmlessly.
func safePath(p string, decoded bool) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c < ' ' || c == 0x7f || c == '\\':
			return false
		case !decoded && (c == ' ' || c > 0x7f):
			return false
		}
	}
	return true
}
