// Package configs loads, validates and prints Portero's configuration: one YAML
// file with ${VAR} expansion and the migration guide's environment overrides.
// It holds plain structs only; the packages that act on a setting read it from here.
package configs

import (
	"slices"
	"time"
)

// Config is the whole configuration file.
type Config struct {
	Listen         string   `yaml:"listen"`
	OpsListen      string   `yaml:"ops_listen"`
	APIPrefix      string   `yaml:"api_prefix"`
	TrustedProxies []string `yaml:"trusted_proxies"`

	Server       Server   `yaml:"server"`
	Upstream     Upstream `yaml:"upstream"`
	Storage      Storage  `yaml:"storage"`
	Sessions     Sessions `yaml:"sessions"`
	SecretKey    Secret   `yaml:"secret_key"`
	Lockout      Lockout  `yaml:"lockout"`
	Hashing      Hashing  `yaml:"hashing"`
	Registration string   `yaml:"registration"`
	Legacy       Legacy   `yaml:"legacy"`
	Headers      Headers  `yaml:"headers"`
	Audit        Audit    `yaml:"audit"`
	Log          Log      `yaml:"log"`
	// LoginURL is where gateway routes send a browser without a session
	// (with a same-origin return path); empty answers 401 JSON to everyone.
	LoginURL    string  `yaml:"login_url"`
	DefaultMode string  `yaml:"default_mode"`
	Routes      []Route `yaml:"routes"`
	// TLS terminates HTTPS (with HTTP/2) on the public listener, for
	// deployments without a load balancer in front; unset serves plain HTTP.
	TLS TLS `yaml:"tls"`
	// UI brands Portero's own sign-in, sign-out and password pages.
	UI UI `yaml:"ui"`
	// Debug turns on diagnostics for operators, on the ops listener only.
	Debug Debug `yaml:"debug"`
	// Notify, PasswordReset and Verification configure the account
	// recovery flows (notify.go).
	Notify        Notify        `yaml:"notify"`
	PasswordReset PasswordReset `yaml:"password_reset"`
	Verification  Verification  `yaml:"verification"`
}

// Debug holds diagnostics that are off by default.
type Debug struct {
	// Pprof serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ on the ops listener, for `go tool pprof` and the load
	// harness. Off by default: a CPU profile costs a few percent while it
	// runs, and the heap profile names internal functions.
	Pprof bool `yaml:"pprof"`
}

// TLS names the public listener's certificate and key (PEM files; the
// certificate file holds the chain, leaf first). Both or neither.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether the public listener serves HTTPS.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// UI brands the browser pages.
type UI struct {
	// Title names the site in page titles and the header.
	Title string `yaml:"title"`
	// LogoURL is the header image: a same-origin path or an https:// URL;
	// empty shows Portero's embedded logo.
	LogoURL string `yaml:"logo_url"`
}

// Server holds the public listener's hardening settings.
type Server struct {
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int      `yaml:"max_header_bytes"`
	// ShutdownGrace bounds how long in-flight requests (streams included) may run after SIGTERM.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// OwnTimeout bounds each request to Portero's own endpoints (/auth,
	// /users): a database that stops answering turns into 503, not a hang.
	OwnTimeout Duration `yaml:"own_timeout"`
}

// Upstream is the legacy app Portero stands in front of.
type Upstream struct {
	URL string `yaml:"url"`
	// Timeout is how long Portero waits for the upstream's response headers (then 504).
	Timeout         Duration `yaml:"timeout"`
	DialTimeout     Duration `yaml:"dial_timeout"`
	IdleConnTimeout Duration `yaml:"idle_conn_timeout"`
	MaxIdleConns    int      `yaml:"max_idle_conns"`
	// Host is "preserve" (the client's Host), "upstream" (the upstream URL's host) or a literal host.
	Host string `yaml:"host"`
}

// Storage is the relational store: postgres://… or sqlite://PATH.
// A SQLAlchemy-style URL (postgresql+asyncpg://…) is normalised to postgres:// on load.
type Storage struct {
	URL SecretURL `yaml:"url"`
	// MigrateOnStart applies pending schema migrations when serve starts;
	// concurrent starts are safe (the migration runner takes a lock).
	MigrateOnStart bool `yaml:"migrate_on_start"`
}

// Sessions is the live-session store: redis://… or memory://.
type Sessions struct {
	URL             SecretURL `yaml:"url"`
	IdleTimeout     Duration  `yaml:"idle_timeout"`
	AbsoluteTimeout Duration  `yaml:"absolute_timeout"`
	// CookieName is the browser session cookie; "__Host-" names require
	// CookieSecure (the browser refuses them otherwise).
	CookieName string `yaml:"cookie_name"`
	// CookieSecure marks the cookie Secure; turn off only for plain-HTTP local development.
	CookieSecure bool `yaml:"cookie_secure"`
	// TouchInterval throttles idle-timeout slides to one store write per
	// interval per session (0 writes on every request).
	TouchInterval Duration `yaml:"touch_interval"`
	// KeyPrefix starts every Redis key Portero writes (sessions "sess:",
	// lockout counters "cnt:"), so deployments can share one Redis.
	KeyPrefix string `yaml:"key_prefix"`
	// CacheTTL keeps a validated Redis session in memory this long, so most
	// requests cost no Redis round trip; revocations reach every instance's
	// cache at once over pub/sub (0 turns the cache off).
	CacheTTL Duration `yaml:"cache_ttl"`
}

// Lockout is the failed-login policy.
type Lockout struct {
	MaxAttempts int      `yaml:"max_attempts"`
	Window      Duration `yaml:"window"`
	Duration    Duration `yaml:"duration"`
	Reveal      bool     `yaml:"reveal"`
	// IPMaxAttempts failed logins from one client address (any accounts,
	// unknown e-mails too) within IPWindow throttle that address.
	IPMaxAttempts int      `yaml:"ip_max_attempts"`
	IPWindow      Duration `yaml:"ip_window"`
}

// Hashing bounds the password-hashing pool. Each worker holds argon2id's
// memory (19 MiB) while it hashes and keeps it for the next login until
// 30 s after the last, so Workers × 19 MiB bounds what a flood of logins
// can take; requests beyond Workers wait (at most Queue of them, for
// at most MaxWait), the rest are answered 503 at once.
type Hashing struct {
	Workers int      `yaml:"workers"` // 0: one per CPU (GOMAXPROCS)
	Queue   int      `yaml:"queue"`
	MaxWait Duration `yaml:"max_wait"`
}

// Audit configures the audit trail's writer.
type Audit struct {
	// SpoolDir holds events while the database cannot take them.
	SpoolDir      string `yaml:"spool_dir"`
	SpoolMaxBytes int    `yaml:"spool_max_bytes"`
	// OnSpoolFull is fail_closed (refuse what cannot be audited) or fail_open.
	OnSpoolFull string `yaml:"on_spool_full"`
	// Retention is how long audit rows are kept (e.g. 365d); 0 keeps them forever.
	Retention Duration `yaml:"retention"`
}

// Legacy describes the legacy app's own JWTs.
type Legacy struct {
	JWTSecret    Secret `yaml:"jwt_secret"`
	JWTAlgorithm string `yaml:"jwt_algorithm"`
	Subject      string `yaml:"subject"`
}

// Headers names the identity headers forwarded upstream.
type Headers struct {
	UserID       string `yaml:"user_id"`
	UserEmail    string `yaml:"user_email"`
	UserRoles    string `yaml:"user_roles"`
	LegacyUserID string `yaml:"legacy_user_id"`
	Assertion    string `yaml:"assertion"`
	// Disable lists headers not to send: user_id, user_email, user_roles,
	// legacy_user_id, assertion. They are still stripped from clients.
	Disable []string `yaml:"disable"`
	// AssertionAudience is the aud claim of X-Auth-Assertion; default upstream.url.
	AssertionAudience string `yaml:"assertion_audience"`
}

// Enabled reports whether the identity header with the given key is sent.
func (h Headers) Enabled(key string) bool { return !slices.Contains(h.Disable, key) }

// Log configures zap.
type Log struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // json | console
}

// Route is one entry of the route table.
type Route struct {
	Path    string   `yaml:"path"`
	Methods []string `yaml:"methods"`
	Mode    string   `yaml:"mode"`
	// Roles and Permissions: the user needs any one of the roles and every
	// one of the permissions (gateway and dual routes; shadow routes
	// rehearse them without enforcing).
	Roles       []string `yaml:"roles"`
	Permissions []string `yaml:"permissions"`
	LegacyToken bool     `yaml:"legacy_token"`
	// Unauthenticated overrides how a request without a session is answered:
	// "json" (401) or "redirect" (302 to login_url); empty decides by Accept.
	Unauthenticated string `yaml:"unauthenticated"`
	// Slide: false keeps requests on this route from extending the session's
	// idle timeout (background polling must not keep a session alive).
	Slide *bool `yaml:"slide"`
	// Audit writes an access row for every request the route decides.
	Audit bool `yaml:"audit"`
}

// Slides reports whether requests on the route extend the idle timeout.
func (r Route) Slides() bool { return r.Slide == nil || *r.Slide }

// Default returns the configuration every file is laid over.
func Default() Config {
	return Config{
		Listen:    ":8080",
		OpsListen: "127.0.0.1:9090",
		Server: Server{
			ReadHeaderTimeout: Duration(10 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			MaxHeaderBytes:    64 << 10,
			ShutdownGrace:     Duration(30 * time.Second),
			OwnTimeout:        Duration(10 * time.Second),
		},
		Upstream: Upstream{
			URL:             "http://127.0.0.1:8000",
			Timeout:         Duration(30 * time.Second),
			DialTimeout:     Duration(5 * time.Second),
			IdleConnTimeout: Duration(90 * time.Second),
			MaxIdleConns:    512,
			Host:            "preserve",
		},
		Storage: Storage{URL: "sqlite://./data/portero.db", MigrateOnStart: true},
		Sessions: Sessions{
			URL:             "memory://",
			IdleTimeout:     Duration(60 * time.Minute),
			AbsoluteTimeout: Duration(12 * time.Hour),
			CookieName:      "__Host-portero_session",
			CookieSecure:    true,
			TouchInterval:   Duration(15 * time.Second),
			KeyPrefix:       "portero:",
			CacheTTL:        Duration(2 * time.Second),
		},
		Lockout: Lockout{
			MaxAttempts: 5,
			Window:      Duration(15 * time.Minute),
			Duration:    Duration(30 * time.Minute),

			IPMaxAttempts: 20,
			IPWindow:      Duration(15 * time.Minute),
		},
		Hashing:      Hashing{Queue: 64, MaxWait: Duration(2 * time.Second)},
		Audit:        Audit{SpoolDir: "./data/audit-spool", SpoolMaxBytes: 256 << 20, OnSpoolFull: "fail_closed", Retention: Duration(365 * 24 * time.Hour)},
		Registration: "open",
		Legacy:       Legacy{JWTAlgorithm: "HS256", Subject: "legacy_id"},
		Headers: Headers{
			UserID:       "X-Auth-User-Id",
			UserEmail:    "X-Auth-User-Email",
			UserRoles:    "X-Auth-User-Roles",
			LegacyUserID: "X-Auth-Legacy-User-Id",
			Assertion:    "X-Auth-Assertion",
		},
		Log:         Log{Level: "info", Format: "json"},
		DefaultMode: "legacy",
		UI:          UI{Title: "Portero"},

		Notify:        defaultNotify(),
		PasswordReset: PasswordReset{TokenLifetime: Duration(15 * time.Minute)},
		Verification:  Verification{TokenLifetime: Duration(24 * time.Hour)},
	}
}
