// Package proxy is Portero's front door: it gives every request an id and a
// client IP, logs it, keeps Portero's own and operational endpoints apart from
// the proxied space, strips identity headers a client must never supply, and
// forwards the rest to the legacy app through httputil.ReverseProxy.
package proxy
