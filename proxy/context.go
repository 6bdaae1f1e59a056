package proxy

import (
	"context"
	"net/netip"
	"time"
)

// requestInfo is what the front door learns about a request as it passes
// through the layers; the access log line is written from it.
type requestInfo struct {
	id          string
	peer        netip.Addr
	clientIP    netip.Addr
	clientText  string // clientIP.String(), made once: the log, X-Real-Ip and Forwarded all need it
	peerTrusted bool
	route       string
	mode        string
	userID      string
	routeRef    *Route
	identity    *Identity
	assertion   string // minted X-Auth-Assertion
	legacyToken string // minted legacy JWT for Authorization
	upstreamDur time.Duration
	clientGone  bool
	upstreamErr string // "timeout" or "unavailable", for metrics
	denial      string // why a route's auth refused, for metrics
}

// clientIPText is the client's IP as text ("" when unknown).
func (info *requestInfo) clientIPText() string {
	if info.clientText == "" && info.clientIP.IsValid() {
		info.clientText = info.clientIP.String()
	}
	return info.clientText
}

// peerText is the socket peer's IP as text ("" when unknown).
func (info *requestInfo) peerText() string {
	switch {
	case info.peer == info.clientIP:
		return info.clientIPText()
	case info.peer.IsValid():
		return info.peer.String()
	}
	return ""
}

type infoKey struct{}

func withInfo(ctx context.Context, info *requestInfo) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

func infoFrom(ctx context.Context) *requestInfo {
	info, _ := ctx.Value(infoKey{}).(*requestInfo)
	return info
}

// RequestID returns the request's id, as forwarded upstream and logged.
func RequestID(ctx context.Context) string {
	if info := infoFrom(ctx); info != nil {
		return info.id
	}
	return ""
}

// ClientAddr returns the client's IP: the socket peer, or what a trusted
// proxy vouched for.
func ClientAddr(ctx context.Context) netip.Addr {
	if info := infoFrom(ctx); info != nil {
		return info.clientIP
	}
	return netip.Addr{}
}

// SetUser records the authenticated user for the access log.
func SetUser(ctx context.Context, userID string) {
	if info := infoFrom(ctx); info != nil {
		info.userID = userID
	}
}

// SetRoute records the route and mode that decided the request.
func SetRoute(ctx context.Context, route, mode string) {
	if info := infoFrom(ctx); info != nil {
		info.route, info.mode = route, mode
	}
}
