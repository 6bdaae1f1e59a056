package proxy

import (
	"bytes"
	"net/http"
	"slices"
)

// identityPrefix covers the default identity header family; every header an
// upstream could read as X-Auth-* is Portero's alone to set.
const identityPrefix = "x-auth-"

// spoofableHeaders are request headers some upstream frameworks trust to
// rewrite the path or the client's address; a client must not set them.
var spoofableHeaders = []string{
	"x-real-ip",
	"x-original-url",
	"x-original-uri",
	"x-rewrite-url",
	"x-forwarded-uri",
	"x-client-ip",
	"true-client-ip",
	"cf-connecting-ip",
	"x-cluster-client-ip",
}

// proxyOnlyHeaders may come from a trusted proxy in front of Portero, never
// straight from a client.
var proxyOnlyHeaders = []string{
	"x-forwarded-prefix",
	"x-forwarded-port",
	"x-forwarded-server",
	"x-forwarded-ssl",
	"x-forwarded-scheme",
	"front-end-https",
}

// HeaderStripper removes client-supplied headers that only Portero (or a
// trusted proxy) may set. Names are compared after folding case and treating
// '_' and '.' as '-', since CGI-style upstreams read X_Auth_User_Id, x-auth-user-id
// and X-Auth-User-Id as the same header.
type HeaderStripper struct {
	identity map[string]struct{}
}

// NewHeaderStripper strips the given identity header names plus the x-auth- family.
func NewHeaderStripper(identityNames ...string) *HeaderStripper {
	s := &HeaderStripper{identity: make(map[string]struct{}, len(identityNames))}
	for _, n := range identityNames {
		if n != "" {
			s.identity[normalizeHeaderName(n)] = struct{}{}
		}
	}
	return s
}

// IsIdentity reports whether name is read by an upstream as an identity header.
func (s *HeaderStripper) IsIdentity(name string) bool {
	var buf [64]byte
	n := foldHeaderName(buf[:0], name)
	if bytes.HasPrefix(n, []byte(identityPrefix)) {
		return true
	}
	_, ok := s.identity[string(n)]
	return ok
}

// Strip deletes identity and spoofable headers from h. Headers a trusted proxy
// may set survive when peerTrusted.
func (s *HeaderStripper) Strip(h http.Header, peerTrusted bool) {
	var buf [64]byte
	for name := range h {
		n := foldHeaderName(buf[:0], name)
		if bytes.HasPrefix(n, []byte(identityPrefix)) || s.isListed(n, peerTrusted) {
			delete(h, name)
		}
	}
}

func (s *HeaderStripper) isListed(n []byte, peerTrusted bool) bool {
	if _, ok := s.identity[string(n)]; ok {
		return true
	}
	if slices.Contains(spoofableHeaders, string(n)) {
		return true
	}
	return !peerTrusted && slices.Contains(proxyOnlyHeaders, string(n))
}

func normalizeHeaderName(name string) string {
	return string(foldHeaderName(nil, name))
}

// foldHeaderName appends name to dst in the form upstreams compare: lower
// case, with '_' and '.' read as '-'. Callers pass a stack buffer so the
// per-request strip does not allocate.
func foldHeaderName(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_' || c == '.':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
