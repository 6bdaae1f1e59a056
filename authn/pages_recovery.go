package authn

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// The pages of the mailed links: ask for a reset link, choose a new
// password, confirm an e-mail address. A link only opens a form; the token
// is used when the form is sent, so a mail scanner that fetches links uses
// nothing up.

// Messages of the recovery pages.
const (
	msgLinkSent    = "If there is an account for that address, we have sent a link to it. Check your inbox."
	msgBadLink     = "This link is not valid any more: it was used, it expired, or a newer one was sent."
	msgReset       = "Your password has been changed and you were signed out everywhere. Sign in with the new password."
	msgVerified    = "Your e-mail address is confirmed."
	msgWasVerified = "This e-mail address was confirmed already."
)

func (b *browser) recoveryPages(g *echo.Group) {
	g.GET(pathForgot, b.forgotForm)
	g.POST(pathForgot, b.forgot)
	g.GET(PathResetPage, b.resetForm)
	g.POST(PathResetPage, b.reset)
	g.GET(PathVerifyPage, b.confirmForm)
	g.POST(PathVerifyPage, b.confirm)
}

// formCSRF is the token of a form a browser may open signed in or not:
// bound to the session cookie when there is one (the CSRF guard checks
// those posts), else to the pre-sign-in nonce.
func (b *browser) formCSRF(c echo.Context) string {
	if ck, err := c.Request().Cookie(b.h.cfg.CookieName); err == nil && ck.Value != "" {
		return b.csrf.SessionToken(ck.Value)
	}
	return b.preSignInToken(c)
}

// formCSRFValid checks a post of such a form. With a session cookie the
// guard has checked it already; without, the nonce's token must match.
func (b *browser) formCSRFValid(c echo.Context) bool {
	r := c.Request()
	if ck, err := r.Cookie(b.h.cfg.CookieName); err == nil && ck.Value != "" {
		return true
	}
	nonce, err := r.Cookie(b.signInCookieName())
	return err == nil && sameOrigin(r) && b.csrf.validSignIn(nonce.Value, r.PostForm.Get(CSRFFormField))
}

func (b *browser) forgotForm(c echo.Context) error {
	return b.render(c, http.StatusOK, tplForgot, pageData{Heading: "Forgot your password?", CSRF: b.formCSRF(c)})
}

func (b *browser) forgot(c echo.Context) error {
	if err := parseForm(c); err != nil {
		return b.message(c, http.StatusRequestEntityTooLarge, "Forgot your password?", "The form was too large.")
	}
	d := pageData{Heading: "Forgot your password?", Email: strings.TrimSpace(c.Request().PostForm.Get("email"))}
	if !b.formCSRFValid(c) {
		d.Error, d.CSRF = msgFormExpired, b.formCSRF(c)
		return b.render(c, http.StatusForbidden, tplForgot, d)
	}
	if len(d.Email) > 320 || !plausibleEmail(d.Email) {
		d.Error, d.CSRF, d.Email = "Enter a valid e-mail address.", b.formCSRF(c), ""
		return b.render(c, http.StatusUnprocessableEntity, tplForgot, d)
	}
	if err := b.h.svc.ForgotPassword(c.Request().Context(), d.Email, meta(c)); err != nil {
		return b.failure(c, err)
	}
	return b.message(c, http.StatusOK, "Check your inbox", msgLinkSent)
}

func (b *browser) resetForm(c echo.Context) error {
	token := c.QueryParam("token")
	if _, ok := accountTokenHash(token); !ok {
		return b.badLink(c, "Choose a new password")
	}
	return b.render(c, http.StatusOK, tplReset, pageData{Heading: "Choose a new password", Token: token, CSRF: b.formCSRF(c), Hint: b.hint})
}

// badLink says a mailed link is dead and offers a new one.
func (b *browser) badLink(c echo.Context, heading string) error {
	return b.render(c, http.StatusBadRequest, tplMessage, pageData{Heading: heading, Error: msgBadLink,
		LinkURL: b.h.cfg.APIPrefix + pathForgot, LinkText: "Ask for a new link"})
}

func (b *browser) reset(c echo.Context) error {
	const heading = "Choose a new password"
	if err := parseForm(c); err != nil {
		return b.message(c, http.StatusRequestEntityTooLarge, heading, "The form was too large.")
	}
	f := c.Request().PostForm
	d := pageData{Heading: heading, Token: f.Get("token"), CSRF: b.formCSRF(c), Hint: b.hint}
	if !b.formCSRFValid(c) {
		d.Error = msgFormExpired
		return b.render(c, http.StatusForbidden, tplReset, d)
	}
	next, confirm := f.Get("new_password"), f.Get("confirm_password")
	switch {
	case next == "" || confirm == "":
		d.Error = "Fill in both fields."
		return b.render(c, http.StatusUnprocessableEntity, tplReset, d)
	case next != confirm:
		d.Error = "The new password and its confirmation do not match."
		return b.render(c, http.StatusUnprocessableEntity, tplReset, d)
	}
	_, err := b.h.svc.ResetPassword(c.Request().Context(), d.Token, next, meta(c))
	var pe *PasswordPolicyError
	switch {
	case errors.Is(err, ErrBadResetToken):
		return b.badLink(c, heading)
	case errors.As(err, &pe):
		d.Error = "The new password does not meet the rules:"
		for _, r := range pe.Reasons {
			d.Problems = append(d.Problems, r.Message)
		}
		return b.render(c, http.StatusBadRequest, tplReset, d)
	case err != nil:
		return b.failure(c, err)
	}
	// Every session ended, this browser's too.
	b.h.clearCookie(c)
	return b.seeOther(c, b.signInURL("", "reset"))
}

func (b *browser) confirmForm(c echo.Context) error {
	token := c.QueryParam("token")
	if _, ok := accountTokenHash(token); !ok {
		return b.badLink(c, "Confirm your e-mail address")
	}
	return b.render(c, http.StatusOK, tplConfirm, pageData{Heading: "Confirm your e-mail address", Token: token, CSRF: b.formCSRF(c)})
}

func (b *browser) confirm(c echo.Context) error {
	const heading = "Confirm your e-mail address"
	if err := parseForm(c); err != nil {
		return b.message(c, http.StatusRequestEntityTooLarge, heading, "The form was too large.")
	}
	d := pageData{Heading: heading, Token: c.Request().PostForm.Get("token"), CSRF: b.formCSRF(c)}
	if !b.formCSRFValid(c) {
		d.Error = msgFormExpired
		return b.render(c, http.StatusForbidden, tplConfirm, d)
	}
	_, err := b.h.svc.Verify(c.Request().Context(), d.Token, meta(c))
	switch {
	case errors.Is(err, ErrBadVerifyToken):
		return b.badLink(c, heading)
	case errors.Is(err, ErrAlreadyVerified):
		return b.message(c, http.StatusOK, heading, msgWasVerified)
	case err != nil:
		return b.failure(c, err)
	}
	return b.message(c, http.StatusOK, heading, msgVerified)
}

// mfaPage asks for the second factor after a right password; the
// challenge rides in the form, bound to the pre-sign-in CSRF nonce.
func (b *browser) mfaPage(c echo.Context, status int, d pageData) error {
	d.Heading, d.CSRF = "Two-step sign-in", b.preSignInToken(c)
	return b.render(c, status, tplMFA, d)
}

// signInStep reads the form of a step after the password (the code, the
// second factor's set-up): its challenge token and return path, after the
// origin and the token bound to the pre-sign-in nonce are checked. When ok
// is false the answer has been given (err is the handler's to return).
func (b *browser) signInStep(c echo.Context, heading string, page func(echo.Context, int, pageData) error) (d pageData, f url.Values, ok bool, err error) {
	r := c.Request()
	if err := parseForm(c); err != nil {
		return d, nil, false, b.message(c, http.StatusRequestEntityTooLarge, heading, "The form was too large.")
	}
	f = r.PostForm
	d = pageData{Next: SafeNext(f.Get("next")), Token: f.Get("mfa_token")}
	if !sameOrigin(r) {
		return d, f, false, b.csrfRefused(c, "CSRF_ORIGIN_MISMATCH")
	}
	if ck, err := r.Cookie(b.signInCookieName()); err != nil || !b.csrf.validSignIn(ck.Value, f.Get(CSRFFormField)) {
		d.Error = msgFormExpired
		return d, f, false, page(c, http.StatusForbidden, d)
	}
	return d, f, true, nil
}

func (b *browser) signInMFA(c echo.Context) error {
	d, f, ok, err := b.signInStep(c, "Two-step sign-in", b.mfaPage)
	if !ok {
		return err
	}
	res, err := b.h.svc.VerifyMFA(c.Request().Context(), d.Token, f.Get("code"), meta(c))
	switch {
	case errors.Is(err, ErrMFABadCode):
		d.Error = "That code is not right, or was used already."
		return b.mfaPage(c, http.StatusBadRequest, d)
	case errors.Is(err, ErrMFABadChallenge):
		return b.signInPage(c, http.StatusBadRequest, pageData{Next: d.Next, Error: "The sign-in took too long. Please sign in again."})
	case err != nil:
		return b.failure(c, err)
	}
	return b.signedIn(c, res, d.Next)
}

// enrolPage walks a user whose role requires a second factor through
// setting it up, from the sign-in: the enrolment challenge rides in the
// form (as the code step's challenge does), bound to the pre-sign-in CSRF
// nonce. Setting it up signs nobody in: the user then signs in with a code.
func (b *browser) enrolPage(c echo.Context, status int, d pageData) error {
	d.Heading, d.CSRF = "Set up two-step sign-in", b.preSignInToken(c)
	return b.render(c, status, tplEnrol, d)
}

func (b *browser) signInEnrol(c echo.Context) error {
	d, f, ok, err := b.signInStep(c, "Set up two-step sign-in", b.enrolPage)
	if !ok {
		return err
	}
	ctx := c.Request().Context()
	p, err := b.h.svc.EnrolmentPrincipal(ctx, d.Token)
	switch {
	case errors.Is(err, ErrMFABadChallenge):
		return b.signInPage(c, http.StatusBadRequest, pageData{Next: d.Next, Error: "The set-up took too long. Please sign in again."})
	case err != nil:
		return b.failure(c, err)
	}
	switch f.Get("action") {
	case "start":
		en, err := b.h.svc.EnrollMFA(ctx, p)
		if err != nil {
			return b.failure(c, err)
		}
		d.QR, d.Secret = qrDataURI(en.QRPNG), en.Secret
	case "confirm":
		codes, err := b.h.svc.ConfirmMFA(ctx, p, f.Get("code"), meta(c))
		switch {
		case errors.Is(err, ErrMFABadCode):
			d.Error = "That code is not right, or was used already. Start the set-up again."
			return b.enrolPage(c, http.StatusBadRequest, d)
		case err != nil:
			return b.failure(c, err)
		}
		d.Recovery = codes
		d.LinkURL = b.h.cfg.APIPrefix + pathSignIn + "?next=" + url.QueryEscape(d.Next)
	}
	return b.enrolPage(c, http.StatusOK, d)
}
