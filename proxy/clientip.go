package proxy

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// IPResolver decides who the client is. The socket peer is believed; forwarding
// headers are believed only when the peer is a trusted proxy, and then only up
// to the first address (from the right) that is not itself trusted.
type IPResolver struct {
	trusted []netip.Prefix
}

// NewIPResolver returns a resolver trusting the given proxy ranges.
func NewIPResolver(trusted []netip.Prefix) *IPResolver {
	return &IPResolver{trusted: trusted}
}

// Trusted reports whether addr is one of the trusted proxies.
func (c *IPResolver) Trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range c.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Resolve returns the socket peer, whether it is trusted, and the client IP.
func (c *IPResolver) Resolve(r *http.Request) (peer netip.Addr, peerTrusted bool, client netip.Addr) {
	peer = remoteAddr(r.RemoteAddr)
	if !peer.IsValid() || !c.Trusted(peer) {
		return peer, false, peer
	}
	client = peer
	// Walk X-Forwarded-For from the right: each hop was added by the proxy
	// to its right, so only hops vouched for by trusted proxies count.
	hops := forwardedForHops(r.Header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(hops[i])
		if err != nil {
			break
		}
		client = addr.Unmap()
		if !c.Trusted(client) {
			break
		}
	}
	return peer, true, client
}

func remoteAddr(s string) netip.Addr {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = s
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap()
}

func forwardedForHops(values []string) []string {
	var hops []string
	for _, v := range values {
		for h := range strings.SplitSeq(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	return hops
}
