package proxy

import "errors"

// Errors the forwarder classifies upstream failures into; the front door maps
// them to 502 and 504.
var (
	// ErrUpstreamUnavailable means the upstream refused, reset or garbled the exchange.
	ErrUpstreamUnavailable = errors.New("proxy: upstream unavailable")
	// ErrUpstreamTimeout means the upstream did not answer within the configured time.
	ErrUpstreamTimeout = errors.New("proxy: upstream timed out")
	// ErrInvalidUpstream means the configured upstream URL cannot be used.
	ErrInvalidUpstream = errors.New("proxy: invalid upstream URL")
	// ErrInvalidHostSetting means upstream.host is neither preserve, upstream nor a host.
	ErrInvalidHostSetting = errors.New("proxy: invalid upstream host setting")
)
