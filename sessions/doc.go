// Package sessions holds Portero's live sessions: the Session type (an identity
// snapshot taken at login), the opaque bearer Token that names one, and the
// Store contract with two implementations — Redis for production fleets and an
// in-process store for the embedded single-machine default.
//
// A session is found by Token.Key, the SHA-256 of the token, so a dump of the
// store yields no usable credential. Every session has a sliding idle timeout
// and an absolute cap; both stores decide expiry with the same integer
// millisecond arithmetic (see alive), from an injected clock, so the shared
// contract suite in sessions/sessionstest can move time instead of sleeping.
//
// The request path calls Store.Touch alone, not Get then Touch: it checks
// the session is alive, slides the idle expiry and returns the session in
// one Redis round trip (two on the rare request where a throttled write
// falls due). BenchmarkRequestPath measures the choices.
package sessions
