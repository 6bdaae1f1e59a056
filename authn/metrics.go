package authn

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portero/portero/audit"
)

// Metrics are the account service's Prometheus series. They are counted
// where the audit rows are written, so the two never disagree.
type Metrics struct {
	logins          *prometheus.CounterVec
	lockouts        prometheus.Counter
	unlocks         prometheus.Counter
	passwordChanges prometheus.Counter
	sessionsCreated prometheus.Counter
	sessionsEnded   *prometheus.CounterVec
	sessionDuration prometheus.Histogram
	registrations   prometheus.Counter
}

// NewMetrics registers the service's series with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_logins_total", Help: "Password logins by result (success, bad_password, unknown_user, inactive, locked, throttled_account, throttled_ip).",
		}, []string{"result"}),
		lockouts:        prometheus.NewCounter(prometheus.CounterOpts{Name: "portero_account_lockouts_total", Help: "Accounts locked after too many failed logins."}),
		unlocks:         prometheus.NewCounter(prometheus.CounterOpts{Name: "portero_account_unlocks_total", Help: "Accounts unlocked by an admin."}),
		passwordChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "portero_password_changes_total", Help: "Passwords changed by their users."}),
		sessionsCreated: prometheus.NewCounter(prometheus.CounterOpts{Name: "portero_sessions_created_total", Help: "Sessions opened by a login."}),
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_sessions_ended_total", Help: "Sessions ended explicitly, by reason (logout, revoked, password_changed, deactivated, password_reset, deleted).",
		}, []string{"reason"}),
		sessionDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "portero_session_duration_seconds",
			Help: "How long sessions lasted, from login to an explicit end (logout, revocation, password change, deactivation); idle expiry ends a session silently and is not observed.",
			// One minute to the 12 h absolute cap and a little beyond.
			Buckets: []float64{60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 24 * 3600},
		}),
		registrations: prometheus.NewCounter(prometheus.CounterOpts{Name: "portero_registrations_total", Help: "Users created."}),
	}
	reg.MustRegister(m.logins, m.lockouts, m.unlocks, m.passwordChanges, m.sessionsCreated, m.sessionsEnded, m.sessionDuration, m.registrations)
	return m
}

// observe counts one audited action.
func (m *Metrics) observe(action string, details map[string]any) {
	if m == nil {
		return
	}
	switch action {
	case audit.ActionLoginSucceeded:
		m.logins.WithLabelValues("success").Inc()
		m.sessionsCreated.Inc()
	case audit.ActionLoginFailed:
		reason, _ := details["reason"].(string)
		if reason == "" {
			reason = "unknown"
		}
		m.logins.WithLabelValues(reason).Inc()
	case audit.ActionAccountLocked:
		m.lockouts.Inc()
	case audit.ActionAccountUnlocked:
		m.unlocks.Inc()
	case audit.ActionPasswordChanged:
		m.passwordChanges.Inc()
	case audit.ActionRegister:
		m.registrations.Inc()
	}
}

// sessionEnds counts n sessions ended for reason and observes the
// duration of those whose start is known (zero times are skipped).
func (m *Metrics) sessionEnds(reason string, n int, now time.Time, started ...time.Time) {
	if m == nil || n <= 0 {
		return
	}
	m.sessionsEnded.WithLabelValues(reason).Add(float64(n))
	for _, t := range started {
		if !t.IsZero() {
			m.sessionDuration.Observe(now.Sub(t).Seconds())
		}
	}
}
