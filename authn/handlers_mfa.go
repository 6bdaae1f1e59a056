package authn

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/portero/portero/proxy"
)

// mfaRoutes adds the second factor's endpoints.
func (h *Handlers) mfaRoutes(g *echo.Group) {
	g.POST("/auth/mfa/enroll", h.enrolAuthed(h.mfaEnroll))
	g.POST("/auth/mfa/confirm", h.enrolAuthed(h.mfaConfirm))
	g.POST("/auth/mfa/disable", h.authed(h.mfaDisable))
	g.POST("/auth/mfa/verify", h.mfaVerify(false))
	g.POST("/auth/cookie/mfa/verify", h.mfaVerify(true))
	g.POST("/users/:id/mfa/reset", h.admin(h.mfaReset))
}

// mfaRequired answers the password step of a login that needs a code:
// 401, so a client that only knows one-step logins sees a failure, with
// the challenge to send to /auth/mfa/verify.
func mfaRequired(c echo.Context, e *MFARequiredError) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("WWW-Authenticate", `Bearer realm="portero", error="mfa_required"`)
	return writeJSON(c, http.StatusUnauthorized, map[string]any{
		"detail": "LOGIN_MFA_REQUIRED", "mfa_token": e.Token, "expires_in": int(e.ExpiresIn.Seconds()),
	})
}

// mfaEnrolmentRequired answers the password of a user whose role needs a
// second factor they have not set up: the token stands in for a session
// on /auth/mfa/enroll and /auth/mfa/confirm.
func mfaEnrolmentRequired(c echo.Context, e *MFAEnrolmentRequiredError) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("WWW-Authenticate", `Bearer realm="portero", error="mfa_enrolment_required"`)
	return writeJSON(c, http.StatusUnauthorized, map[string]any{
		"detail": "LOGIN_MFA_ENROLMENT_REQUIRED", "mfa_token": e.Token, "expires_in": int(e.ExpiresIn.Seconds()),
	})
}

// enrolAuthed accepts a session, or, from a client that sends neither a
// bearer token nor the cookie, an enrolment challenge as "mfa_token" in
// the JSON body.
func (h *Handlers) enrolAuthed(next echo.HandlerFunc) echo.HandlerFunc {
	authed := h.authed(next)
	return func(c echo.Context) error {
		r := c.Request()
		if r.Header.Get("Authorization") != "" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			return authed(c)
		}
		if ck, err := r.Cookie(h.cfg.CookieName); err == nil && ck.Value != "" {
			return authed(c)
		}
		in := map[string]any{}
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
		tok, _ := in["mfa_token"].(string)
		if tok == "" {
			return apiErr(http.StatusUnauthorized, "Unauthorized")
		}
		p, err := h.svc.EnrolmentPrincipal(r.Context(), tok)
		switch {
		case errors.Is(err, ErrMFABadChallenge):
			return apiErr(http.StatusBadRequest, "LOGIN_MFA_BAD_TOKEN")
		case err != nil:
			return err
		}
		c.Set("principal", p)
		c.Set("body", in)
		return next(c)
	}
}

func mfaError(err error) error {
	switch {
	case errors.Is(err, ErrMFABadCode):
		return apiErr(http.StatusBadRequest, "MFA_BAD_CODE")
	case errors.Is(err, ErrMFAAlreadyEnabled):
		return apiErr(http.StatusBadRequest, "MFA_ALREADY_ENABLED")
	case errors.Is(err, ErrMFANotEnabled):
		return apiErr(http.StatusBadRequest, "MFA_NOT_ENABLED")
	case errors.Is(err, ErrWrongCurrentPassword):
		return apiErr(http.StatusBadRequest, "MFA_BAD_PASSWORD")
	}
	return err
}

func (h *Handlers) mfaEnroll(c echo.Context) error {
	en, err := h.svc.EnrollMFA(c.Request().Context(), principalOf(c))
	if err != nil {
		return mfaError(err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return writeJSON(c, http.StatusOK, map[string]any{
		"secret": en.Secret, "otpauth_uri": en.URI,
		"qr_code": "data:image/png;base64," + base64.StdEncoding.EncodeToString(en.QRPNG),
	})
}

// codeInput reads the named string fields of a JSON body, each required.
func codeInput(c echo.Context, fields ...string) (map[string]string, error) {
	in, _ := c.Get("body").(map[string]any) // read already by enrolAuthed
	if in == nil {
		in = map[string]any{}
		if err := decodeJSON(c, &in); err != nil {
			return nil, err
		}
	}
	out := map[string]string{}
	var issues []ValidationIssue
	for _, f := range fields {
		v, ok := in[f].(string)
		if _, present := in[f]; present && !ok {
			issues = append(issues, fieldIssue(f, "wrong type: want string", "type_error"))
			continue
		}
		if strings.TrimSpace(v) == "" {
			issues = append(issues, fieldIssue(f, "field required", "missing"))
		}
		out[f] = v
	}
	if len(issues) > 0 {
		return nil, validationErr(issues...)
	}
	return out, nil
}

func (h *Handlers) mfaConfirm(c echo.Context) error {
	in, err := codeInput(c, "code")
	if err != nil {
		return err
	}
	codes, err := h.svc.ConfirmMFA(c.Request().Context(), principalOf(c), in["code"], meta(c))
	if err != nil {
		return mfaError(err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return writeJSON(c, http.StatusOK, map[string]any{"recovery_codes": codes})
}

func (h *Handlers) mfaDisable(c echo.Context) error {
	in, err := codeInput(c, "password", "code")
	if err != nil {
		return err
	}
	if err := h.svc.DisableMFA(c.Request().Context(), principalOf(c), in["password"], in["code"], meta(c)); err != nil {
		return mfaError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Handlers) mfaVerify(cookie bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		in, err := codeInput(c, "mfa_token", "code")
		if err != nil {
			return err
		}
		res, err := h.svc.VerifyMFA(c.Request().Context(), in["mfa_token"], in["code"], meta(c))
		switch {
		case errors.Is(err, ErrMFABadChallenge):
			return apiErr(http.StatusBadRequest, "LOGIN_MFA_BAD_TOKEN")
		case errors.Is(err, ErrMFABadCode):
			return apiErr(http.StatusBadRequest, "LOGIN_MFA_BAD_CODE")
		case err != nil:
			return err
		}
		proxy.SetUser(c.Request().Context(), res.User.ID)
		return h.loggedIn(c, res, cookie)
	}
}

func (h *Handlers) mfaReset(c echo.Context) error {
	if err := h.svc.ResetMFA(c.Request().Context(), principalOf(c), c.Param("id"), meta(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
