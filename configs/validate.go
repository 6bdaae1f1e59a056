package configs

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.uber.org/zap/zapcore"
)

// Route modes (DESIGN.md, Routes).
const (
	ModePublic  = "public"
	ModeLegacy  = "legacy"
	ModeGateway = "gateway"
	ModeDual    = "dual"
	// ModeShadow forwards as legacy and rehearses gateway (roles and
	// permissions are what it rehearses).
	ModeShadow = "shadow"
)

// Modes lists every route mode, in the order messages name them.
var Modes = []string{ModePublic, ModeLegacy, ModeGateway, ModeDual, ModeShadow}

// MinSecretKeyBytes is the shortest secret_key accepted: 256 bits, the size
// the migration guide asks for.
const MinSecretKeyBytes = 32

// Validate checks the whole configuration and returns errors.Join of a
// *Problem for every rule broken (nil when none), each named by its key. Load
// and Parse call it and add line numbers; call it directly after building or
// changing a Config in code (a reloaded route table, a test fixture).
func (c Config) Validate() error { return joinProblems(c.problems()) }

type checker struct{ ps []*Problem }

func (ch *checker) add(key, format string, args ...any) {
	ch.ps = append(ch.ps, &Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (ch *checker) positive(key string, d Duration) {
	if d <= 0 {
		ch.add(key, "must be a positive duration such as 30s (got %s)", d)
	}
}

func (ch *checker) oneOf(key, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		ch.add(key, "must be one of %s (got %q)", strings.Join(allowed, ", "), v)
	}
}

func (c Config) problems() []*Problem {
	ch := &checker{}
	c.checkListeners(ch)
	c.checkAPIPrefix(ch)
	for i, p := range c.TrustedProxies {
		if _, ok := parseProxy(p); !ok {
			ch.add(fmt.Sprintf("trusted_proxies[%d]", i), "must be an IP address or a CIDR such as 10.0.0.0/8 (got %q)", p)
		}
	}

	ch.positive("server.read_header_timeout", c.Server.ReadHeaderTimeout)
	ch.positive("server.idle_timeout", c.Server.IdleTimeout)
	ch.positive("server.shutdown_grace", c.Server.ShutdownGrace)
	ch.positive("server.own_timeout", c.Server.OwnTimeout)
	if n := c.Server.MaxHeaderBytes; n < 4<<10 || n > 1<<20 {
		ch.add("server.max_header_bytes", "must be between 4096 (4 KiB) and 1048576 (1 MiB) (got %d)", n)
	}

	c.checkUpstream(ch)
	c.checkStores(ch)

	if c.Hashing.Workers < 0 {
		ch.add("hashing.workers", "must be 0 (one per CPU) or more (got %d)", c.Hashing.Workers)
	}
	if c.Hashing.Queue < 0 {
		ch.add("hashing.queue", "must be 0 or more (got %d)", c.Hashing.Queue)
	}
	ch.positive("hashing.max_wait", c.Hashing.MaxWait)

	if n := len(c.SecretKey); n > 0 && n < MinSecretKeyBytes {
		ch.add("secret_key", "must be at least %d bytes (got %d); generate one with `openssl rand -hex 32`", MinSecretKeyBytes, n)
	}

	if c.Lockout.MaxAttempts <= 0 {
		ch.add("lockout.max_attempts", "must be a positive number (got %d)", c.Lockout.MaxAttempts)
	}
	ch.positive("lockout.window", c.Lockout.Window)
	ch.positive("lockout.duration", c.Lockout.Duration)
	if c.Lockout.IPMaxAttempts <= 0 {
		ch.add("lockout.ip_max_attempts", "must be a positive number (got %d)", c.Lockout.IPMaxAttempts)
	}
	ch.positive("lockout.ip_window", c.Lockout.IPWindow)
	if strings.TrimSpace(c.Audit.SpoolDir) == "" {
		ch.add("audit.spool_dir", "must name a directory for events the database cannot take yet")
	}
	if c.Audit.SpoolMaxBytes < 1<<20 {
		ch.add("audit.spool_max_bytes", "must be at least 1048576 (1 MiB) (got %d)", c.Audit.SpoolMaxBytes)
	}
	ch.oneOf("audit.on_spool_full", c.Audit.OnSpoolFull, "fail_closed", "fail_open")
	if c.Audit.Retention < 0 || (c.Audit.Retention > 0 && c.Audit.Retention.D() < 24*time.Hour) {
		ch.add("audit.retention", "must be 0 (keep forever) or at least 1d (got %s)", c.Audit.Retention)
	}
	ch.oneOf("registration", c.Registration, "open", "admin", "closed")

	ch.oneOf("legacy.jwt_algorithm", c.Legacy.JWTAlgorithm, "HS256", "HS384", "HS512")
	if strings.TrimSpace(c.Legacy.Subject) == "" {
		ch.add("legacy.subject", "must name the claim that carries the legacy user id, such as legacy_id")
	}

	c.checkHeaders(ch)
	ch.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	ch.oneOf("log.format", c.Log.Format, "json", "console")

	ch.oneOf("default_mode", c.DefaultMode, Modes...)
	c.checkRoutes(ch)
	c.checkCookie(ch)
	c.checkTLSAndUI(ch)
	c.checkAccountFlows(ch)
	if c.LoginURL != "" && (!strings.HasPrefix(c.LoginURL, "/") || strings.HasPrefix(c.LoginURL, "//") || strings.ContainsAny(c.LoginURL, "\\ \t\r\n")) {
		ch.add("login_url", "must be a same-origin path such as /auth/signin (got %q)", c.LoginURL)
	}
	return ch.ps
}

func (c Config) checkListeners(ch *checker) {
	hostPort := func(key, v string) (host string, port int, ok bool) {
		h, p, err := net.SplitHostPort(v)
		if err != nil {
			ch.add(key, "must be host:port such as :8080 or 127.0.0.1:9090 (got %q)", v)
			return "", 0, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 || !isDigits(p) {
			ch.add(key, "port must be a number from 0 to 65535 (got %q)", p)
			return "", 0, false
		}
		if h != "" && !validHost(h) {
			ch.add(key, "host must be an IP address or a host name (got %q)", h)
			return "", 0, false
		}
		return h, n, true
	}
	lh, lp, lok := hostPort("listen", c.Listen)
	oh, op, ook := hostPort("ops_listen", c.OpsListen)
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	if lok && ook && lp != 0 && lp == op && (lh == oh || wildcard(lh) || wildcard(oh)) {
		ch.add("ops_listen", "must not share its port with listen (%s): the ops endpoints must stay off the public listener", c.Listen)
	}
}

func (c Config) checkAPIPrefix(ch *checker) {
	p := c.APIPrefix
	if p == "" {
		return
	}
	switch {
	case p == "/":
		ch.add("api_prefix", `must be empty (no prefix) or a path such as "/portero" without a trailing slash`)
	case !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/"):
		ch.add("api_prefix", `must start with "/" and not end with one, such as "/portero" (got %q)`, p)
	case reservedPath(p):
		ch.add("api_prefix", "must not be under /-/, which is reserved for the ops endpoints")
	default:
		if msg := pathProblem(p); msg != "" {
			ch.add("api_prefix", "%s", msg)
		}
	}
}

func (c Config) checkUpstream(ch *checker) {
	u, err := url.Parse(c.Upstream.URL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "":
		ch.add("upstream.url", "must be an absolute http(s) URL such as http://127.0.0.1:8000")
	case u.User != nil:
		ch.add("upstream.url", "must not carry credentials: they would not be sent, and the URL is printed in logs")
	case u.Fragment != "" || strings.Contains(c.Upstream.URL, "#"):
		ch.add("upstream.url", "must not have a #fragment")
	case !validHost(u.Hostname()):
		ch.add("upstream.url", "host must be an IP address or a host name (got %q)", u.Hostname())
	}
	ch.positive("upstream.timeout", c.Upstream.Timeout)
	ch.positive("upstream.dial_timeout", c.Upstream.DialTimeout)
	ch.positive("upstream.idle_conn_timeout", c.Upstream.IdleConnTimeout)
	if c.Upstream.MaxIdleConns <= 0 {
		ch.add("upstream.max_idle_conns", "must be a positive number (got %d)", c.Upstream.MaxIdleConns)
	}
	switch h := c.Upstream.Host; h {
	case "preserve", "upstream":
	default:
		if !validHostHeader(h) {
			ch.add("upstream.host", `must be "preserve", "upstream" or a host[:port] to send (got %q)`, h)
		}
	}
}

// checkStores checks the store URLs only as far as configs can without the
// drivers: scheme, and the parts whose absence is surely a mistake. The
// storage and sessions packages parse them fully when they connect.
func (c Config) checkStores(ch *checker) {
	switch raw := c.Storage.URL.Reveal(); {
	case raw == "":
		ch.add("storage.url", "must be set: postgres://… or sqlite://PATH")
	case c.Storage.URL.String() == redacted:
		ch.add("storage.url", "is not a valid URL such as postgres://user:password@host:5432/db or sqlite://PATH (percent-encode special characters in the password)")
	default:
		_, rest, _ := splitScheme(raw)
		switch c.Storage.Driver() {
		case "postgres":
		case "sqlite":
			if rest == "" {
				ch.add("storage.url", "needs a file path, such as sqlite://./data/portero.db")
			}
		default:
			ch.add("storage.url", "scheme must be postgres (or postgresql[+driver]) or sqlite (got %q)", schemeOf(raw))
		}
	}

	switch raw := c.Sessions.URL.Reveal(); {
	case raw == "":
		ch.add("sessions.url", "must be set: redis://…, rediss://… or memory://")
	case c.Sessions.URL.String() == redacted:
		ch.add("sessions.url", "is not a valid URL such as redis://:password@host:6379/0 or memory:// (percent-encode special characters in the password)")
	default:
		switch c.Sessions.Driver() {
		case "redis":
			if hostOf(raw) == "" {
				ch.add("sessions.url", "needs a host, such as redis://redis:6379/0")
			}
		case "memory":
		default:
			ch.add("sessions.url", "scheme must be redis, rediss, redis+cluster, rediss+cluster or memory (got %q)", schemeOf(raw))
		}
	}
	ch.positive("sessions.idle_timeout", c.Sessions.IdleTimeout)
	ch.positive("sessions.absolute_timeout", c.Sessions.AbsoluteTimeout)
	if c.Sessions.IdleTimeout > 0 && c.Sessions.AbsoluteTimeout > 0 && c.Sessions.IdleTimeout > c.Sessions.AbsoluteTimeout {
		ch.add("sessions.idle_timeout", "must not exceed sessions.absolute_timeout (%s > %s)", c.Sessions.IdleTimeout, c.Sessions.AbsoluteTimeout)
	}
}

// schemeOf returns raw's scheme, or "" (safe to print: it holds no secret).
func schemeOf(raw string) string {
	s, _, _ := splitScheme(raw)
	return s
}

// hostOf returns the host[:port] part of a URL's authority.
func hostOf(raw string) string {
	_, rest, _ := splitScheme(raw)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	return rest
}

// reservedHeader reports names an identity header must not take: stripping
// them from every request (as identity headers are) would break HTTP itself,
// the forwarding headers, or the legacy Authorization token.
func reservedHeader(canon string) bool {
	switch canon {
	case "host", "authorization", "cookie", "set-cookie", "connection", "keep-alive",
		"proxy-connection", "proxy-authorization", "proxy-authenticate", "te", "trailer",
		"transfer-encoding", "upgrade", "content-length", "content-type", "content-encoding",
		"forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip",
		"x-request-id", "accept", "user-agent":
		return true
	}
	return false
}

func (c Config) checkHeaders(ch *checker) {
	h := c.Headers
	named := []struct{ key, v string }{
		{"headers.user_id", h.UserID},
		{"headers.user_email", h.UserEmail},
		{"headers.user_roles", h.UserRoles},
		{"headers.legacy_user_id", h.LegacyUserID},
		{"headers.assertion", h.Assertion},
	}
	for j, d := range h.Disable {
		if !slices.Contains([]string{"user_id", "user_email", "user_roles", "legacy_user_id", "assertion"}, d) {
			ch.add(fmt.Sprintf("headers.disable[%d]", j), "must be one of user_id, user_email, user_roles, legacy_user_id, assertion (got %q)", d)
		}
	}
	seen := map[string]string{}
	for _, n := range named {
		if !isToken(n.v) {
			ch.add(n.key, "must be a valid HTTP header name such as X-Auth-User-Id (got %q)", n.v)
			continue
		}
		// Compared the way the stripping compares: case-insensitive, '_' = '-'.
		canon := HeaderKey(n.v)
		if reservedHeader(canon) {
			ch.add(n.key, "must not be %s: identity headers are stripped from every request", n.v)
			continue
		}
		if first, dup := seen[canon]; dup {
			ch.add(n.key, "names the same header as %s", first)
			continue
		}
		seen[canon] = n.key
	}
}

// HeaderKey is the form in which header names are compared for identity-header
// stripping: lower case with '_' read as '-', since some upstream servers
// (CGI/WSGI) map X_Auth_User onto the same variable as X-Auth-User.
func HeaderKey(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

func (c Config) checkRoutes(ch *checker) {
	taken := routeClaims{}
	legacyUser := ""
	if c.DefaultMode == ModeDual {
		legacyUser = "default_mode (dual)"
	}
	for i, r := range c.Routes {
		k := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Path == "":
			ch.add(k+".path", `must be set, such as "/api/samples"`)
		case !strings.HasPrefix(r.Path, "/"):
			ch.add(k+".path", `must start with "/" (got %q)`, r.Path)
		case r.Path != "/" && strings.HasSuffix(r.Path, "/"):
			ch.add(k+".path", "must not end with \"/\": routes match whole path segments, so %q already covers everything below it", strings.TrimRight(r.Path, "/"))
		case reservedPath(r.Path):
			ch.add(k+".path", "must not be under /-/, which is reserved for the ops endpoints and never forwarded")
		default:
			if msg := pathProblem(r.Path); msg != "" {
				ch.add(k+".path", "%s", msg)
			}
		}
		if r.Mode == "" {
			ch.add(k+".mode", "must be set: one of %s", strings.Join(Modes, ", "))
		} else {
			ch.oneOf(k+".mode", r.Mode, Modes...)
		}
		listed := make(map[string]bool, len(r.Methods))
		for j, m := range r.Methods {
			mk := fmt.Sprintf("%s.methods[%d]", k, j)
			switch {
			case !isToken(m) || strings.ToUpper(m) != m:
				ch.add(mk, "must be an upper-case HTTP method such as GET (got %q)", m)
			case m == "TRACE" || m == "CONNECT":
				ch.add(mk, "%s is never forwarded", m)
			case listed[m]:
				ch.add(mk, "%s is listed twice", m)
			}
			listed[m] = true
		}
		authenticated := r.Mode == ModeGateway || r.Mode == ModeDual
		// A shadow route rehearses gateway: its roles and permissions are
		// what the rehearsal checks, though everyone is let through.
		rehearsed := authenticated || r.Mode == ModeShadow
		if len(r.Roles) > 0 && !rehearsed && r.Mode != "" {
			ch.add(k+".roles", "apply only to gateway and dual routes, and shadow routes that rehearse them; a %s route lets everyone through", r.Mode)
		}
		for j, role := range r.Roles {
			if role == "" || strings.ContainsAny(role, ", \t\r\n") || !isPrintable(role) {
				ch.add(fmt.Sprintf("%s.roles[%d]", k, j), "must be a role name without spaces or commas (got %q)", role)
			}
		}
		if len(r.Permissions) > 0 && !rehearsed && r.Mode != "" {
			ch.add(k+".permissions", "apply only to gateway and dual routes, and shadow routes that rehearse them; a %s route lets everyone through", r.Mode)
		}
		for j, perm := range r.Permissions {
			if perm == "" || strings.ContainsAny(perm, ", \t\r\n") || !isPrintable(perm) {
				ch.add(fmt.Sprintf("%s.permissions[%d]", k, j), "must be a permission name without spaces or commas (got %q)", perm)
			}
		}
		if r.Unauthenticated != "" {
			ch.oneOf(k+".unauthenticated", r.Unauthenticated, "json", "redirect")
			if !authenticated {
				ch.add(k+".unauthenticated", "applies only to gateway and dual routes")
			}
		}
		if r.LegacyToken && !authenticated && r.Mode != "" {
			ch.add(k+".legacy_token", "applies only to gateway and dual routes: it needs an authenticated user")
		}
		if legacyUser == "" && (r.Mode == ModeDual || r.LegacyToken) {
			legacyUser = k
		}
		taken.check(ch, k, i, r, listed)
	}
	if legacyUser != "" && c.Legacy.JWTSecret == "" {
		ch.add("legacy.jwt_secret", "must be set: %s verifies or mints legacy JWTs", legacyUser)
	}
}

// routeClaims records, per path, which route took each method and which one
// is the path's fallback (no methods), so duplicates and ambiguous overlaps
// are found in one pass. A route without methods covers the methods no
// route on the same path names, so it does not clash with one that names some.
type routeClaims map[string]*pathClaims

type pathClaims struct {
	fallback int // index of the route without methods, or -1
	byMethod map[string]int
	nMethods map[int]int // route index -> how many distinct methods it names
}

func (rc routeClaims) check(ch *checker, key string, i int, r Route, methods map[string]bool) {
	pc := rc[r.Path]
	if pc == nil {
		pc = &pathClaims{fallback: -1, byMethod: map[string]int{}, nMethods: map[int]int{}}
		rc[r.Path] = pc
	}
	if len(methods) == 0 {
		if pc.fallback >= 0 {
			ch.add(key, "has the same path and methods as routes[%d]", pc.fallback)
			return
		}
		pc.fallback = i
		return
	}
	var both []string
	other, same := -1, true
	for _, m := range r.Methods { // in the file's order, for a stable message
		j, ok := pc.byMethod[m]
		if !ok || slices.Contains(both, m) {
			continue
		}
		both = append(both, m)
		if other < 0 {
			other = j
		}
		same = same && j == other
	}
	switch {
	case len(both) == 0:
		for m := range methods {
			pc.byMethod[m] = i
		}
		pc.nMethods[i] = len(methods)
	case same && len(both) == len(methods) && pc.nMethods[other] == len(methods):
		ch.add(key, "has the same path and methods as routes[%d]", other)
	default:
		ch.add(key+".methods", "%s on %s are also in routes[%d]: which route applies would be ambiguous", strings.Join(both, ", "), r.Path, other)
	}
}

// reservedPath reports whether p is /- or lies under /-/.
func reservedPath(p string) bool { return p == "/-" || strings.HasPrefix(p, "/-/") }

// pathProblem checks a route path or prefix against what the proxy matches
// on (the normalised path): no empty, "." or ".." segments, no query or
// fragment, only URL path characters and well-formed %XX escapes.
func pathProblem(p string) string {
	if strings.ContainsAny(p, "?#") {
		return "must be a path only, without ?query or #fragment"
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "has a malformed %-escape"
			}
		case c <= ' ' || c >= 0x7f || strings.IndexByte(`"<>\^`+"`{|}", c) >= 0:
			return fmt.Sprintf("has a character that must be percent-encoded: %q", c)
		}
	}
	if p == "/" {
		return ""
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return `must not contain "//": paths are matched after normalisation`
		case ".", "..":
			return `must not contain "." or ".." segments: paths are matched after normalisation`
		}
	}
	return ""
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 token (header names, methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if strings.IndexByte("!#$%&'*+-.^_`|~", c) < 0 {
			return false
		}
	}
	return true
}

// validHost accepts an IP address or a DNS host name (letters, digits, '-'
// and, for container names such as legacy_app, '_').
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validHostHeader accepts what may go in a Host header: host, host:port,
// [v6] or [v6]:port.
func validHostHeader(v string) bool {
	if h, p, err := net.SplitHostPort(v); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || !isDigits(p) || n < 1 || n > 65535 {
			return false
		}
		if strings.Contains(h, ":") { // IPv6: SplitHostPort removed the brackets
			a, err := netip.ParseAddr(h)
			return err == nil && a.Is6() && a.Zone() == ""
		}
		return validHost(h)
	}
	if inner, ok := strings.CutPrefix(v, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		a, err := netip.ParseAddr(inner)
		return ok && err == nil && a.Is6() && a.Zone() == ""
	}
	return !strings.Contains(v, ":") && validHost(v)
}

// parseProxy reads one trusted_proxies entry: an address (a single-host
// prefix) or a CIDR, zones refused, IPv4-mapped IPv6 read as IPv4.
func parseProxy(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// TrustedProxyPrefixes returns trusted_proxies parsed: a single address
// becomes a /32 (or /128) prefix, host bits of a CIDR are cleared, and
// IPv4-mapped IPv6 entries become IPv4 (compare peers with addr.Unmap()).
// Invalid entries, which Validate reports, are left out.
func (c Config) TrustedProxyPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, s := range c.TrustedProxies {
		if p, ok := parseProxy(s); ok {
			out = append(out, p)
		}
	}
	return out
}

// Driver names the relational store: "postgres" (postgres://, or
// postgresql[+driver]:// before normalisation), "sqlite" (sqlite:// or
// sqlite3://) or "" (anything else). The storage package reads the rest.
func (s Storage) Driver() string {
	scheme, _, _ := splitScheme(s.URL.Reveal())
	switch base, _, _ := strings.Cut(scheme, "+"); base {
	case "postgres", "postgresql":
		return "postgres"
	case "sqlite", "sqlite3":
		return "sqlite"
	}
	return ""
}

// Driver names the session store: "redis" (redis:// or rediss://), "memory"
// or "" (anything else).
func (s Sessions) Driver() string {
	switch schemeOf(s.URL.Reveal()) {
	case "redis", "rediss", "redis+cluster", "rediss+cluster":
		return "redis"
	case "memory":
		return "memory"
	}
	return ""
}

// ZapLevel returns log.level for zap (info for anything Validate would refuse).
func (l Log) ZapLevel() zapcore.Level {
	lvl, err := zapcore.ParseLevel(l.Level)
	if err != nil {
		return zapcore.InfoLevel
	}
	return lvl
}

// Warnings lists settings that are allowed but worth telling the operator
// about at start-up and in `config check`. Keys only, no lines.
func (c Config) Warnings() []Problem {
	var ws []Problem
	warn := func(key, format string, args ...any) {
		ws = append(ws, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.SecretKey == "" {
		warn("secret_key", "empty: an ephemeral key will be generated, so sessions and tokens will not survive a restart and instances cannot share them")
	}
	for i, p := range c.TrustedProxies {
		if pr, ok := parseProxy(p); ok && pr.Bits() == 0 {
			warn(fmt.Sprintf("trusted_proxies[%d]", i), "%s trusts every peer: any client can set its own address through X-Forwarded-For", p)
		}
	}
	if c.Sessions.Driver() == "memory" {
		warn("sessions.url", "memory:// keeps sessions in this process: run a single instance, and a restart signs everyone out")
	}
	own := OwnPaths(c.APIPrefix)
	for i, r := range c.Routes {
		for _, o := range own {
			if r.Path == o || strings.HasPrefix(r.Path, o+"/") {
				warn(fmt.Sprintf("routes[%d].path", i), "%s is served by Portero's own endpoints (%s), so this route never applies; set api_prefix to move them", r.Path, o)
				break
			}
		}
	}
	if c.Lockout.Reveal {
		warn("lockout.reveal", "true: a locked account answers 423, which tells an attacker the account exists")
	}
	c.accountFlowWarnings(warn)
	return ws
}

func (c Config) checkCookie(ch *checker) {
	name := c.Sessions.CookieName
	if !isToken(name) {
		ch.add("sessions.cookie_name", "must be a valid cookie name (got %q)", name)
		return
	}
	if strings.HasPrefix(name, "__Host-") && !c.Sessions.CookieSecure {
		ch.add("sessions.cookie_secure", "must be true while sessions.cookie_name starts with __Host- (browsers drop such cookies without Secure); rename the cookie for plain-HTTP development")
	}
	// Redis Cluster hash tags use braces; the stores put their own there.
	if p := c.Sessions.KeyPrefix; p == "" || strings.ContainsAny(p, "{} \t\r\n") || len(p) > 64 {
		ch.add("sessions.key_prefix", "must be 1 to 64 characters without braces or white space (got %q)", p)
	}
	if c.Sessions.CacheTTL < 0 || c.Sessions.CacheTTL > Duration(time.Minute) || (c.Sessions.CacheTTL > 0 && c.Sessions.CacheTTL >= c.Sessions.IdleTimeout) {
		ch.add("sessions.cache_ttl", "must be between 0 (off) and 1m, and below sessions.idle_timeout (got %s)", c.Sessions.CacheTTL)
	}
	if c.Sessions.TouchInterval < 0 || (c.Sessions.IdleTimeout > 0 && c.Sessions.TouchInterval >= c.Sessions.IdleTimeout) {
		ch.add("sessions.touch_interval", "must be at least 0 and below sessions.idle_timeout (got %s)", c.Sessions.TouchInterval)
	}
}

// checkTLSAndUI checks the certificate files exist (a typo should fail
// `config check`, not the first handshake) and that the pages' branding
// cannot load from another scheme or host by accident.
func (c Config) checkTLSAndUI(ch *checker) {
	if c.TLS.Enabled() {
		for _, f := range []struct{ key, path string }{{"tls.cert_file", c.TLS.CertFile}, {"tls.key_file", c.TLS.KeyFile}} {
			if f.path == "" {
				ch.add(f.key, "must be set with the other of tls.cert_file and tls.key_file (both or neither)")
			} else if st, err := os.Stat(f.path); err != nil || st.IsDir() {
				ch.add(f.key, "must name a readable PEM file (got %q)", f.path)
			}
		}
	}
	if t := c.UI.Title; len(t) > 100 || strings.ContainsFunc(t, unicode.IsControl) {
		ch.add("ui.title", "must be at most 100 characters without control characters (got %q)", t)
	}
	if l := c.UI.LogoURL; l != "" {
		u, err := url.Parse(l)
		sameOrigin := strings.HasPrefix(l, "/") && !strings.HasPrefix(l, "//") && !strings.ContainsAny(l, "\\ \t\r\n")
		remote := err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil
		if !sameOrigin && !remote {
			ch.add("ui.logo_url", "must be a same-origin path such as /static/logo.svg or an https:// URL (got %q)", l)
		}
	}
}

// OwnPaths are the path prefixes Portero answers itself and never forwards
// (besides /-/), under api_prefix.
func OwnPaths(apiPrefix string) []string {
	own := []string{apiPrefix + "/auth", apiPrefix + "/users", apiPrefix + "/audit", apiPrefix + "/roles", apiPrefix + "/routes"}
	if apiPrefix != "" {
		// At the root, /openapi.json stays the legacy app's: FastAPI serves
		// its own there, and clients of the legacy app must not notice Portero.
		own = append(own, apiPrefix+"/openapi.json")
	}
	return own
}
