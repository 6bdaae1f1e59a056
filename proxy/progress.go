package proxy

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Credential kinds a request arrives with, for migration progress: when a
// route sees no more legacy JWTs, its legacy auth can be retired.
const (
	CredentialPortero = "portero_session" // Portero's cookie or a Portero-signed bearer
	CredentialLegacy  = "legacy_jwt"      // any other bearer token
	CredentialNone    = "none"
)

// Progress counts, per route, the credential kinds requests arrived with
// since this process started. It is one instance's view: the fleet-wide
// figure is the sum of portero_route_credentials_total over instances in
// Prometheus.
type Progress struct {
	since  time.Time
	mu     sync.RWMutex
	routes map[string]*[3]atomic.Int64 // route name → portero, legacy, none
}

// NewProgress starts counting at now.
func NewProgress(now time.Time) *Progress {
	return &Progress{since: now, routes: map[string]*[3]atomic.Int64{}}
}

// add counts one request. Route names come from the configuration, so the
// map stays bounded.
func (p *Progress) add(route, kind string) {
	if p == nil {
		return
	}
	i := kindIndex(kind)
	p.mu.RLock()
	c := p.routes[route]
	p.mu.RUnlock()
	if c == nil {
		p.mu.Lock()
		if c = p.routes[route]; c == nil {
			c = new([3]atomic.Int64)
			p.routes[route] = c
		}
		p.mu.Unlock()
	}
	c[i].Add(1)
}

func kindIndex(kind string) int {
	switch kind {
	case CredentialPortero:
		return 0
	case CredentialLegacy:
		return 1
	default:
		return 2
	}
}

// RouteCredentials is one route's counts by credential kind.
type RouteCredentials struct {
	Route          string  `json:"route"`
	PorteroSession int64   `json:"portero_session"`
	LegacyJWT      int64   `json:"legacy_jwt"`
	None           int64   `json:"none"`
	Total          int64   `json:"total"`
	PorteroShare   float64 `json:"portero_session_share"` // 0 when Total is 0
	LegacyShare    float64 `json:"legacy_jwt_share"`
}

// MigrationSnapshot is every route's counts since Since, for this instance.
type MigrationSnapshot struct {
	Since  time.Time          `json:"since"`
	Scope  string             `json:"scope"`
	Routes []RouteCredentials `json:"routes"`
}

// Migration returns the counts so far, routes sorted by name.
func (p *Progress) Migration() MigrationSnapshot {
	out := MigrationSnapshot{Since: p.since, Scope: "instance", Routes: []RouteCredentials{}}
	p.mu.RLock()
	for name, c := range p.routes {
		rc := RouteCredentials{Route: name, PorteroSession: c[0].Load(), LegacyJWT: c[1].Load(), None: c[2].Load()}
		rc.Total = rc.PorteroSession + rc.LegacyJWT + rc.None
		if rc.Total > 0 {
			rc.PorteroShare = float64(rc.PorteroSession) / float64(rc.Total)
			rc.LegacyShare = float64(rc.LegacyJWT) / float64(rc.Total)
		}
		out.Routes = append(out.Routes, rc)
	}
	p.mu.RUnlock()
	slices.SortFunc(out.Routes, func(a, b RouteCredentials) int { return strings.Compare(a.Route, b.Route) })
	return out
}

// credentialKind classifies a request by header inspection alone (no store
// lookup, so public and legacy routes stay cheap): Portero's session cookie
// or a Portero-signed bearer, another bearer, or nothing. A dead session
// still counts as Portero's: the client has moved over. The cookie is looked
// at first, as authentication does, so a request carrying both counts the
// same on every kind of route. Inspection cannot tell a forged cookie from
// a real one; on gateway, dual and shadow routes the authentication result
// is counted instead.
func credentialKind(r *http.Request, cookieName string, ownToken func(string) bool) string {
	if cookieName != "" {
		if _, err := r.Cookie(cookieName); err == nil {
			return CredentialPortero
		}
	}
	for _, v := range r.Header.Values("Authorization") {
		tok, ok := bearerToken(v)
		if !ok {
			continue
		}
		if ownToken != nil && ownToken(tok) {
			return CredentialPortero
		}
		return CredentialLegacy
	}
	return CredentialNone
}

// kindOf maps an authenticated identity's Via to a credential kind.
func kindOf(id Identity) string {
	if id.Via == "legacy_jwt" {
		return CredentialLegacy
	}
	return CredentialPortero
}
