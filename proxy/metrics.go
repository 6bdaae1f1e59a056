package proxy

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the front door's Prometheus series. Labels take only bounded
// values: route names come from the configuration, never from the path.
type Metrics struct {
	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	upstreamErrors   *prometheus.CounterVec
	denials          *prometheus.CounterVec
	shadow           *prometheus.CounterVec
	credentials      *prometheus.CounterVec
}

// NewMetrics registers the proxy's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_http_requests_total", Help: "Requests answered, by route, mode and status class.",
		}, []string{"route", "mode", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "portero_http_request_duration_seconds", Help: "Time from request to the end of the answer, by route and mode.", Buckets: buckets,
		}, []string{"route", "mode"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "portero_upstream_response_duration_seconds", Help: "Time until the upstream's response headers, by route.", Buckets: buckets,
		}, []string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_upstream_errors_total", Help: "Upstream failures, by kind (timeout, unavailable).",
		}, []string{"kind"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_auth_denials_total", Help: "Requests refused by a route's auth, by reason.",
		}, []string{"reason"}),
		shadow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_shadow_decisions_total", Help: "What gateway mode would have decided on shadow routes, by route and decision (allow or the denial reason).",
		}, []string{"route", "decision"}),
		credentials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_route_credentials_total", Help: "Requests by route and the credential kind they arrived with (portero_session, legacy_jwt, none).",
		}, []string{"route", "kind"}),
	}
	reg.MustRegister(m.requests, m.duration, m.upstreamDuration, m.upstreamErrors, m.denials, m.shadow, m.credentials)
	return m
}

// observe records one finished request.
func (m *Metrics) observe(info *requestInfo, status int, took time.Duration) {
	if m == nil {
		return
	}
	route, mode := info.route, info.mode
	if route == "" {
		route, mode = "none", "none"
	}
	m.requests.WithLabelValues(route, mode, statusClass(status)).Inc()
	m.duration.WithLabelValues(route, mode).Observe(took.Seconds())
	if info.upstreamDur > 0 {
		m.upstreamDuration.WithLabelValues(route).Observe(info.upstreamDur.Seconds())
	}
	if info.upstreamErr != "" {
		m.upstreamErrors.WithLabelValues(info.upstreamErr).Inc()
	}
	if info.denial != "" {
		m.denials.WithLabelValues(info.denial).Inc()
	}
}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// shadowDecision counts what gateway would have decided on a shadow route.
func (m *Metrics) shadowDecision(route, decision string) {
	if m != nil {
		m.shadow.WithLabelValues(route, decision).Inc()
	}
}

// credential counts the credential kind a request arrived with.
func (m *Metrics) credential(route, kind string) {
	if m != nil {
		m.credentials.WithLabelValues(route, kind).Inc()
	}
}
