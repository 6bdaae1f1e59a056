package audit

import "github.com/prometheus/client_golang/prometheus"

// RegisterMetrics exports the writer's counters to Prometheus, read from
// Stats at scrape time, so the writer's hot path pays nothing for them.
func RegisterMetrics(reg prometheus.Registerer, w *Writer) {
	counter := func(name, help string, v func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v(w.Stats())) })
	}
	gauge := func(name, help string, v func(Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(w.Stats()) })
	}
	reg.MustRegister(
		counter("portero_audit_events_written_total", "Audit events stored in the database (directly or from the spool).", func(s Stats) uint64 { return s.Written }),
		counter("portero_audit_events_spooled_total", "Audit events written to the local spool while the database could not take them.", func(s Stats) uint64 { return s.Spooled }),
		counter("portero_audit_events_dropped_total", "Audit events lost (fail_open with the spool full).", func(s Stats) uint64 { return s.Dropped }),
		counter("portero_audit_events_refused_total", "Audit events refused with the spool full (fail_closed); their requests were refused.", func(s Stats) uint64 { return s.Refused }),
		counter("portero_audit_events_rejected_total", "Audit events the database refused, set aside in rejected.ndjson.", func(s Stats) uint64 { return s.Rejected }),
		counter("portero_audit_db_errors_total", "Failed audit inserts.", func(s Stats) uint64 { return s.DBErrors }),
		gauge("portero_audit_queue_depth", "Audit events waiting in memory.", func(s Stats) float64 { return float64(s.QueueDepth) }),
		gauge("portero_audit_spool_events", "Audit events in the spool, not yet delivered.", func(s Stats) float64 { return float64(s.SpoolEvents) }),
		gauge("portero_audit_spool_bytes", "Size of the audit spool.", func(s Stats) float64 { return float64(s.SpoolBytes) }),
		gauge("portero_audit_spool_full", "1 while the audit spool cannot take events.", func(s Stats) float64 {
			if s.SpoolFull {
				return 1
			}
			return 0
		}),
	)
}
