package authn

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/portero/portero/proxy"
)

// APIError is an answer with a FastAPI-Users style body: {"detail": …}.
// Handlers return it (or a sentinel the error handler knows); Cause is
// logged, never shown.
type APIError struct {
	Status     int
	Detail     any
	RetryAfter int // seconds; 0 for none
	Cause      error
}

func (e *APIError) Error() string {
	if e.Cause != nil {
		return http.StatusText(e.Status) + ": " + e.Cause.Error()
	}
	return http.StatusText(e.Status)
}

func (e *APIError) Unwrap() error { return e.Cause }

func apiErr(status int, detail any) *APIError { return &APIError{Status: status, Detail: detail} }

// ValidationIssue is one entry of a 422 body, as FastAPI writes it.
type ValidationIssue struct {
	Loc  []any  `json:"loc"`
	Msg  string `json:"msg"`
	Type string `json:"type"`
}

func validationErr(issues ...ValidationIssue) *APIError {
	return &APIError{Status: http.StatusUnprocessableEntity, Detail: issues}
}

func fieldIssue(field, msg, typ string) ValidationIssue {
	return ValidationIssue{Loc: []any{"body", field}, Msg: msg, Type: typ}
}

// toAPIError maps every error a handler can return to its answer, in one place.
func toAPIError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var pe *PasswordPolicyError
	if errors.As(err, &pe) {
		return &APIError{Status: http.StatusBadRequest, Detail: map[string]any{
			"code": "REGISTER_INVALID_PASSWORD", "reason": pe.Reason(), "reasons": pe.Reasons,
		}}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return apiErr(he.Code, "NOT_FOUND")
		case http.StatusMethodNotAllowed:
			return apiErr(he.Code, "METHOD_NOT_ALLOWED")
		case http.StatusRequestEntityTooLarge:
			return apiErr(he.Code, "REQUEST_TOO_LARGE")
		case http.StatusUnsupportedMediaType:
			return apiErr(he.Code, "UNSUPPORTED_MEDIA_TYPE")
		}
		return &APIError{Status: he.Code, Detail: http.StatusText(he.Code), Cause: err}
	}
	switch {
	case errors.Is(err, ErrHasherBusy):
		return &APIError{Status: http.StatusServiceUnavailable, Detail: "SERVICE_BUSY", RetryAfter: 2, Cause: err}
	case errors.Is(err, ErrUnavailable):
		return &APIError{Status: http.StatusServiceUnavailable, Detail: "SERVICE_UNAVAILABLE", RetryAfter: 5, Cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		// The request's own deadline (server.own_timeout) ran out while it
		// waited: for a hashing worker, a store, anything. Busy, not broken.
		return &APIError{Status: http.StatusServiceUnavailable, Detail: "SERVICE_UNAVAILABLE", RetryAfter: 5, Cause: err}
	case errors.Is(err, ErrUserNotFound):
		return apiErr(http.StatusNotFound, "USER_NOT_FOUND")
	case errors.Is(err, ErrUserExists):
		return apiErr(http.StatusBadRequest, "REGISTER_USER_ALREADY_EXISTS")
	case errors.Is(err, ErrRegistrationClosed):
		return apiErr(http.StatusForbidden, "REGISTRATION_CLOSED")
	case errors.Is(err, ErrEmailTaken):
		return apiErr(http.StatusBadRequest, "UPDATE_USER_EMAIL_ALREADY_EXISTS")
	case errors.Is(err, ErrLegacyIDTaken):
		return apiErr(http.StatusBadRequest, "UPDATE_USER_LEGACY_ID_ALREADY_EXISTS")
	case errors.Is(err, ErrUnknownRole):
		return validationErr(fieldIssue("role_id", "unknown role", "value_error"))
	case errors.Is(err, ErrInvalidUser):
		return validationErr(ValidationIssue{Loc: []any{"body"}, Msg: "invalid user data", Type: "value_error"})
	}
	return &APIError{Status: http.StatusInternalServerError, Detail: "INTERNAL_ERROR", Cause: err}
}

// ErrorHandler is echo's HTTPErrorHandler for Portero's own endpoints: it
// writes nothing once the response is committed and logs causes, not secrets.
func ErrorHandler(log *zap.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		ae := toAPIError(err)
		if ae.Status >= 500 {
			log.Error("request failed", zap.String("request_id", proxy.RequestID(c.Request().Context())),
				zap.String("path", c.Path()), zap.Int("status", ae.Status), zap.Error(err))
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		if ae.RetryAfter > 0 {
			h.Set("Retry-After", strconv.Itoa(ae.RetryAfter))
		}
		if ae.Status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", `Bearer realm="portero"`)
		}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(ae.Status)
			return
		}
		_ = writeJSON(c, ae.Status, map[string]any{"detail": ae.Detail})
	}
}

func writeJSON(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Blob(status, "application/json", b)
}
