package proxy

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Check is one dependency readiness depends on.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Health serves /-/healthz (the process is alive) and /-/readyz (every
// dependency answers and the process is not shutting down).
type Health struct {
	checks   []Check
	timeout  time.Duration
	draining atomic.Bool

	// The public listener serves /-/readyz to anyone: a flood of probes must
	// not become a flood of database and Redis pings, so one result serves
	// every probe for a second.
	mu       sync.Mutex
	last     readiness
	lastAt   time.Time
	cacheFor time.Duration
}

// NewHealth returns a health handler running checks with the given timeout each.
func NewHealth(timeout time.Duration, checks ...Check) *Health {
	return &Health{checks: checks, timeout: timeout, cacheFor: time.Second}
}

// StartDraining makes /-/readyz answer 503 from now on, so load balancers
// stop sending traffic while in-flight requests finish.
func (h *Health) StartDraining() { h.draining.Store(true) }

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case "/-/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case "/-/readyz":
		res := h.Ready(r.Context())
		status := http.StatusOK
		if res.Status != "ok" {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, res)
	default:
		WriteError(w, r, http.StatusNotFound, "NOT_FOUND")
	}
}

// Ready reports readiness from a check at most a second old.
func (h *Health) Ready(ctx context.Context) readiness {
	if h.draining.Load() {
		// Shutdown answers at once, never from the cache.
		return readiness{Status: "shutting_down", Checks: map[string]string{"shutdown": "in progress"}}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.lastAt.IsZero() && time.Since(h.lastAt) < h.cacheFor {
		return h.last
	}
	h.last, h.lastAt = h.check(ctx), time.Now()
	return h.last
}

// check runs every check at once and reports each.
func (h *Health) check(ctx context.Context) readiness {
	res := readiness{Status: "ok", Checks: make(map[string]string, len(h.checks))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range h.checks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, h.timeout)
			defer cancel()
			err := c.Fn(cctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Checks[c.Name] = "unavailable"
				if res.Status == "ok" {
					res.Status = "unavailable"
				}
				return
			}
			res.Checks[c.Name] = "ok"
		})
	}
	wg.Wait()
	return res
}

// UpstreamCheck reports whether the upstream accepts TCP connections.
func UpstreamCheck(u *url.URL) Check {
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	return Check{Name: "upstream", Fn: func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return err
		}
		return c.Close()
	}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
