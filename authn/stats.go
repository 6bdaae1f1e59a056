package authn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/storage"
)

// The admin dashboard: GET /auth/stats/* (the migration guide's security
// dashboard) and GET /audit. The figures about users and session history
// are counted here, from the tables authn owns; those about logins come
// from the audit trail, which covers every instance of a fleet.

// AuditStats is what the stats endpoints need of the audit trail
// (*audit.StatsReader).
type AuditStats interface {
	LoginStats(ctx context.Context, since, until time.Time, topIPs int) (audit.LoginStats, error)
	CountActions(ctx context.Context, since, until time.Time, actions ...string) (map[string]int64, error)
}

// Stats windows: the optional ?window= of every stats endpoint.
const (
	DefaultStatsWindow = 24 * time.Hour
	MaxStatsWindow     = 90 * 24 * time.Hour
)

// topFailingIPs is how many addresses login-attempts lists.
const topFailingIPs = 10

// Stats answers the dashboard's questions. Every query is a range over an
// index (migration 0002): users by last_login or locked_until, session
// history by created_at or expires_at, audit_logs by (action, created_at).
type Stats struct {
	users UserStore
	db    dbConn
	dur   string // the SQL of a session's duration in seconds, per dialect
	audit AuditStats
	now   func() time.Time
}

// NewStats builds the dashboard's figures from db (migrated), the user
// store on it and the audit trail's statistics. now is the clock that ends
// every window (nil: time.Now); give it the Service's, which stamps logins
// and locks.
func NewStats(db *storage.DB, users UserStore, aud AuditStats, now func() time.Time) *Stats {
	if now == nil {
		now = time.Now
	}
	s := &Stats{users: users, audit: aud, now: now}
	switch db.Dialect() {
	case storage.Postgres:
		s.db = pgConn{pool: db.Pool()}
		s.dur = "extract(epoch FROM ended_at - created_at)::float8"
	case storage.SQLite:
		s.db = sqliteConn{db: db.SQL()}
		// julianday keeps milliseconds, which is what the answer shows.
		s.dur = "(julianday(ended_at) - julianday(created_at)) * 86400.0"
	default:
		panic(fmt.Sprintf("authn: NewStats: unsupported dialect %v", db.Dialect()))
	}
	return s
}

// OpenSessions counts the sessions open at now according to session
// history (not ended, not past their absolute expiry), and their users.
// History knows of logouts, revocations and password changes; a session
// that idled out in the session store stays counted until its absolute
// expiry, so this is an upper bound of what the session store holds.
func (s *Stats) OpenSessions(ctx context.Context, now time.Time) (sessions, users int64, err error) {
	now = dbTime(now)
	err = s.db.queryRow(ctx, `SELECT count(*), count(DISTINCT user_id) FROM user_sessions
WHERE expires_at > $1 AND ended_at IS NULL`, now).Scan(&sessions, &users)
	if err != nil {
		return 0, 0, fmt.Errorf("authn: open sessions: %w", err)
	}
	return sessions, users, nil
}

// SessionStats are session-history figures of a window.
type SessionStats struct {
	// Started counts sessions created in the window; Ended those of them
	// that have ended (by logout, revocation, password change, …), by
	// end reason in EndedByReason.
	Started, Ended int64
	EndedByReason  map[string]int64
	// Open and OpenUsers are as OpenSessions reports them at the window's end.
	Open, OpenUsers int64
	// P50, P90 and P99 are the nearest-rank percentiles of the duration
	// (ended_at - created_at) of the Ended sessions, at millisecond
	// precision; nil when none has ended.
	P50, P90, P99 *time.Duration
}

// SessionStats returns the session figures of [since, until).
func (s *Stats) SessionStats(ctx context.Context, since, until time.Time) (SessionStats, error) {
	since, until = dbTime(since), dbTime(until)
	st := SessionStats{EndedByReason: map[string]int64{}}
	rows, err := s.db.query(ctx, `SELECT coalesce(end_reason, ''), count(*), count(ended_at) FROM user_sessions
WHERE created_at >= $1 AND created_at < $2
GROUP BY end_reason`, since, until)
	if err != nil {
		return SessionStats{}, fmt.Errorf("authn: session stats: %w", err)
	}
	err = eachRow(rows, func() error {
		var (
			reason         string
			started, ended int64
		)
		if err := rows.Scan(&reason, &started, &ended); err != nil {
			return err
		}
		st.Started += started
		st.Ended += ended
		if ended > 0 {
			if reason == "" {
				reason = "unspecified"
			}
			st.EndedByReason[reason] += ended
		}
		return nil
	})
	if err != nil {
		return SessionStats{}, fmt.Errorf("authn: session stats: %w", err)
	}
	if st.Open, st.OpenUsers, err = s.OpenSessions(ctx, until); err != nil {
		return SessionStats{}, err
	}
	if st.Ended == 0 {
		return st, nil
	}

	// Nearest rank, as PostgreSQL's percentile_disc: the first duration
	// whose rank rn satisfies rn/n >= p, i.e. rn = ceil(n*p), written in
	// integers so that both backends pick the same row. The same statement
	// runs on both (SQLite has no percentile function).
	rows, err = s.db.query(ctx, `SELECT pc.p, r.d FROM (
    SELECT d, row_number() OVER (ORDER BY d) AS rn, count(*) OVER () AS n FROM (
        SELECT `+s.dur+` AS d FROM user_sessions
        WHERE created_at >= $1 AND created_at < $2 AND ended_at IS NOT NULL) AS e) AS r
CROSS JOIN (SELECT 50 AS p UNION ALL SELECT 90 UNION ALL SELECT 99) AS pc
WHERE r.rn * 100 >= r.n * pc.p AND (r.rn - 1) * 100 < r.n * pc.p`, since, until)
	if err != nil {
		return SessionStats{}, fmt.Errorf("authn: session durations: %w", err)
	}
	err = eachRow(rows, func() error {
		var (
			p    int64
			secs float64
		)
		if err := rows.Scan(&p, &secs); err != nil {
			return err
		}
		d := time.Duration(math.Round(secs*1000)) * time.Millisecond
		switch p {
		case 50:
			st.P50 = &d
		case 90:
			st.P90 = &d
		case 99:
			st.P99 = &d
		}
		return nil
	})
	if err != nil {
		return SessionStats{}, fmt.Errorf("authn: session durations: %w", err)
	}
	return st, nil
}

func eachRow(rows dbRows, fn func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}

// parseWindow reads ?window=: a Go duration ("90m", "1h30m") or whole days
// ("7d"); empty is DefaultStatsWindow. It must be positive and at most
// MaxStatsWindow.
func parseWindow(v string) (time.Duration, error) {
	if v == "" {
		return DefaultStatsWindow, nil
	}
	if len(v) > 32 {
		return 0, errors.New("too long")
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, err
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, err
		}
	}
	if d <= 0 || d > MaxStatsWindow {
		return 0, errors.New("out of range")
	}
	return d, nil
}

// formatWindow writes a window the short way: "7d", "1h30m", "90s".
func formatWindow(d time.Duration) string {
	const day = 24 * time.Hour
	if d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String() // "1h0m0s", "1h30m0s", "30m0s", "1.5s"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// statsWindow is the window every stats answer starts with.
type statsWindow struct {
	Window string    `json:"window"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
}

// window reads ?window= and ends it now.
func (s *Stats) window(c echo.Context) (statsWindow, error) {
	d, err := parseWindow(c.QueryParam("window"))
	if err != nil {
		return statsWindow{}, validationErr(ValidationIssue{
			Loc: []any{"query", "window"}, Type: "value_error",
			Msg: "window must be a duration such as 1h, 24h or 7d, positive and at most 90d",
		})
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	return statsWindow{Window: formatWindow(d), Since: now.Add(-d), Until: now}, nil
}

// ActiveUsers serves GET /auth/stats/active-users:
//
//	{"window": "1d", "since": "2026-02-28T09:00:00Z", "until": "2026-03-01T09:00:00Z",
//	 "active_users": 12,              // users whose last login is in the window
//	 "total_users": 40,
//	 "open_sessions": 15,             // open per session history, see OpenSessions
//	 "users_with_open_sessions": 11}
func (s *Stats) ActiveUsers(c echo.Context) error {
	w, err := s.window(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	total, err := s.users.CountUsers(ctx)
	if err != nil {
		return err
	}
	active, err := s.users.CountActiveUsers(ctx, w.Since)
	if err != nil {
		return err
	}
	open, openUsers, err := s.OpenSessions(ctx, w.Until)
	if err != nil {
		return err
	}
	return writeStats(c, struct {
		statsWindow
		ActiveUsers      int   `json:"active_users"`
		TotalUsers       int   `json:"total_users"`
		OpenSessions     int64 `json:"open_sessions"`
		UsersWithSession int64 `json:"users_with_open_sessions"`
	}{w, active, total, open, openUsers})
}

// ipFailures is one entry of top_failing_ips.
type ipFailures struct {
	IP       string `json:"ip"`
	Failures int64  `json:"failures"`
}

// LoginAttempts serves GET /auth/stats/login-attempts, from the audit trail:
//
//	{"window": "1h", "since": "…", "until": "…",
//	 "succeeded": 120, "failed": 7, "total": 127,
//	 "failure_rate": 0.0551,          // failed / total, 4 decimals; 0 when total is 0
//	 "lockouts": 1,                   // accounts locked in the window
//	 "failures_by_reason": {"bad_password": 5, "unknown_user": 2},
//	 "top_failing_ips": [{"ip": "203.0.113.9", "failures": 5}]}   // at most 10, most first
//
// Reasons are those of auth.login.failed: bad_password, unknown_user,
// inactive, locked, throttled_account, throttled_ip.
func (s *Stats) LoginAttempts(c echo.Context) error {
	w, err := s.window(c)
	if err != nil {
		return err
	}
	st, err := s.audit.LoginStats(c.Request().Context(), w.Since, w.Until, topFailingIPs)
	if err != nil {
		return err
	}
	total := st.Succeeded + st.Failed
	rate := 0.0
	if total > 0 {
		rate = math.Round(float64(st.Failed)/float64(total)*1e4) / 1e4
	}
	ips := make([]ipFailures, len(st.TopFailingIPs))
	for i, ip := range st.TopFailingIPs {
		ips[i] = ipFailures{IP: ip.IP, Failures: ip.Count}
	}
	return writeStats(c, struct {
		statsWindow
		Succeeded     int64            `json:"succeeded"`
		Failed        int64            `json:"failed"`
		Total         int64            `json:"total"`
		FailureRate   float64          `json:"failure_rate"`
		Lockouts      int64            `json:"lockouts"`
		ByReason      map[string]int64 `json:"failures_by_reason"`
		TopFailingIPs []ipFailures     `json:"top_failing_ips"`
	}{w, st.Succeeded, st.Failed, total, rate, st.Lockouts, st.FailuresByReason, ips})
}

// lockedAccount is one entry of locked-accounts.
type lockedAccount struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	LockedUntil   time.Time `json:"locked_until"`
	LoginAttempts int       `json:"login_attempts"`
}

// LockedAccounts serves GET /auth/stats/locked-accounts:
//
//	{"window": "1d", "since": "…", "until": "…",
//	 "locked": 2,                     // accounts locked now
//	 "lockouts": 3,                   // accounts locked during the window (audit trail)
//	 "accounts": [{"id": "…", "email": "…", "locked_until": "…", "login_attempts": 5}]}
//
// accounts lists those locked now, the latest expiry first, at most 500;
// locked counts them all. The user rows mirror the lockout counters, which
// decide; the two agree except while the counter store is unreachable.
func (s *Stats) LockedAccounts(c echo.Context) error {
	w, err := s.window(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	n, err := s.users.CountLockedUsers(ctx, w.Until)
	if err != nil {
		return err
	}
	list, err := s.users.LockedUsers(ctx, w.Until)
	if err != nil {
		return err
	}
	counts, err := s.audit.CountActions(ctx, w.Since, w.Until, audit.ActionAccountLocked)
	if err != nil {
		return err
	}
	accounts := make([]lockedAccount, 0, len(list))
	for _, u := range list {
		if u.LockedUntil == nil {
			continue
		}
		accounts = append(accounts, lockedAccount{ID: u.ID, Email: u.Email, LockedUntil: u.LockedUntil.UTC(), LoginAttempts: u.LoginAttempts})
	}
	return writeStats(c, struct {
		statsWindow
		Locked   int             `json:"locked"`
		Lockouts int64           `json:"lockouts"`
		Accounts []lockedAccount `json:"accounts"`
	}{w, n, counts[audit.ActionAccountLocked], accounts})
}

// Sessions serves GET /auth/stats/sessions, from session history:
//
//	{"window": "1d", "since": "…", "until": "…",
//	 "started": 30,                   // sessions created in the window
//	 "ended": 20,                     // … of which have ended
//	 "ended_by_reason": {"logout": 15, "revoked": 5},
//	 "open": 8, "open_users": 6,      // open now, see OpenSessions
//	 "duration_seconds": {"p50": 600.5, "p90": 3000, "p99": 7000}}
//
// Durations are those of the ended sessions (nearest-rank percentiles, in
// seconds with millisecond precision), each null when none has ended.
func (s *Stats) Sessions(c echo.Context) error {
	w, err := s.window(c)
	if err != nil {
		return err
	}
	st, err := s.SessionStats(c.Request().Context(), w.Since, w.Until)
	if err != nil {
		return err
	}
	secs := func(d *time.Duration) *float64 {
		if d == nil {
			return nil
		}
		v := d.Seconds()
		return &v
	}
	type durations struct {
		P50 *float64 `json:"p50"`
		P90 *float64 `json:"p90"`
		P99 *float64 `json:"p99"`
	}
	return writeStats(c, struct {
		statsWindow
		Started   int64            `json:"started"`
		Ended     int64            `json:"ended"`
		ByReason  map[string]int64 `json:"ended_by_reason"`
		Open      int64            `json:"open"`
		OpenUsers int64            `json:"open_users"`
		Duration  durations        `json:"duration_seconds"`
	}{w, st.Started, st.Ended, st.EndedByReason, st.Open, st.OpenUsers, durations{secs(st.P50), secs(st.P90), secs(st.P99)}})
}

func writeStats(c echo.Context, v any) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return writeJSON(c, http.StatusOK, v)
}

// dashboardRoutes registers the admin dashboard's endpoints that are
// configured: the stats under /auth/stats and the audit query at /audit.
func (h *Handlers) dashboardRoutes(g *echo.Group) {
	if s := h.cfg.Stats; s != nil {
		g.GET("/auth/stats/active-users", h.admin(s.ActiveUsers))
		g.GET("/auth/stats/login-attempts", h.admin(s.LoginAttempts))
		g.GET("/auth/stats/locked-accounts", h.admin(s.LockedAccounts))
		g.GET("/auth/stats/sessions", h.admin(s.Sessions))
	}
	if h.cfg.AuditQuery != nil {
		g.GET("/audit", h.admin(auditErrors(h.cfg.AuditQuery)))
	}
}

// auditErrors turns the audit handler's refused parameters into this
// package's 422 answer, located at ["query", param] as FastAPI does.
func auditErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		var pe *audit.ParamsError
		switch {
		case errors.As(err, &pe):
			issues := make([]ValidationIssue, len(pe.Issues))
			for i, is := range pe.Issues {
				issues[i] = ValidationIssue{Loc: []any{"query", is.Param}, Msg: is.Msg, Type: is.Type}
			}
			return validationErr(issues...)
		case errors.Is(err, audit.ErrInvalidFilter):
			return validationErr(ValidationIssue{Loc: []any{"query"}, Msg: "invalid filter", Type: "value_error"})
		}
		return err
	}
}
