package authn

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/notify"
)

// FlowMetrics count the account recovery flows (password reset, e-mail
// verification, second factor) and the mail they send. Like Metrics, the
// flows are counted where their audit rows are written. Every label takes
// values from a fixed set.
type FlowMetrics struct {
	resets        *prometheus.CounterVec
	verifications *prometheus.CounterVec
	mfa           *prometheus.CounterVec
	notifications *prometheus.CounterVec
	csrf          *prometheus.CounterVec
}

// csrfReasons are the codes a cross-site request is refused with.
var csrfReasons = []string{"CSRF_ORIGIN_MISMATCH", "CSRF_TOKEN_MISSING", "CSRF_TOKEN_INVALID"}

// NewFlowMetrics registers the series with reg.
func NewFlowMetrics(reg prometheus.Registerer) *FlowMetrics {
	m := &FlowMetrics{
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_password_resets_total", Help: "Password reset steps by result (requested, succeeded, bad_token, invalid_password).",
		}, []string{"result"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_email_verifications_total", Help: "E-mail verification steps by result (requested, verified, bad_token, already_verified).",
		}, []string{"result"}),
		mfa: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_mfa_verifications_total", Help: "Second-factor checks and changes by result (challenged, succeeded, recovery_code, failed, enrolled, disabled, reset).",
		}, []string{"result"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_notifications_sent_total", Help: "Messages to users by kind and result (sent, failed, dropped: the queue was full, throttled: a link went to the account less than a minute before).",
		}, []string{"kind", "result"}),
		// A refused cross-site request is someone's browser sent by another
		// site: worth an alert, and cheap to count (anyone can make more,
		// so no audit row per request).
		csrf: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portero_csrf_refused_total", Help: "Cross-site requests refused on Portero's own endpoints, by reason.",
		}, []string{"reason"}),
	}
	for _, r := range csrfReasons {
		m.csrf.WithLabelValues(r)
	}
	for _, k := range notify.Kinds() {
		for _, r := range []string{"sent", "failed", "dropped", "throttled"} {
			m.notifications.WithLabelValues(string(k), r)
		}
	}
	reg.MustRegister(m.resets, m.verifications, m.mfa, m.notifications, m.csrf)
	return m
}

// Audit actions of the flows.
const (
	ActionPasswordResetRequested = "auth.password.reset_requested"
	ActionPasswordReset          = "auth.password.reset"
	ActionPasswordResetFailed    = "auth.password.reset_failed"
	ActionEmailVerifyRequested   = "auth.email.verify_requested"
	ActionEmailVerified          = "auth.email.verified"
	ActionEmailVerifyFailed      = "auth.email.verify_failed"
)

// observe counts one audited action of the flows.
func (m *FlowMetrics) observe(action string, details map[string]any) {
	if m == nil {
		return
	}
	reason, _ := details["reason"].(string)
	switch action {
	case ActionPasswordResetRequested:
		m.resets.WithLabelValues("requested").Inc()
	case ActionPasswordReset:
		m.resets.WithLabelValues("succeeded").Inc()
	case ActionPasswordResetFailed:
		m.resets.WithLabelValues(reason).Inc()
	case ActionEmailVerifyRequested:
		m.verifications.WithLabelValues("requested").Inc()
	case ActionEmailVerified:
		m.verifications.WithLabelValues("verified").Inc()
	case ActionEmailVerifyFailed:
		m.verifications.WithLabelValues(reason).Inc()
	case ActionMFAEnrolled:
		m.mfa.WithLabelValues("enrolled").Inc()
	case ActionMFADisabled:
		m.mfa.WithLabelValues("disabled").Inc()
	case ActionMFAReset:
		m.mfa.WithLabelValues("reset").Inc()
	case ActionMFAFailed:
		m.mfa.WithLabelValues("failed").Inc()
	case ActionMFAChallenged:
		m.mfa.WithLabelValues("challenged").Inc()
	case audit.ActionLoginSucceeded:
		switch details["mfa"] {
		case "totp":
			m.mfa.WithLabelValues("succeeded").Inc()
		case "recovery_code":
			m.mfa.WithLabelValues("recovery_code").Inc()
		}
	}
}

func (m *FlowMetrics) notification(kind notify.Kind, result string) {
	if m != nil {
		m.notifications.WithLabelValues(string(kind), result).Inc()
	}
}

// csrfRefused counts one refused cross-site request.
func (m *FlowMetrics) csrfRefused(reason string) {
	if m == nil || !slices.Contains(csrfReasons, reason) {
		return
	}
	m.csrf.WithLabelValues(reason).Inc()
}
