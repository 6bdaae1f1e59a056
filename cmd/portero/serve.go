package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/authn"
	"github.com/portero/portero/configs"
	"github.com/portero/portero/proxy"
	"github.com/portero/portero/storage"
)

func cmdServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, code := loadConfigFlag("serve", args, getenv, stderr)
	if code != 0 {
		return code
	}
	// A serving instance writes an access log line per request: buffered,
	// that is one write(2) per 64 KiB or 100 ms instead of one per request
	// (3.4% of a gateway instance's CPU in the load harness's profile). A
	// crash can lose the last 100 ms of lines; the audit trail, not this
	// log, is the record that must survive.
	buffered := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(stderr), Size: 64 << 10, FlushInterval: 100 * time.Millisecond}
	defer func() { _ = buffered.Stop() }()
	log, err := newLogger(cfg.Log, buffered)
	if err != nil {
		fmt.Fprintf(stderr, "portero: %v\n", err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	if gc := startGCTuner(defaultHeapFloor, getenv); gc != nil {
		defer gc.stop()
		log.Debug("garbage collector tuned", zap.Uint64("heap_floor_bytes", gc.floor), zap.Int64("gogc", gc.percent.Load()))
	}

	if err := serve(ctx, cfg, configPath(args, getenv), getenv, stderr, log, nil); err != nil {
		log.Error("portero stopped", zap.Error(err))
		return 1
	}
	return 0
}

// serve runs the gateway until ctx is cancelled, then shuts down gracefully.
// ready, when not nil, receives the bound addresses once both listeners accept.
func serve(ctx context.Context, cfg configs.Config, path string, getenv func(string) string, out io.Writer, log *zap.Logger, ready func(public, ops net.Addr)) error {
	upstream, err := url.Parse(cfg.Upstream.URL)
	if err != nil {
		return fmt.Errorf("upstream.url: %w", err)
	}
	a, err := newApp(ctx, cfg, getenv, log)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.close(closeCtx); err != nil {
			log.Error("closing", zap.Error(err))
		}
	}()
	if err := a.bootstrapAdmin(ctx, getenv, out, log); err != nil {
		return err
	}
	a.startRetention(log)

	h := cfg.Headers
	header := func(key, name string) string {
		if h.Enabled(key) {
			return name
		}
		return ""
	}
	strip := proxy.NewHeaderStripper(h.UserID, h.UserEmail, h.UserRoles, h.LegacyUserID, h.Assertion)
	fwd, err := proxy.NewForwarder(proxy.ForwarderOptions{
		Upstream:        upstream,
		HostMode:        cfg.Upstream.Host,
		DialTimeout:     cfg.Upstream.DialTimeout.D(),
		ResponseTimeout: cfg.Upstream.Timeout.D(),
		IdleConnTimeout: cfg.Upstream.IdleConnTimeout.D(),
		MaxIdleConns:    cfg.Upstream.MaxIdleConns,
		Headers: proxy.IdentityHeaders{
			UserID: header("user_id", h.UserID), Email: header("user_email", h.UserEmail),
			Roles: header("user_roles", h.UserRoles), LegacyID: header("legacy_user_id", h.LegacyUserID),
			Assertion: header("assertion", h.Assertion),
		},
		CookieNames: []string{cfg.Sessions.CookieName, authn.SignInCookieSecure, authn.SignInCookiePlain},
		OwnToken:    a.creds.OwnToken,
	}, strip, log, proxy.ErrorResponder(log))
	if err != nil {
		return err
	}
	table, err := proxy.NewTable(cfg.DefaultMode, cfg.Routes)
	if err != nil {
		return err
	}
	audience := ""
	if h.Enabled("assertion") {
		audience = h.AssertionAudience
		if audience == "" {
			audience = cfg.Upstream.URL
		}
	}
	auditor := routeAuditor{Writer: a.audit, failOpen: cfg.Audit.OnSpoolFull == string(audit.FailOpen)}
	metrics := proxy.NewMetrics(a.metrics)
	progress := proxy.NewProgress(time.Now())
	router := proxy.NewRouter(table, a.creds, a.minter, auditor, fwd, proxy.RouterOptions{
		LoginURL: cfg.LoginURL, AssertionAudience: audience,
		Metrics: metrics, Progress: progress, SessionCookie: cfg.Sessions.CookieName, OwnToken: a.creds.OwnToken,
	}, log)
	if err := a.startToggles(ctx, table, router, log); err != nil {
		return err
	}

	health := proxy.NewHealth(2*time.Second, a.checks(upstream)...)
	upgrades := &proxy.UpgradeTracker{}
	front := proxy.NewFront(proxy.FrontOptions{
		Own:         a.ownHandler(progress, log),
		OwnPrefixes: configs.OwnPaths(cfg.APIPrefix),
		OwnTimeout:  cfg.Server.OwnTimeout.D(),
		Health:      health,
		Forward:     upgrades.Track(router),
		IPs:         proxy.NewIPResolver(cfg.TrustedProxyPrefixes()),
		Log:         log,
		Metrics:     metrics,
	})
	ops := http.NewServeMux()
	ops.Handle("/-/healthz", health)
	ops.Handle("/-/readyz", health)
	ops.Handle("/-/metrics", promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{}))
	if cfg.Debug.Pprof {
		// Registered by hand: the package's init only fills
		// http.DefaultServeMux, which Portero never serves.
		ops.HandleFunc("/debug/pprof/", pprof.Index)
		ops.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		ops.HandleFunc("/debug/pprof/profile", pprof.Profile)
		ops.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		ops.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}

	publicLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.TLS.Enabled() {
		certs, err := newCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, log, nil)
		if err != nil {
			_ = publicLn.Close()
			return fmt.Errorf("tls: %w", err)
		}
		// net/http serves HTTP/2 on a TLS listener that offers "h2".
		publicLn = tls.NewListener(publicLn, &tls.Config{GetCertificate: certs.GetCertificate,
			MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
	}
	opsLn, err := net.Listen("tcp", cfg.OpsListen)
	if err != nil {
		_ = publicLn.Close()
		return fmt.Errorf("ops_listen: %w", err)
	}
	srv := proxy.NewServer(proxy.ServerOptions{
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.D(),
		IdleTimeout:       cfg.Server.IdleTimeout.D(),
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
	}, front, ops, health, upgrades, log)

	log.Info("portero listening", zap.String("version", version),
		zap.String("listen", publicLn.Addr().String()), zap.String("ops_listen", opsLn.Addr().String()), zap.Bool("tls", cfg.TLS.Enabled()),
		zap.String("upstream", upstream.Redacted()), zap.String("default_mode", cfg.DefaultMode),
		zap.Int("routes", len(cfg.Routes)))
	if ready != nil {
		ready(publicLn.Addr(), opsLn.Addr())
	}

	reloadCtx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	if path != "" {
		go watchConfig(reloadCtx, path, getenv, a.toggles, newReloadCounter(a.metrics), log)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(publicLn, opsLn) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", zap.Duration("grace", cfg.Server.ShutdownGrace.D()))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace.D())
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// openStorage opens the relational store and, unless configured off, brings
// its schema up to date; concurrent starts take turns on the migration lock.
func openStorage(ctx context.Context, c configs.Storage, log *zap.Logger) (*storage.DB, error) {
	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	db, err := storage.Open(openCtx, c.URL.Reveal())
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if c.MigrateOnStart {
		if err := db.Migrate(openCtx); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("storage: migrate: %w", err)
		}
	}
	log.Info("storage ready", zap.Stringer("url", c.URL), zap.Bool("migrated", c.MigrateOnStart))
	return db, nil
}

func newLogger(c configs.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = isoTimeEncoder()
	encCfg.EncodeDuration = zapcore.MillisDurationEncoder
	var enc zapcore.Encoder
	if c.Format == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w)))), nil
}
