package proxy

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/portero/portero/configs"
)

// Mode is how a route authenticates.
type Mode string

// The modes of DESIGN.md, and shadow, which rehearses gateway.
const (
	ModePublic  Mode = "public"  // forward to anyone
	ModeLegacy  Mode = "legacy"  // forward untouched; the legacy app authenticates
	ModeGateway Mode = "gateway" // a Portero session is required
	ModeDual    Mode = "dual"    // a Portero session or a valid legacy JWT
	// ModeShadow forwards exactly as legacy does, and also works out what
	// gateway would have decided, counting and auditing the would-be
	// denials, so operators see a flip's effect before they make it.
	ModeShadow Mode = "shadow"
)

// Authenticated reports whether the mode requires an identity.
func (m Mode) Authenticated() bool { return m == ModeGateway || m == ModeDual }

// Route is one compiled entry of the route table.
type Route struct {
	Name            string // the configured path (and methods), for logs and metrics
	Path            string
	Methods         []string
	Mode            Mode
	Roles           []string
	Permissions     []string
	LegacyToken     bool
	Unauthenticated string // "", "json" or "redirect"
	Slide           bool
	Audit           bool
}

func (r *Route) allows(method string) bool {
	if len(r.Methods) == 0 {
		return true
	}
	// HEAD is GET without the body: a GET rule that HEAD could dodge would
	// still leak headers and existence.
	return slices.Contains(r.Methods, method) || (method == "HEAD" && slices.Contains(r.Methods, "GET"))
}

// Table is an immutable route table; reloads swap whole tables.
type Table struct {
	routes   []*Route // longest path first; on a tie, method-specific first
	fallback *Route
}

// NewTable compiles the configured routes.
func NewTable(defaultMode string, routes []configs.Route) (*Table, error) {
	t := &Table{fallback: &Route{Name: "default", Mode: Mode(defaultMode), Slide: true}}
	if !validMode(t.fallback.Mode) {
		return nil, fmt.Errorf("%w: default_mode %q", ErrInvalidRoute, defaultMode)
	}
	for i, rc := range routes {
		r := &Route{
			Name: rc.Path, Path: rc.Path, Methods: slices.Clone(rc.Methods), Mode: Mode(rc.Mode),
			Roles: slices.Clone(rc.Roles), Permissions: slices.Clone(rc.Permissions),
			LegacyToken: rc.LegacyToken, Unauthenticated: rc.Unauthenticated,
			Slide: rc.Slides(), Audit: rc.Audit,
		}
		if len(r.Methods) > 0 {
			// Sorted: the name keys fleet-wide overrides, which must not
			// stop matching because the file lists [POST, GET] one day.
			r.Name += " " + strings.Join(slices.Sorted(slices.Values(r.Methods)), ",")
		}
		if !validMode(r.Mode) || !strings.HasPrefix(r.Path, "/") {
			return nil, fmt.Errorf("%w: routes[%d]", ErrInvalidRoute, i)
		}
		if r.Path != "/" {
			r.Path = strings.TrimSuffix(r.Path, "/")
		}
		t.routes = append(t.routes, r)
	}
	slices.SortStableFunc(t.routes, func(a, b *Route) int {
		if len(a.Path) != len(b.Path) {
			return len(b.Path) - len(a.Path)
		}
		return min(len(b.Methods), 1) - min(len(a.Methods), 1)
	})
	return t, nil
}

func validMode(m Mode) bool {
	return m == ModePublic || m == ModeLegacy || m == ModeGateway || m == ModeDual || m == ModeShadow
}

// match finds the route for one reading of the path.
func (t *Table) match(method, path string, fold bool) *Route {
	for _, r := range t.routes {
		if r.allows(method) && underPrefix(path, r.Path, fold) {
			return r
		}
	}
	return t.fallback
}

// underPrefix reports whether path is prefix or lies below it on a whole
// segment boundary: /api/samples covers /api/samples/1, not /api/samplesX.
func underPrefix(path, prefix string, fold bool) bool {
	if prefix == "/" {
		return true
	}
	if len(path) < len(prefix) {
		return false
	}
	head := path[:len(prefix)]
	if fold {
		if !strings.EqualFold(head, prefix) {
			return false
		}
	} else if head != prefix {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// Decide picks the route for a request. rawPath is the path exactly as the
// upstream will receive it. Every reading an upstream might take of it
// (percent-decoded or not, %2F as a slash or not, ;parameters stripped or
// not, case folded or not) must land on the same route; otherwise the
// request is refused as ambiguous, so no rule can be dodged. extraMethods are
// method overrides (X-HTTP-Method-Override) an upstream might obey.
func (t *Table) Decide(method, rawPath string, extraMethods ...string) (*Route, error) {
	if rawPath == "*" {
		return t.fallback, nil
	}
	var buf [4]string
	variants, err := pathReadings(rawPath, buf[:0])
	if err != nil {
		return nil, err
	}
	chosen := t.match(method, variants[0], false)
	agrees := func(m string) bool {
		for _, v := range variants {
			if t.match(m, v, false) != chosen || t.match(m, v, true) != chosen {
				return false
			}
		}
		return true
	}
	if !agrees(method) {
		return nil, ErrAmbiguousPath
	}
	for _, m := range extraMethods {
		if !agrees(m) {
			return nil, ErrAmbiguousPath
		}
	}
	return chosen, nil
}

// pathReadings validates a raw request path and returns the distinct ways an
// upstream may read it. Paths no browser sends and upstreams disagree on are
// refused: dot segments, empty segments, backslashes, control bytes,
// invalid or double percent-encoding, bytes that are not UTF-8.
func pathReadings(raw string, out []string) ([]string, error) {
	if raw == "" || raw[0] != '/' {
		return nil, ErrBadPath
	}
	hasEscape := strings.IndexByte(raw, '%') >= 0
	hasParam := strings.IndexByte(raw, ';') >= 0
	if !hasEscape && !hasParam {
		if err := checkSegments(raw); err != nil {
			return nil, err
		}
		if !utf8.ValidString(raw) {
			return nil, ErrBadPath
		}
		return append(out, raw), nil
	}
	all, keepSlash, err := decodePath(raw)
	if err != nil {
		return nil, err
	}
	if err := checkSegments(all); err != nil {
		return nil, err
	}
	out = appendUnique(out, raw, keepSlash, all)
	// An escaped ';' (%3B) is a parameter to servers that decode before
	// they strip parameters (Spring did), so "/admin%3Bx" reads as "/admin".
	if hasParam || strings.IndexByte(all, ';') >= 0 {
		out = appendUnique(out, stripParams(keepSlash), stripParams(all))
	}
	return out, nil
}

func appendUnique(out []string, vs ...string) []string {
	for _, v := range vs {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// decodePath percent-decodes raw twice over: all escapes, and all but %2F
// (which many servers keep inside a segment).
func decodePath(raw string) (all, keepSlash string, err error) {
	var a, k strings.Builder
	a.Grow(len(raw))
	k.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '%' {
			if err := checkByte(c); err != nil {
				return "", "", err
			}
			a.WriteByte(c)
			k.WriteByte(c)
			continue
		}
		if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
			return "", "", ErrBadPath
		}
		d := unhex(raw[i+1])<<4 | unhex(raw[i+2])
		if err := checkByte(d); err != nil {
			return "", "", err
		}
		a.WriteByte(d)
		if d == '/' {
			k.WriteString(raw[i : i+3])
		} else {
			k.WriteByte(d)
		}
		i += 2
	}
	all, keepSlash = a.String(), k.String()
	// A decoded path that still holds an escape was double encoded
	// ("%252e", or "%25%32%65" with the digits escaped too): a second
	// decoding layer upstream would read a path Portero never saw.
	for j := 0; j+2 < len(all); j++ {
		if all[j] == '%' && isHex(all[j+1]) && isHex(all[j+2]) {
			return "", "", ErrBadPath
		}
	}
	// Bytes that are not UTF-8 have no single meaning: old servers decode
	// overlong forms ("%C0%AE" as '.'), others read Latin-1 or refuse.
	if !utf8.ValidString(all) {
		return "", "", ErrBadPath
	}
	return all, keepSlash, nil
}

func checkByte(c byte) error {
	if c < 0x20 || c == 0x7f || c == '\\' {
		return ErrBadPath
	}
	return nil
}

// checkSegments refuses dot segments (also "..;x", which Tomcat reads as
// "..") and empty segments other than a trailing slash.
func checkSegments(p string) error {
	rest := p[1:]
	for {
		seg, after, more := strings.Cut(rest, "/")
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			seg = seg[:j]
			if seg == "" {
				return ErrBadPath
			}
		}
		if seg == "." || seg == ".." || strings.IndexByte(seg, '\\') >= 0 {
			return ErrBadPath
		}
		if !more {
			return nil
		}
		if seg == "" {
			return ErrBadPath // "//": an empty segment some servers collapse
		}
		rest = after
	}
}

// stripParams drops ";params" from each segment, as servlet containers do.
func stripParams(p string) string {
	if strings.IndexByte(p, ';') < 0 {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return strings.Join(segs, "/")
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
