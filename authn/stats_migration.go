package authn

import (
	"github.com/labstack/echo/v4"

	"github.com/portero/portero/proxy"
)

// MigrationSource is the per-route count of credential kinds that the proxy
// keeps (*proxy.Progress): how far each route has moved from legacy JWTs
// to Portero sessions.
type MigrationSource interface {
	Migration() proxy.MigrationSnapshot
}

// migrationRoute registers GET /auth/stats/migration when configured.
func (h *Handlers) migrationRoute(g *echo.Group) {
	if src := h.cfg.Migration; src != nil {
		g.GET("/auth/stats/migration", h.admin(migrationStats(src)))
	}
}

// migrationStats answers with this instance's counts since it started
// (scope "instance"). Each instance counts only the requests it served:
// the fleet-wide share is the sum over instances of
// portero_route_credentials_total{route,kind} in Prometheus.
func migrationStats(src MigrationSource) echo.HandlerFunc {
	return func(c echo.Context) error {
		return writeStats(c, src.Migration())
	}
}
