package authn

// User and role administration (issue 7): listing and searching users,
// creating them as an admin, and managing roles. Every change is audited
// with the acting admin in details.by. Changing a role rewrites the identity
// of every live session of its users, as changing a user's role does.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/proxy"
	"github.com/portero/portero/sessions"
)

// Sentinel errors of role administration.
var (
	// ErrRoleInUse means a role still has users and cannot be deleted.
	ErrRoleInUse = errors.New("authn: role is in use")
	// ErrRoleProtected means a change to one of the seeded roles that would
	// break Portero: deleting "admin" (1) or "user" (2, every new user's
	// role), or renaming "admin", whose name is what grants admin rights.
	ErrRoleProtected = errors.New("authn: role is protected")
)

// Audit actions of role administration.
const (
	actionRoleCreated = "role.created"
	actionRoleUpdated = "role.updated"
	actionRoleDeleted = "role.deleted"
)

// The seeded roles (see migrations 0001).
const (
	roleAdminID = 1
	roleUserID  = 2
)

// recordAdmin audits an admin's change to something that is not a user:
// the row's user is the admin (when the actor is a user, not the CLI), and
// details.by names the actor either way.
func (s *Service) recordAdmin(ctx context.Context, actor Principal, meta ClientMeta, action, resource, resourceID string, details map[string]any) error {
	if details == nil {
		details = map[string]any{}
	}
	details["by"] = actor.Session.UserID
	if meta.RequestID != "" {
		details["request_id"] = meta.RequestID
	}
	ev := audit.Event{Action: action, Resource: resource, ResourceID: resourceID, IP: meta.IP, UserAgent: meta.UserAgent, Details: details}
	if _, err := uuid.Parse(actor.Session.UserID); err == nil {
		ev.UserID = actor.Session.UserID
	}
	if err := s.audit.Record(ctx, ev); err != nil {
		return fmt.Errorf("%w: audit: %w", ErrUnavailable, err)
	}
	return nil
}

// ListUsers returns a page of users (admin); see UserStore.ListUsers.
func (s *Service) ListUsers(ctx context.Context, f UserFilter) ([]User, string, error) {
	users, next, err := s.users.ListUsers(ctx, f)
	if err != nil {
		return nil, "", storeErr(err)
	}
	return users, next, nil
}

// FindUser looks a user up by id, e-mail, or legacy id (all digits), as an
// operator names one on the command line.
func (s *Service) FindUser(ctx context.Context, ref string) (User, error) {
	ref = strings.TrimSpace(ref)
	var (
		u   User
		err error
	)
	if _, perr := uuid.Parse(ref); perr == nil {
		u, err = s.users.UserByID(ctx, ref)
	} else if n, perr := strconv.ParseInt(ref, 10, 64); perr == nil {
		u, err = s.users.UserByLegacyID(ctx, n)
	} else {
		u, err = s.users.UserByEmail(ctx, ref)
	}
	return u, storeErrOrNil(err)
}

// ListRoles returns every role.
func (s *Service) ListRoles(ctx context.Context) ([]Role, error) {
	roles, err := s.users.ListRoles(ctx)
	return roles, roleErrOrNil(err)
}

// GetRole returns one role.
func (s *Service) GetRole(ctx context.Context, id int) (Role, error) {
	r, err := s.users.RoleByID(ctx, id)
	return r, roleErrOrNil(err)
}

// FindRole looks a role up by id (all digits) or name.
func (s *Service) FindRole(ctx context.Context, ref string) (Role, error) {
	ref = strings.TrimSpace(ref)
	if id, err := strconv.Atoi(ref); err == nil {
		return s.GetRole(ctx, id)
	}
	r, err := s.users.RoleByName(ctx, ref)
	return r, roleErrOrNil(err)
}

// roleErrOrNil passes the role sentinels on and turns the rest into ErrUnavailable.
func roleErrOrNil(err error) error {
	if err == nil {
		return nil
	}
	for _, known := range []error{ErrRoleNotFound, ErrRoleNameTaken, ErrInvalidRole, ErrRoleInUse, ErrRoleProtected} {
		if errors.Is(err, known) {
			return err
		}
	}
	return storeErr(err)
}

// CreateRole adds a role (admin).
func (s *Service) CreateRole(ctx context.Context, actor Principal, r Role, meta ClientMeta) (Role, error) {
	r.ID = 0
	created, err := s.users.CreateRole(ctx, r)
	if err != nil {
		return Role{}, roleErrOrNil(err)
	}
	if err := s.recordAdmin(ctx, actor, meta, actionRoleCreated, "role", strconv.Itoa(created.ID), map[string]any{
		"name": created.Name, "permissions": created.Permissions, "mfa_required": created.MFARequired,
	}); err != nil {
		return Role{}, err
	}
	return created, nil
}

// RoleUpdate names what UpdateRole changes; nil fields stay.
type RoleUpdate struct {
	Name        *string
	Permissions *[]string
	MFARequired *bool
}

// UpdateRole renames a role or replaces its permissions (admin), then
// rewrites the identity snapshot of every live session of its users, so
// the change applies to them at once rather than at their next login. It
// returns how many users had their sessions updated.
func (s *Service) UpdateRole(ctx context.Context, actor Principal, id int, upd RoleUpdate, meta ClientMeta) (Role, int, error) {
	before, err := s.users.RoleByID(ctx, id)
	if err != nil {
		return Role{}, 0, roleErrOrNil(err)
	}
	r := before
	if upd.Name != nil {
		r.Name = strings.TrimSpace(*upd.Name)
	}
	if upd.Permissions != nil {
		r.Permissions = slices.Clone(*upd.Permissions)
	}
	if upd.MFARequired != nil {
		r.MFARequired = *upd.MFARequired
	}
	if id == roleAdminID && r.Name != before.Name {
		return Role{}, 0, fmt.Errorf("%w: renaming %q would take admin rights from every admin", ErrRoleProtected, before.Name)
	}
	after, err := s.users.UpdateRole(ctx, r)
	if err != nil {
		return Role{}, 0, roleErrOrNil(err)
	}
	n := 0
	if after.Name != before.Name || !slices.Equal(after.Permissions, before.Permissions) {
		if n, err = s.refreshRoleSessions(ctx, id); err != nil {
			return Role{}, 0, err
		}
	}
	if err := s.recordAdmin(ctx, actor, meta, actionRoleUpdated, "role", strconv.Itoa(id), map[string]any{
		"old_name": before.Name, "name": after.Name,
		"old_permissions": before.Permissions, "permissions": after.Permissions, "users": n,
		"old_mfa_required": before.MFARequired, "mfa_required": after.MFARequired,
	}); err != nil {
		return Role{}, 0, err
	}
	return after, n, nil
}

// refreshRoleSessions rewrites the live sessions of every user of role id
// from the user as now stored, page by page.
func (s *Service) refreshRoleSessions(ctx context.Context, id int) (int, error) {
	n, cursor := 0, ""
	for {
		page, next, err := s.users.ListUsers(ctx, UserFilter{RoleID: &id, Limit: MaxListLimit, Cursor: cursor})
		if err != nil {
			return n, storeErr(err)
		}
		for _, u := range page {
			roles, perms := identityOf(u)
			if err := s.sessions.UpdateUser(ctx, u.ID, func(sess *sessions.Session) {
				sess.Roles, sess.Permissions = roles, perms
			}); err != nil {
				return n, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			n++
		}
		if next == "" {
			return n, nil
		}
		cursor = next
	}
}

// DeleteRole removes a role nobody has (admin).
func (s *Service) DeleteRole(ctx context.Context, actor Principal, id int, meta ClientMeta) error {
	if id == roleAdminID || id == roleUserID {
		return fmt.Errorf("%w: role %d is seeded and required", ErrRoleProtected, id)
	}
	r, err := s.users.RoleByID(ctx, id)
	if err != nil {
		return roleErrOrNil(err)
	}
	del, ok := s.users.(roleDeleter)
	if !ok {
		return fmt.Errorf("authn: this user store cannot delete roles")
	}
	if err := del.DeleteRole(ctx, id); err != nil {
		return roleErrOrNil(err)
	}
	return s.recordAdmin(ctx, actor, meta, actionRoleDeleted, "role", strconv.Itoa(id), map[string]any{"name": r.Name})
}

// adminRoutes registers the user, role and route administration endpoints.
func (h *Handlers) adminRoutes(g *echo.Group) {
	g.GET("/users", h.admin(h.listUsers))
	g.POST("/users", h.admin(h.createUser))
	g.GET("/roles", h.admin(h.listRoles))
	g.POST("/roles", h.admin(h.createRole))
	g.GET("/roles/:id", h.admin(h.getRole))
	g.PATCH("/roles/:id", h.admin(h.updateRole))
	g.DELETE("/roles/:id", h.admin(h.deleteRole))
	if h.cfg.Routes != nil {
		g.GET("/routes", h.admin(h.listRoutes))
		g.POST("/routes/reset", h.admin(h.resetRoutes))
		g.PUT("/routes/*", h.admin(h.setRouteMode))
		g.DELETE("/routes/*", h.admin(h.unsetRouteMode))
	}
}

// adminErr maps the administration sentinels the shared error handler does
// not know; the rest pass through to it.
func adminErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrRoleNotFound):
		return apiErr(http.StatusNotFound, "ROLE_NOT_FOUND")
	case errors.Is(err, ErrRoleNameTaken):
		return apiErr(http.StatusBadRequest, "ROLE_ALREADY_EXISTS")
	case errors.Is(err, ErrInvalidRole):
		return validationErr(ValidationIssue{Loc: []any{"body"}, Msg: "invalid role: name and permissions must not be empty", Type: "value_error"})
	case errors.Is(err, ErrRoleInUse):
		return apiErr(http.StatusConflict, "ROLE_IN_USE")
	case errors.Is(err, ErrRoleProtected):
		return apiErr(http.StatusConflict, "ROLE_PROTECTED")
	case errors.Is(err, ErrInvalidCursor):
		return validationErr(queryIssue("cursor", "invalid cursor", "value_error"))
	}
	return err
}

func queryIssue(name, msg, typ string) ValidationIssue {
	return ValidationIssue{Loc: []any{"query", name}, Msg: msg, Type: typ}
}

// userPage is GET /users's answer.
type userPage struct {
	Items      []adminUserRead `json:"items"`
	NextCursor *string         `json:"next_cursor"`
}

// maxQueryLen bounds the search text, which becomes a substring scan.
const maxQueryLen = 200

func (h *Handlers) listUsers(c echo.Context) error {
	qp := c.QueryParams()
	f := UserFilter{Query: qp.Get("q"), Cursor: qp.Get("cursor")}
	var issues []ValidationIssue
	if len(f.Query) > maxQueryLen {
		issues = append(issues, queryIssue("q", fmt.Sprintf("at most %d characters", maxQueryLen), "value_error"))
	}
	if v := qp.Get("role_id"); v != "" {
		if id, err := strconv.Atoi(v); err == nil {
			f.RoleID = &id
		} else {
			issues = append(issues, queryIssue("role_id", "value is not a valid integer", "int_parsing"))
		}
	}
	if v := qp.Get("active"); v != "" {
		if b, err := strconv.ParseBool(v); err == nil {
			f.Active = &b
		} else {
			issues = append(issues, queryIssue("active", "value is not a valid boolean", "bool_parsing"))
		}
	}
	if v := qp.Get("limit"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= MaxListLimit {
			f.Limit = n
		} else {
			issues = append(issues, queryIssue("limit", fmt.Sprintf("must be an integer from 1 to %d", MaxListLimit), "value_error"))
		}
	}
	if len(issues) > 0 {
		return validationErr(issues...)
	}
	users, next, err := h.svc.ListUsers(c.Request().Context(), f)
	if err != nil {
		return adminErr(err)
	}
	page := userPage{Items: make([]adminUserRead, 0, len(users))}
	for _, u := range users {
		page.Items = append(page.Items, toAdminRead(u))
	}
	if next != "" {
		page.NextCursor = &next
	}
	return writeJSON(c, http.StatusOK, page)
}

// createUser is POST /users: an admin creates an account, whatever the
// registration setting, with the role and flags the body asks for. (POST
// /auth/register with an admin's session does the same and answers the
// public UserRead; this answers the admin view.)
func (h *Handlers) createUser(c echo.Context) error {
	in, err := decodeRegistration(c)
	if err != nil {
		return err
	}
	actor := principalOf(c)
	u, err := h.svc.Register(c.Request().Context(), in, &actor, meta(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, toAdminRead(u))
}

// roleRead is a role on the wire.
type roleRead struct {
	ID          int      `json:"id"`
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	MFARequired bool     `json:"mfa_required"`
}

func toRoleRead(r Role) roleRead {
	p := r.Permissions
	if p == nil {
		p = []string{}
	}
	return roleRead{ID: r.ID, Name: r.Name, Permissions: p, MFARequired: r.MFARequired}
}

func roleIDParam(c echo.Context) (int, error) {
	id, err := strconv.Atoi(c.Param("id"))
	if err != nil {
		return 0, apiErr(http.StatusNotFound, "ROLE_NOT_FOUND")
	}
	return id, nil
}

func (h *Handlers) listRoles(c echo.Context) error {
	roles, err := h.svc.ListRoles(c.Request().Context())
	if err != nil {
		return adminErr(err)
	}
	out := make([]roleRead, 0, len(roles))
	for _, r := range roles {
		out = append(out, toRoleRead(r))
	}
	return writeJSON(c, http.StatusOK, out)
}

func (h *Handlers) getRole(c echo.Context) error {
	id, err := roleIDParam(c)
	if err != nil {
		return err
	}
	r, err := h.svc.GetRole(c.Request().Context(), id)
	if err != nil {
		return adminErr(err)
	}
	return writeJSON(c, http.StatusOK, toRoleRead(r))
}

func (h *Handlers) createRole(c echo.Context) error {
	var in struct {
		Name        string   `json:"name"`
		Permissions []string `json:"permissions"`
		MFARequired bool     `json:"mfa_required"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if issues := required(nil, "name", in.Name); len(issues) > 0 {
		return validationErr(issues...)
	}
	r, err := h.svc.CreateRole(c.Request().Context(), principalOf(c), Role{Name: in.Name, Permissions: in.Permissions, MFARequired: in.MFARequired}, meta(c))
	if err != nil {
		return adminErr(err)
	}
	return writeJSON(c, http.StatusCreated, toRoleRead(r))
}

func (h *Handlers) updateRole(c echo.Context) error {
	id, err := roleIDParam(c)
	if err != nil {
		return err
	}
	var in struct {
		Name        *string   `json:"name"`
		Permissions *[]string `json:"permissions"`
		MFARequired *bool     `json:"mfa_required"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	r, _, err := h.svc.UpdateRole(c.Request().Context(), principalOf(c), id, RoleUpdate{Name: in.Name, Permissions: in.Permissions, MFARequired: in.MFARequired}, meta(c))
	if err != nil {
		return adminErr(err)
	}
	return writeJSON(c, http.StatusOK, toRoleRead(r))
}

func (h *Handlers) deleteRole(c echo.Context) error {
	id, err := roleIDParam(c)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteRole(c.Request().Context(), principalOf(c), id, meta(c)); err != nil {
		return adminErr(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// RouteToggler is the fleet-wide route table as the admin API changes it
// (proxy.Toggles).
type RouteToggler interface {
	View() proxy.RoutesView
	Set(ctx context.Context, id string, mode proxy.Mode, by proxy.Actor) ([]proxy.ModeChange, error)
	Unset(ctx context.Context, id string, by proxy.Actor) ([]proxy.ModeChange, error)
	Reset(ctx context.Context, by proxy.Actor) ([]proxy.ModeChange, error)
}

func actorOf(c echo.Context) proxy.Actor {
	p, m := principalOf(c), meta(c)
	return proxy.Actor{ID: p.Session.UserID, Email: p.Session.Email, IP: m.IP, UserAgent: m.UserAgent, RequestID: m.RequestID}
}

// routeChanges is the answer to a change: what changed, and the table now in force.
type routeChanges struct {
	Changed []proxy.ModeChange `json:"changed"`
	Table   proxy.RoutesView   `json:"table"`
}

func (h *Handlers) listRoutes(c echo.Context) error {
	return writeJSON(c, http.StatusOK, h.cfg.Routes.View())
}

// routeID reads {name-or-path} from /routes/{name-or-path}/mode. The path
// may come as is (/routes/api/samples/mode) or escaped
// (/routes/%2Fapi%2Fsamples/mode); a name with methods escapes its space
// (/routes/api/x%20GET,POST/mode). "default" is the fallback route.
func routeID(c echo.Context) (string, error) {
	raw := c.Param("*")
	if s, err := url.PathUnescape(raw); err == nil {
		raw = s
	}
	id, ok := strings.CutSuffix(raw, "/mode")
	if !ok || strings.Trim(id, "/ ") == "" {
		return "", apiErr(http.StatusNotFound, "NOT_FOUND")
	}
	if id != proxy.DefaultRouteName && !strings.HasPrefix(id, "/") {
		id = "/" + id
	}
	return id, nil
}

func routeErr(err error) error {
	switch {
	case errors.Is(err, proxy.ErrUnknownRoute):
		return apiErr(http.StatusNotFound, "ROUTE_NOT_FOUND")
	case errors.Is(err, proxy.ErrInvalidMode):
		return validationErr(fieldIssue("mode", "must be one of public, legacy, gateway, dual, shadow", "value_error"))
	case err != nil:
		return &APIError{Status: http.StatusServiceUnavailable, Detail: "SERVICE_UNAVAILABLE", RetryAfter: 5, Cause: err}
	}
	return nil
}

func (h *Handlers) changed(c echo.Context, changes []proxy.ModeChange, err error) error {
	if err != nil {
		return routeErr(err)
	}
	if changes == nil {
		changes = []proxy.ModeChange{}
	}
	return writeJSON(c, http.StatusOK, routeChanges{Changed: changes, Table: h.cfg.Routes.View()})
}

// setRouteMode is PUT /routes/{name-or-path}/mode {"mode": "legacy"}.
func (h *Handlers) setRouteMode(c echo.Context) error {
	id, err := routeID(c)
	if err != nil {
		return err
	}
	var in struct {
		Mode string `json:"mode"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if issues := required(nil, "mode", in.Mode); len(issues) > 0 {
		return validationErr(issues...)
	}
	changes, err := h.cfg.Routes.Set(c.Request().Context(), id, proxy.Mode(in.Mode), actorOf(c))
	return h.changed(c, changes, err)
}

// unsetRouteMode is DELETE /routes/{name-or-path}/mode: back to the file's mode.
func (h *Handlers) unsetRouteMode(c echo.Context) error {
	id, err := routeID(c)
	if err != nil {
		return err
	}
	changes, err := h.cfg.Routes.Unset(c.Request().Context(), id, actorOf(c))
	return h.changed(c, changes, err)
}

// resetRoutes is POST /routes/reset: every override removed, the file's table in force.
func (h *Handlers) resetRoutes(c echo.Context) error {
	changes, err := h.cfg.Routes.Reset(c.Request().Context(), actorOf(c))
	return h.changed(c, changes, err)
}
