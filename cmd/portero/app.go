package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/authn"
	"github.com/portero/portero/configs"
	"github.com/portero/portero/notify"
	"github.com/portero/portero/proxy"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/storage"
)

// app is every long-lived part of a running Portero, built from one
// configuration; close releases them in reverse order.
type app struct {
	cfg      configs.Config
	db       *storage.DB
	rdb      redis.UniversalClient // nil with memory:// sessions
	users    authn.UserStore
	sessions sessions.Store
	counters sessions.CounterStore
	audit    *audit.Writer
	hasher   *authn.Hasher
	svc      *authn.Service
	creds    *authn.Credentials
	minter   *authn.Minter
	tokens   *authn.SessionTokens
	csrf     *authn.CSRF
	metrics  *prometheus.Registry
	toggles  *proxy.Toggles // fleet-wide route overrides (serve only; routes.go)
	closers  []func(context.Context) error
}

// newApp opens the stores and builds the services. stdout receives the
// one-time bootstrap admin password when one is generated.
func newApp(ctx context.Context, cfg configs.Config, getenv func(string) string, log *zap.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, metrics: newRegistry()}
	defer func() {
		if err != nil {
			_ = a.close(context.Background())
		}
	}()
	if a.db, err = openStorage(ctx, cfg.Storage, log); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func(context.Context) error { return a.db.Close() })
	a.users = authn.NewUserStore(a.db)

	idle, abs := cfg.Sessions.IdleTimeout.D(), cfg.Sessions.AbsoluteTimeout.D()
	throttle := sessions.WithTouchThrottle(cfg.Sessions.TouchInterval.D())
	if cfg.Sessions.Driver() == "redis" {
		if a.rdb, err = sessions.NewRedisClient(cfg.Sessions.URL.Reveal()); err != nil {
			return nil, fmt.Errorf("sessions.url: %w", err)
		}
		a.closers = append(a.closers, func(context.Context) error { return a.rdb.Close() })
		prefix := cfg.Sessions.KeyPrefix
		store, err := sessions.NewRedisStore(a.rdb, idle, abs, throttle, sessions.WithKeyPrefix(prefix+"sess:"))
		if err != nil {
			return nil, err
		}
		a.sessions = store
		if ttl := cfg.Sessions.CacheTTL.D(); ttl > 0 {
			cached, err := sessions.NewCachedRedisStore(store, a.rdb, ttl)
			if err != nil {
				return nil, err
			}
			registerCacheMetrics(a.metrics, cached)
			a.sessions = cached
		}
		if a.counters, err = sessions.NewRedisCounters(a.rdb, sessions.WithCounterKeyPrefix(prefix+"cnt:")); err != nil {
			return nil, err
		}
	} else {
		if a.sessions, err = sessions.NewMemoryStore(idle, abs, throttle); err != nil {
			return nil, err
		}
		if a.counters, err = sessions.NewMemoryCounters(); err != nil {
			return nil, err
		}
	}
	a.closers = append(a.closers, a.sessions.Close, a.counters.Close)

	lockout, err := authn.NewLockout(a.counters, authn.LockoutPolicy{
		MaxAttempts: cfg.Lockout.MaxAttempts, Window: cfg.Lockout.Window.D(), Duration: cfg.Lockout.Duration.D(),
		IPMaxAttempts: cfg.Lockout.IPMaxAttempts, IPWindow: cfg.Lockout.IPWindow.D(),
	})
	if err != nil {
		return nil, fmt.Errorf("lockout: %w", err)
	}
	if a.hasher, err = authn.NewHasher(authn.DefaultArgon2Params(), cfg.Hashing.Workers, cfg.Hashing.Queue, cfg.Hashing.MaxWait.D()); err != nil {
		return nil, err
	}

	secret := []byte(cfg.SecretKey.Reveal())
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
		log.Warn("secret_key is not set: using a random key; sessions and tokens will not survive a restart or work across instances")
	}
	ring, err := authn.NewKeyring(secret)
	if err != nil {
		return nil, fmt.Errorf("secret_key: %w", err)
	}
	if a.tokens, err = authn.NewSessionTokens(ring, nil); err != nil {
		return nil, err
	}
	if a.csrf, err = authn.NewCSRF(ring); err != nil {
		return nil, err
	}
	assertions, err := authn.NewAssertions(ring, authn.AssertionConfig{})
	if err != nil {
		return nil, err
	}
	var legacy *authn.LegacyTokens
	if s := cfg.Legacy.JWTSecret.Reveal(); s != "" {
		if legacy, err = authn.NewLegacyTokens(authn.LegacyConfig{Secret: []byte(s), Algorithm: cfg.Legacy.JWTAlgorithm, Subject: cfg.Legacy.Subject}); err != nil {
			return nil, fmt.Errorf("legacy: %w", err)
		}
	}
	a.minter = authn.NewMinter(assertions, legacy, cfg.Legacy.Subject, time.Minute, nil)

	if a.audit, err = audit.NewWriter(audit.NewStore(a.db), audit.WriterConfig{
		SpoolDir: cfg.Audit.SpoolDir, SpoolMaxBytes: int64(cfg.Audit.SpoolMaxBytes),
		OnSpoolFull: audit.SpoolFullPolicy(cfg.Audit.OnSpoolFull), Logger: log.With(zap.String("component", "audit")),
	}); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	a.closers = append(a.closers, a.audit.Close)
	audit.RegisterMetrics(a.metrics, a.audit)
	a.metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "portero_sessions_active", Help: "Live sessions in the session store (all instances' when it is Redis); NaN when the store does not answer.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := a.sessions.Count(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	}))

	notifier, err := newNotifier(cfg.Notify)
	if err != nil {
		return nil, err
	}
	sealer, err := authn.NewSecretSealer(ring)
	if err != nil {
		return nil, err
	}
	a.svc = authn.NewService(authn.ServiceDeps{
		Users: a.users, Sessions: a.sessions, Hasher: a.hasher, Lockout: lockout,
		Tokens: a.tokens, Audit: a.audit, Log: log, Metrics: authn.NewMetrics(a.metrics),
		AccountTokens: authn.NewAccountTokenStore(a.db), Notifier: notifier, FlowMetrics: authn.NewFlowMetrics(a.metrics),
		MFAStore: authn.NewMFAStore(a.db), MFASealer: sealer,
	}, authn.ServiceConfig{
		Registration: cfg.Registration, RevealLock: cfg.Lockout.Reveal,
		IdleTimeout: idle, AbsoluteTimeout: abs, Policy: authn.DefaultPasswordPolicy(),
		Flows: flowConfig(cfg),
	})
	a.closers = append(a.closers, a.svc.Close) // queued mail, before the stores close
	a.creds = authn.NewCredentials(a.svc, cfg.Sessions.CookieName, legacy)
	return a, nil
}

// startRetention prunes audit rows older than audit.retention in the
// background, in small batches, until the app closes.
func (a *app) startRetention(log *zap.Logger) {
	maxAge := a.cfg.Audit.Retention.D()
	if maxAge <= 0 {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = audit.Retention{MaxAge: maxAge, Logger: log.With(zap.String("component", "audit-retention"))}.Run(ctx, audit.NewStore(a.db))
	}()
	a.closers = append(a.closers, func(context.Context) error { stop(); <-done; return nil })
}

// close releases everything, the audit writer's flush included, in reverse order.
func (a *app) close(ctx context.Context) error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i](ctx))
	}
	return errors.Join(errs...)
}

// checks are the dependencies /-/readyz reports.
func (a *app) checks(upstream *url.URL) []proxy.Check {
	checks := []proxy.Check{
		proxy.UpstreamCheck(upstream),
		{Name: a.db.Dialect().String(), Fn: a.db.Ping},
		{Name: "audit", Fn: func(context.Context) error { return a.audit.Healthy() }},
	}
	if a.rdb != nil {
		checks = append(checks, proxy.Check{Name: "redis", Fn: a.sessions.Ping})
	}
	return checks
}

// ownHandler serves /auth and /users.
func (a *app) ownHandler(progress *proxy.Progress, log *zap.Logger) http.Handler {
	return authn.NewHandlers(a.svc, a.creds, authn.HandlerConfig{
		APIPrefix: a.cfg.APIPrefix, CookieName: a.cfg.Sessions.CookieName,
		// Over TLS every cookie is Secure, whatever sessions.cookie_secure says.
		CookieSecure: a.cfg.Sessions.CookieSecure || a.cfg.TLS.Enabled(),
		CSRF:         a.csrf, Pages: authn.PagesConfig{Title: a.cfg.UI.Title, LogoURL: a.cfg.UI.LogoURL},
		Stats:      authn.NewStats(a.db, a.users, audit.NewStatsReader(a.db), nil),
		Routes:     a.routeToggler(),
		AuditQuery: audit.NewQueryHandler(audit.NewStore(a.db), audit.HandlerConfig{Logger: log.With(zap.String("component", "audit-query"))}),
		Migration:  progress,
	}, log).Echo()
}

// bootstrapAdmin creates the first admin on an empty user table, with
// PORTERO_ADMIN_PASSWORD or a generated password printed once to out.
func (a *app) bootstrapAdmin(ctx context.Context, getenv func(string) string, out io.Writer, log *zap.Logger) error {
	n, err := a.users.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	email := getenv("PORTERO_ADMIN_EMAIL")
	if email == "" {
		email = "admin@portero.local"
	}
	password, generated := getenv("PORTERO_ADMIN_PASSWORD"), false
	if password == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		password, generated = "Pt!"+hex.EncodeToString(b[:])+"Z", true
	}
	admin := true
	_, err = a.svc.Register(ctx, authn.RegisterInput{Email: email, Password: password, RoleID: ptr(1), IsSuperuser: &admin, IsVerified: &admin},
		&authn.Principal{Session: sessions.Session{Roles: []string{"admin"}, UserID: "bootstrap"}}, authn.ClientMeta{UserAgent: "portero bootstrap"})
	if errors.Is(err, authn.ErrUserExists) {
		return nil // another instance got there first
	}
	if err != nil {
		return fmt.Errorf("creating the first admin: %w", err)
	}
	log.Info("created the first admin", zap.String("email", email), zap.Bool("password_generated", generated))
	if generated {
		fmt.Fprintf(out, "\n  First start: created admin %s with password %s\n  (shown once; set PORTERO_ADMIN_PASSWORD to choose it)\n\n", email, password)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// newNotifier is the mail sender notify.kind names; nil for none.
func newNotifier(n configs.Notify) (authn.Notifier, error) {
	switch n.Kind {
	case "smtp":
		s, err := notify.NewSMTP(notify.SMTPConfig{Host: n.SMTP.Host, Port: n.SMTP.Port, Username: n.SMTP.Username,
			Password: n.SMTP.Password.Reveal(), From: n.From, StartTLS: n.SMTP.StartTLS})
		if err != nil {
			return nil, fmt.Errorf("notify.smtp: %w", err)
		}
		return s, nil
	case "file":
		f, err := notify.NewFile(n.File.Path, n.From)
		if err != nil {
			return nil, fmt.Errorf("notify.file: %w", err)
		}
		return f, nil
	}
	return nil, nil
}

// flowConfig is the reset and verification settings; links point at the
// browser pages under notify.base_url and api_prefix.
func flowConfig(cfg configs.Config) authn.FlowConfig {
	f := authn.FlowConfig{
		ResetTokenLifetime: cfg.PasswordReset.TokenLifetime.D(), VerifyTokenLifetime: cfg.Verification.TokenLifetime.D(),
		RequireVerified: cfg.Verification.RequiredForLogin, Site: cfg.UI.Title,
	}
	if base := strings.TrimRight(cfg.Notify.BaseURL, "/"); base != "" {
		f.ResetURL = base + cfg.APIPrefix + authn.PathResetPage
		f.VerifyURL = base + cfg.APIPrefix + authn.PathVerifyPage
	}
	return f
}

// newRegistry is the ops listener's Prometheus registry: the Go runtime,
// the process, and build information; the packages add their own series.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "portero_build_info", Help: "Always 1; labels name the running build.",
			ConstLabels: prometheus.Labels{"version": version, "commit": commit, "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
	)
	return reg
}

// routeAuditor is the audit writer as audited routes see it: under
// fail_open a full spool does not refuse requests (events are dropped and
// counted instead); under fail_closed it does.
type routeAuditor struct {
	*audit.Writer
	failOpen bool
}

func (r routeAuditor) Healthy() error {
	if r.failOpen {
		return nil
	}
	return r.Writer.Healthy()
}

// registerCacheMetrics exports the session cache's counters.
func registerCacheMetrics(reg prometheus.Registerer, c *sessions.CachedStore) {
	counter := func(name, help string, v func(sessions.CacheStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v(c.Stats())) })
	}
	reg.MustRegister(
		counter("portero_session_cache_hits_total", "Session checks answered from the local cache.", func(s sessions.CacheStats) uint64 { return s.Hits }),
		counter("portero_session_cache_misses_total", "Session checks that went to Redis.", func(s sessions.CacheStats) uint64 { return s.Misses }),
		counter("portero_session_cache_invalidations_total", "Session changes broadcast to every instance's cache.", func(s sessions.CacheStats) uint64 { return s.Broadcasts }),
		counter("portero_session_cache_ack_timeouts_total", "Broadcasts some instance did not acknowledge in time (its copies expire with the cache TTL).", func(s sessions.CacheStats) uint64 { return s.AckTimeouts }),
		counter("portero_session_cache_resets_total", "Times the cache was emptied because its invalidation subscription went down or came up.", func(s sessions.CacheStats) uint64 { return s.Resets }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portero_session_cache_subscribed", Help: "1 while invalidations arrive and the cache serves; 0 while it is bypassed."}, func() float64 {
			if c.Stats().Subscribed {
				return 1
			}
			return 0
		}),
	)
}
