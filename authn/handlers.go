package authn

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/portero/portero/proxy"
	"github.com/portero/portero/sessions"
)

// maxBodyBytes bounds every request body to Portero's own endpoints.
const maxBodyBytes = 64 << 10

// HandlerConfig are the HTTP settings of the /auth and /users endpoints.
type HandlerConfig struct {
	APIPrefix    string
	CookieName   string
	CookieSecure bool
	// Routes serves GET /routes, PUT and DELETE /routes/{name-or-path}/mode
	// and POST /routes/reset (admin only); nil leaves them out.
	Routes RouteToggler
	// Stats serves GET /auth/stats/* (admin only); nil leaves them out.
	Stats *Stats
	// Migration serves GET /auth/stats/migration (admin only), e.g. a
	// *proxy.Progress; nil leaves it out.
	Migration MigrationSource
	// AuditQuery serves GET /audit (admin only), e.g.
	// audit.NewQueryHandler; nil leaves it out.
	AuditQuery echo.HandlerFunc
	// CSRF checks the token of cookie-authenticated writes (NewCSRF with
	// the app's keyring); nil uses a random key of this process only.
	CSRF *CSRF
	// Pages brands the sign-in, sign-out and password pages.
	Pages PagesConfig
}

// Handlers serves Portero's own endpoints.
type Handlers struct {
	svc   *Service
	creds *Credentials
	cfg   HandlerConfig
	log   *zap.Logger
}

// NewHandlers builds the endpoints.
func NewHandlers(svc *Service, creds *Credentials, cfg HandlerConfig, log *zap.Logger) *Handlers {
	return &Handlers{svc: svc, creds: creds, cfg: cfg, log: log}
}

// Echo returns an echo instance serving /auth and /users under the prefix.
func (h *Handlers) Echo() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = ErrorHandler(h.log)
	g := e.Group(h.cfg.APIPrefix)
	g.POST("/auth/register", h.register)
	g.POST("/auth/login", h.login(false))
	g.POST("/auth/cookie/login", h.login(true))
	g.POST("/auth/logout", h.authed(h.logout))
	g.POST("/auth/cookie/logout", h.authed(h.logout))
	g.POST("/auth/change-password", h.authed(h.changePassword))
	g.GET("/auth/sessions", h.authed(h.listSessions))
	g.DELETE("/auth/sessions/:id", h.authed(h.revokeSession))
	g.GET("/users/me", h.authed(h.me))
	g.PATCH("/users/me", h.authed(h.updateMe))
	g.GET("/users/:id", h.admin(h.getUser))
	g.PATCH("/users/:id", h.admin(h.updateUser))
	g.DELETE("/users/:id", h.admin(h.deleteUser))
	g.POST("/users/:id/unlock", h.admin(h.unlock))
	h.recoveryRoutes(g)
	h.mfaRoutes(g)
	h.adminRoutes(g) // GET/POST /users, /roles, /routes (admin.go)
	h.dashboardRoutes(g)
	h.migrationRoute(g) // GET /auth/stats/migration (stats_migration.go)
	h.browserRoutes(e, g)
	g.GET("/openapi.json", h.openAPI()) // no auth: describes the API (openapi.go)
	return e
}

func principalOf(c echo.Context) Principal {
	p, _ := c.Get("principal").(Principal)
	return p
}

// authed requires a live session; state-changing calls made with the cookie
// must come from Portero's own origin (a cross-site page cannot use the
// browser's cookie to act for the user).
func (h *Handlers) authed(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		p, err := h.creds.Principal(r.Context(), r, true)
		if err != nil {
			if errors.Is(err, proxy.ErrAuthUnavailable) {
				return &APIError{Status: http.StatusServiceUnavailable, Detail: "SERVICE_UNAVAILABLE", RetryAfter: 5, Cause: err}
			}
			if errors.Is(err, proxy.ErrInvalidCredentials) {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="portero", error="invalid_token"`)
			}
			return apiErr(http.StatusUnauthorized, "Unauthorized")
		}
		if p.Via == "cookie" && r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
			return apiErr(http.StatusForbidden, "CSRF_ORIGIN_MISMATCH")
		}
		proxy.SetUser(r.Context(), p.Session.UserID)
		c.Set("principal", p)
		return next(c)
	}
}

// sameOrigin accepts a request whose Origin (or, without one, Referer)
// names this host. Browsers send Origin on every cross-site POST.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return true // not a browser, or a same-origin navigation that omits both
	}
	u, err := url.Parse(src)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

func (h *Handlers) admin(next echo.HandlerFunc) echo.HandlerFunc {
	return h.authed(func(c echo.Context) error {
		if !principalOf(c).IsAdmin() {
			return apiErr(http.StatusForbidden, "FORBIDDEN")
		}
		return next(c)
	})
}

func meta(c echo.Context) ClientMeta {
	r := c.Request()
	ip := ""
	if a := proxy.ClientAddr(r.Context()); a.IsValid() {
		ip = a.String()
	}
	return ClientMeta{IP: ip, UserAgent: r.UserAgent(), RequestID: proxy.RequestID(r.Context())}
}

// decodeJSON reads a JSON object body into v: the right content type, at
// most maxBodyBytes, one value, nothing after it.
func decodeJSON(c echo.Context, v any) error {
	r := c.Request()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return apiErr(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apiErr(http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE")
		}
		return apiErr(http.StatusBadRequest, "BAD_REQUEST")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return validationErr(fieldIssue(te.Field, "wrong type: want "+te.Type.String(), "type_error"))
		}
		return validationErr(ValidationIssue{Loc: []any{"body"}, Msg: "malformed JSON", Type: "json_invalid"})
	}
	if dec.More() {
		return validationErr(ValidationIssue{Loc: []any{"body"}, Msg: "trailing data after the JSON object", Type: "json_invalid"})
	}
	return nil
}

func required(issues []ValidationIssue, field, value string) []ValidationIssue {
	if strings.TrimSpace(value) == "" {
		issues = append(issues, fieldIssue(field, "field required", "missing"))
	}
	return issues
}

// credentialsInput reads {"username","password"} as JSON or as a form.
func credentialsInput(c echo.Context) (username, password string, err error) {
	r := c.Request()
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			return "", "", apiErr(http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE")
		}
		username, password = r.PostForm.Get("username"), r.PostForm.Get("password")
	default:
		var in struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if err := decodeJSON(c, &in); err != nil {
			return "", "", err
		}
		username, password = in.Username, in.Password
	}
	var issues []ValidationIssue
	issues = required(issues, "username", username)
	if password == "" {
		issues = append(issues, fieldIssue("password", "field required", "missing"))
	}
	if len(issues) > 0 {
		return "", "", validationErr(issues...)
	}
	return username, password, nil
}

func (h *Handlers) login(cookie bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		username, password, err := credentialsInput(c)
		if err != nil {
			return err
		}
		res, err := h.svc.Login(c.Request().Context(), username, password, meta(c))
		var mfa *MFARequiredError
		if errors.As(err, &mfa) {
			return mfaRequired(c, mfa)
		}
		var enrol *MFAEnrolmentRequiredError
		if errors.As(err, &enrol) {
			return mfaEnrolmentRequired(c, enrol)
		}
		if err != nil {
			return loginError(err)
		}
		proxy.SetUser(c.Request().Context(), res.User.ID)
		return h.loggedIn(c, res, cookie)
	}
}

// loggedIn answers a completed login: the cookie, or the bearer token.
func (h *Handlers) loggedIn(c echo.Context, res LoginResult, cookie bool) error {
	if cookie {
		h.setCookie(c, res.Token, res.Session)
		return c.NoContent(http.StatusNoContent)
	}
	return writeJSON(c, http.StatusOK, map[string]any{
		"access_token": res.Bearer, "token_type": "bearer",
		// On the service's clock, which made the session: the real clock
		// may differ from an injected one.
		"expires_in": int(res.Session.AbsoluteExpiresAt.Sub(h.svc.Now()).Seconds()),
	})
}

func loginError(err error) error {
	var locked *LockedError
	var throttled *ThrottledError
	switch {
	case errors.As(err, &throttled):
		return &APIError{Status: http.StatusTooManyRequests, Detail: "LOGIN_TOO_MANY_ATTEMPTS", RetryAfter: max(int(throttled.RetryAfter.Seconds()), 1)}
	case errors.Is(err, ErrBadCredentials):
		return apiErr(http.StatusBadRequest, "LOGIN_BAD_CREDENTIALS")
	case errors.Is(err, ErrUserNotVerified):
		return apiErr(http.StatusBadRequest, "LOGIN_USER_NOT_VERIFIED")
	case errors.As(err, &locked):
		secs := int(locked.RetryAfter.Seconds())
		return &APIError{Status: http.StatusLocked, Detail: "LOGIN_ACCOUNT_LOCKED", RetryAfter: max(secs, 1)}
	}
	return err
}

func (h *Handlers) setCookie(c echo.Context, tok sessions.Token, s sessions.Session) {
	c.SetCookie(&http.Cookie{
		Name: h.cfg.CookieName, Value: tok.Secret(), Path: "/",
		Expires: s.AbsoluteExpiresAt, HttpOnly: true, Secure: h.cfg.CookieSecure, SameSite: http.SameSiteLaxMode,
	})
}

func (h *Handlers) clearCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: h.cfg.CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.cfg.CookieSecure, SameSite: http.SameSiteLaxMode})
}

func (h *Handlers) logout(c echo.Context) error {
	if err := h.svc.Logout(c.Request().Context(), principalOf(c), meta(c)); err != nil {
		return err
	}
	h.clearCookie(c)
	return c.NoContent(http.StatusNoContent)
}

// userRead is FastAPI-Users' UserRead plus Portero's fields.
type userRead struct {
	ID          string     `json:"id"`
	Email       string     `json:"email"`
	FirstName   string     `json:"first_name"`
	LastName    string     `json:"last_name"`
	RoleID      int        `json:"role_id"`
	Role        string     `json:"role"`
	IsActive    bool       `json:"is_active"`
	IsSuperuser bool       `json:"is_superuser"`
	IsVerified  bool       `json:"is_verified"`
	LastLogin   *time.Time `json:"last_login"`
	LegacyID    *int64     `json:"legacy_id"`
}

// adminUserRead adds what only admins see.
type adminUserRead struct {
	userRead
	LoginAttempts int        `json:"login_attempts"`
	LockedUntil   *time.Time `json:"locked_until"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

func toRead(u User) userRead {
	return userRead{ID: u.ID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName, RoleID: u.RoleID, Role: u.Role,
		IsActive: u.IsActive, IsSuperuser: u.IsSuperuser, IsVerified: u.IsVerified, LastLogin: u.LastLogin, LegacyID: u.LegacyID}
}

func toAdminRead(u User) adminUserRead {
	return adminUserRead{userRead: toRead(u), LoginAttempts: u.LoginAttempts, LockedUntil: u.LockedUntil, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// decodeRegistration reads and checks a registration body (POST
// /auth/register and the admin's POST /users).
func decodeRegistration(c echo.Context) (RegisterInput, error) {
	var in struct {
		Email       string `json:"email"`
		Password    string `json:"password"`
		FirstName   string `json:"first_name"`
		LastName    string `json:"last_name"`
		RoleID      *int   `json:"role_id"`
		IsSuperuser *bool  `json:"is_superuser"`
		IsVerified  *bool  `json:"is_verified"`
		LegacyID    *int64 `json:"legacy_id"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return RegisterInput{}, err
	}
	var issues []ValidationIssue
	issues = required(issues, "email", in.Email)
	if in.Email != "" && !plausibleEmail(strings.TrimSpace(in.Email)) {
		issues = append(issues, fieldIssue("email", "value is not a valid email address", "value_error"))
	}
	if in.Password == "" {
		issues = append(issues, fieldIssue("password", "field required", "missing"))
	}
	if len(in.FirstName) > 100 || len(in.LastName) > 100 {
		issues = append(issues, fieldIssue("first_name", "at most 100 characters", "value_error"))
	}
	if len(issues) > 0 {
		return RegisterInput{}, validationErr(issues...)
	}
	return RegisterInput{
		Email: in.Email, Password: in.Password, FirstName: in.FirstName, LastName: in.LastName,
		RoleID: in.RoleID, IsSuperuser: in.IsSuperuser, IsVerified: in.IsVerified, LegacyID: in.LegacyID,
	}, nil
}

func (h *Handlers) register(c echo.Context) error {
	in, err := decodeRegistration(c)
	if err != nil {
		return err
	}
	// An admin may register for others (registration: admin); anyone else
	// registers anonymously even if they send a session.
	var actor *Principal
	if p, err := h.creds.Principal(c.Request().Context(), c.Request(), false); err == nil && p.IsAdmin() {
		if p.Via == "cookie" && !sameOrigin(c.Request()) {
			return apiErr(http.StatusForbidden, "CSRF_ORIGIN_MISMATCH")
		}
		actor = &p
	}
	u, err := h.svc.Register(c.Request().Context(), in, actor, meta(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, toRead(u))
}

func (h *Handlers) changePassword(c echo.Context) error {
	var in struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
		ConfirmPassword string `json:"confirm_password"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	var issues []ValidationIssue
	for _, f := range []struct{ name, v string }{{"current_password", in.CurrentPassword}, {"new_password", in.NewPassword}, {"confirm_password", in.ConfirmPassword}} {
		if f.v == "" {
			issues = append(issues, fieldIssue(f.name, "field required", "missing"))
		}
	}
	if len(issues) > 0 {
		return validationErr(issues...)
	}
	err := h.svc.ChangePassword(c.Request().Context(), principalOf(c), in.CurrentPassword, in.NewPassword, in.ConfirmPassword, meta(c))
	switch {
	case errors.Is(err, ErrPasswordMismatch):
		return validationErr(fieldIssue("confirm_password", "passwords do not match", "value_error"))
	case errors.Is(err, ErrWrongCurrentPassword):
		return apiErr(http.StatusBadRequest, "CHANGE_PASSWORD_BAD_CURRENT_PASSWORD")
	case err != nil:
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Handlers) me(c echo.Context) error {
	u, err := h.svc.Me(c.Request().Context(), principalOf(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, toRead(u))
}

func (h *Handlers) updateMe(c echo.Context) error {
	var in struct {
		FirstName *string `json:"first_name"`
		LastName  *string `json:"last_name"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if (in.FirstName != nil && len(*in.FirstName) > 100) || (in.LastName != nil && len(*in.LastName) > 100) {
		return validationErr(fieldIssue("first_name", "at most 100 characters", "value_error"))
	}
	u, err := h.svc.UpdateMe(c.Request().Context(), principalOf(c), ProfileUpdate{FirstName: in.FirstName, LastName: in.LastName}, meta(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, toRead(u))
}

type sessionRead struct {
	ID         string    `json:"id"`
	IP         string    `json:"ip_address"`
	UserAgent  string    `json:"user_agent"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_activity"`
	ExpiresAt  time.Time `json:"expires_at"`
	Current    bool      `json:"current"`
}

func (h *Handlers) listSessions(c echo.Context) error {
	p := principalOf(c)
	list, err := h.svc.Sessions(c.Request().Context(), p)
	if err != nil {
		return err
	}
	out := make([]sessionRead, 0, len(list))
	for _, s := range list {
		out = append(out, sessionRead{ID: s.ID, IP: s.IP, UserAgent: s.UserAgent, CreatedAt: s.CreatedAt,
			LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt(), Current: s.Key == p.Session.Key})
	}
	return writeJSON(c, http.StatusOK, out)
}

func (h *Handlers) revokeSession(c echo.Context) error {
	err := h.svc.RevokeSession(c.Request().Context(), principalOf(c), c.Param("id"), meta(c))
	if errors.Is(err, ErrSessionNotFound) {
		return apiErr(http.StatusNotFound, "SESSION_NOT_FOUND")
	}
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Handlers) getUser(c echo.Context) error {
	u, err := h.svc.GetUser(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, toAdminRead(u))
}

func (h *Handlers) updateUser(c echo.Context) error {
	var in struct {
		Email       *string `json:"email"`
		Password    *string `json:"password"`
		FirstName   *string `json:"first_name"`
		LastName    *string `json:"last_name"`
		RoleID      *int    `json:"role_id"`
		IsActive    *bool   `json:"is_active"`
		IsSuperuser *bool   `json:"is_superuser"`
		IsVerified  *bool   `json:"is_verified"`
		LegacyID    *int64  `json:"legacy_id"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Email != nil && !plausibleEmail(strings.TrimSpace(*in.Email)) {
		return validationErr(fieldIssue("email", "value is not a valid email address", "value_error"))
	}
	u, err := h.svc.UpdateUser(c.Request().Context(), principalOf(c), c.Param("id"), AdminUpdate{
		UserUpdate: UserUpdate{Email: in.Email, FirstName: in.FirstName, LastName: in.LastName, RoleID: in.RoleID,
			IsActive: in.IsActive, IsSuperuser: in.IsSuperuser, IsVerified: in.IsVerified, LegacyID: in.LegacyID},
		Password: in.Password,
	}, meta(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, toAdminRead(u))
}

func (h *Handlers) deleteUser(c echo.Context) error {
	if err := h.svc.DeleteUser(c.Request().Context(), principalOf(c), c.Param("id"), meta(c)); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Handlers) unlock(c echo.Context) error {
	u, err := h.svc.Unlock(c.Request().Context(), principalOf(c), c.Param("id"), meta(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, toAdminRead(u))
}
