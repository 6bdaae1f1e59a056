package authn

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"

	"github.com/labstack/echo/v4"
)

// The two-step page: set up the second factor (QR code, first code,
// recovery codes) or turn it off, for the signed-in browser. The CSRF
// guard checks every post (the session cookie is there).

func (b *browser) twoStepData(c echo.Context) (Principal, pageData, error) {
	p, cookie, err := b.session(c, true)
	if err != nil {
		return Principal{}, pageData{}, err
	}
	on, err := b.h.svc.hasMFA(c.Request().Context(), p.Session.UserID)
	if err != nil {
		return Principal{}, pageData{}, err
	}
	return p, pageData{Heading: "Two-step sign-in", SignedInAs: p.Session.Email, CSRF: b.csrf.SessionToken(cookie), MFAOn: on}, nil
}

func (b *browser) twoStepPage(c echo.Context) error {
	_, d, err := b.twoStepData(c)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return b.failure(c, err)
		}
		return b.toSignInFrom(c, err, pathTwoStep)
	}
	return b.render(c, http.StatusOK, tplTwoStep, d)
}

func (b *browser) twoStep(c echo.Context) error {
	p, d, err := b.twoStepData(c)
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return b.failure(c, err)
		}
		return b.toSignInFrom(c, err, pathTwoStep)
	}
	if err := parseForm(c); err != nil {
		return b.message(c, http.StatusRequestEntityTooLarge, d.Heading, "The form was too large.")
	}
	ctx, f := c.Request().Context(), c.Request().PostForm
	switch f.Get("action") {
	case "start":
		en, err := b.h.svc.EnrollMFA(ctx, p)
		if err != nil {
			return b.twoStepFailed(c, d, err)
		}
		d.QR, d.Secret = qrDataURI(en.QRPNG), en.Secret
	case "confirm":
		codes, err := b.h.svc.ConfirmMFA(ctx, p, f.Get("code"), meta(c))
		if err != nil {
			return b.twoStepFailed(c, d, err)
		}
		d.MFAOn, d.Recovery = true, codes
	case "disable":
		if err := b.h.svc.DisableMFA(ctx, p, f.Get("password"), f.Get("code"), meta(c)); err != nil {
			return b.twoStepFailed(c, d, err)
		}
		d.MFAOn, d.Notice = false, "Two-step sign-in is off."
	default:
		return b.twoStepPage(c)
	}
	return b.render(c, http.StatusOK, tplTwoStep, d)
}

// qrDataURI shows a QR code inline. Built here from the PNG's bytes, so
// it is a data: URI of ours, safe to mark as a URL for the template.
func qrDataURI(png []byte) template.URL {
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

func (b *browser) twoStepFailed(c echo.Context, d pageData, err error) error {
	switch {
	case errors.Is(err, ErrMFABadCode):
		d.Error = "That code is not right, or was used already."
		if !d.MFAOn {
			d.Error += " Start the set-up again."
		}
	case errors.Is(err, ErrWrongCurrentPassword):
		d.Error = "The password is incorrect."
	case errors.Is(err, ErrMFAAlreadyEnabled), errors.Is(err, ErrMFANotEnabled):
		d.Error = "Two-step sign-in changed in the meantime. Look again below."
	default:
		return b.failure(c, err)
	}
	return b.render(c, http.StatusBadRequest, tplTwoStep, d)
}
