package authn

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// recoveryRoutes adds FastAPI-Users' reset and verification endpoints.
func (h *Handlers) recoveryRoutes(g *echo.Group) {
	g.POST("/auth/forgot-password", h.forgotPassword)
	g.POST("/auth/reset-password", h.resetPassword)
	g.POST("/auth/request-verify-token", h.requestVerifyToken)
	g.POST("/auth/verify", h.verify)
}

// accepted is FastAPI-Users' answer to forgot-password and
// request-verify-token: 202 and a JSON null, whatever the address.
func accepted(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusAccepted, "application/json", []byte("null"))
}

// emailInput reads {"email"}; its validation depends only on the input,
// so it tells nothing about accounts.
func emailInput(c echo.Context) (string, error) {
	var in struct {
		Email string `json:"email"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return "", err
	}
	email := strings.TrimSpace(in.Email)
	switch {
	case email == "":
		return "", validationErr(fieldIssue("email", "field required", "missing"))
	case len(email) > 320 || !plausibleEmail(email):
		return "", validationErr(fieldIssue("email", "value is not a valid email address", "value_error"))
	}
	return email, nil
}

func (h *Handlers) forgotPassword(c echo.Context) error {
	email, err := emailInput(c)
	if err != nil {
		return err
	}
	if err := h.svc.ForgotPassword(c.Request().Context(), email, meta(c)); err != nil {
		return err
	}
	return accepted(c)
}

func (h *Handlers) requestVerifyToken(c echo.Context) error {
	email, err := emailInput(c)
	if err != nil {
		return err
	}
	if err := h.svc.RequestVerifyToken(c.Request().Context(), email, meta(c)); err != nil {
		return err
	}
	return accepted(c)
}

func (h *Handlers) resetPassword(c echo.Context) error {
	var in struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var issues []ValidationIssue
	issues = required(issues, "token", in.Token)
	if in.Password == "" {
		issues = append(issues, fieldIssue("password", "field required", "missing"))
	}
	if len(issues) > 0 {
		return validationErr(issues...)
	}
	u, err := h.svc.ResetPassword(c.Request().Context(), in.Token, in.Password, meta(c))
	var pe *PasswordPolicyError
	switch {
	case errors.Is(err, ErrBadResetToken):
		return apiErr(http.StatusBadRequest, "RESET_PASSWORD_BAD_TOKEN")
	case errors.As(err, &pe):
		// REGISTER_INVALID_PASSWORD's shape, under FastAPI-Users' reset code.
		return apiErr(http.StatusBadRequest, map[string]any{
			"code": "RESET_PASSWORD_INVALID_PASSWORD", "reason": pe.Reason(), "reasons": pe.Reasons,
		})
	case err != nil:
		return err
	}
	return writeJSON(c, http.StatusOK, toRead(u))
}

func (h *Handlers) verify(c echo.Context) error {
	var in struct {
		Token string `json:"token"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Token) == "" {
		return validationErr(fieldIssue("token", "field required", "missing"))
	}
	u, err := h.svc.Verify(c.Request().Context(), in.Token, meta(c))
	switch {
	case errors.Is(err, ErrBadVerifyToken):
		return apiErr(http.StatusBadRequest, "VERIFY_USER_BAD_TOKEN")
	case errors.Is(err, ErrAlreadyVerified):
		return apiErr(http.StatusBadRequest, "VERIFY_USER_ALREADY_VERIFIED")
	case err != nil:
		return err
	}
	return writeJSON(c, http.StatusOK, toRead(u))
}
