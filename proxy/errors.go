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

// Errors the route layer answers with 400.
var (
	// ErrBadPath is a request path upstreams could read in different ways
	// (dot or empty segments, backslashes, control bytes, bad encoding).
	ErrBadPath = errors.New("proxy: malformed request path")
	// ErrAmbiguousPath is a path whose readings fall under different routes.
	ErrAmbiguousPath = errors.New("proxy: request path matches different routes depending on how it is read")
	// ErrInvalidRoute is a route table that cannot be compiled.
	ErrInvalidRoute = errors.New("proxy: invalid route")
)
