package configs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env returns a getenv over a fixed map, so tests never read or change the
// process environment.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

const testKey = "0123456789abcdef0123456789abcdef-test"

func TestExampleFilesLoad(t *testing.T) {
	t.Parallel()
	t.Run("portero.example.yaml", func(t *testing.T) {
		t.Parallel()
		c, err := Load("portero.example.yaml", env(
			"SECRET_KEY", testKey,
			"POSTGRES_PASSWORD", "pg-pass",
			"REDIS_PASSWORD", "redis-pass",
			"LEGACY_SECRET_KEY", "legacy-secret",
			"SMTP_PASSWORD", "smtp-pass",
		))
		if err != nil {
			t.Fatal(err)
		}
		if c.Storage.Driver() != "postgres" || c.Sessions.Driver() != "redis" {
			t.Errorf("stores: %s %s", c.Storage.URL, c.Sessions.URL)
		}
		if c.Legacy.JWTSecret.Reveal() != "legacy-secret" || c.SecretKey.Reveal() != testKey {
			t.Error("secrets not expanded")
		}
		if got := c.Storage.URL.Reveal(); got != "postgres://portero:pg-pass@postgres:5432/portero?sslmode=require" {
			t.Errorf("storage.url = %s", got)
		}
		if len(c.Routes) != 3 || c.Registration != "admin" {
			t.Errorf("routes/registration: %+v %s", c.Routes, c.Registration)
		}
	})
	t.Run("portero.example.yaml without its variables", func(t *testing.T) {
		t.Parallel()
		_, err := Load("portero.example.yaml", env())
		requireProblem(t, err, "legacy.jwt_secret", lineOf(t, "portero.example.yaml", "  jwt_secret:"), "must be set: routes[0]")
	})
	t.Run("dev.yaml", func(t *testing.T) {
		t.Parallel()
		c, err := Load("dev.yaml", env())
		if err != nil {
			t.Fatal(err)
		}
		if c.Storage.URL.Reveal() != "sqlite://./data/portero.db" || c.Sessions.URL.Reveal() != "memory://" ||
			c.Listen != ":8080" || c.OpsListen != "127.0.0.1:9090" || c.Upstream.URL != "http://127.0.0.1:8000" ||
			c.DefaultMode != ModeLegacy || len(c.SecretKey) < MinSecretKeyBytes {
			t.Errorf("dev.yaml: %+v", c)
		}
		modes := map[string]string{}
		for _, r := range c.Routes {
			modes[r.Path] = r.Mode
		}
		want := map[string]string{"/anything/public": "public", "/anything/legacy": "legacy", "/anything/gateway": "gateway", "/anything/admin": "gateway", "/anything/dual": "dual"}
		for p, m := range want {
			if modes[p] != m {
				t.Errorf("route %s mode %q, want %q", p, modes[p], m)
			}
		}
		embedded, err := Dev(env())
		if err != nil {
			t.Fatal(err)
		}
		if string(DevYAML()) == "" || embedded.Routes[3].Roles[0] != "admin" {
			t.Errorf("embedded dev.yaml differs: %+v", embedded.Routes)
		}
	})
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil)
	if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
		t.Errorf("missing file: %v", err)
	}

	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, []byte(strings.Repeat("#", maxFileSize+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(big, nil)
	requireProblem(t, err, "", 0, "larger than")
}

func TestExpansion(t *testing.T) {
	t.Parallel()
	getenv := env("HOST", "db.internal", "N", "7", "YES", "true", "DUR", "90s",
		"TRICK", "${HOST}", "DOLLAR", "$$", "EMPTY", "", "YAML", "a: b")
	cases := []struct {
		name, yaml string
		check      func(Config) bool
	}{
		{"plain", "upstream: {url: \"http://${HOST}:8000\"}", func(c Config) bool { return c.Upstream.URL == "http://db.internal:8000" }},
		{"unquoted int", "lockout:\n  max_attempts: ${N}\n", func(c Config) bool { return c.Lockout.MaxAttempts == 7 }},
		{"bool", "lockout:\n  reveal: ${YES}\n", func(c Config) bool { return c.Lockout.Reveal }},
		{"duration", "upstream:\n  timeout: ${DUR}\n", func(c Config) bool { return c.Upstream.Timeout.D() == 90*time.Second }},
		{"fallback used", "upstream: {url: \"${NOPE:-http://fallback:1}\"}", func(c Config) bool { return c.Upstream.URL == "http://fallback:1" }},
		{"fallback on empty", "registration: ${EMPTY:-closed}", func(c Config) bool { return c.Registration == "closed" }},
		{"fallback unused", "upstream: {url: \"http://${HOST:-x}\"}", func(c Config) bool { return c.Upstream.URL == "http://db.internal" }},
		{"escape", "secret_key: \"$$${N}$$-0123456789abcdef0123456789abcdef\"", func(c Config) bool {
			return c.SecretKey.Reveal() == "$7$-0123456789abcdef0123456789abcdef"
		}},
		{"not re-expanded", "legacy: {jwt_secret: \"${TRICK}\"}", func(c Config) bool { return c.Legacy.JWTSecret.Reveal() == "${HOST}" }},
		{"value with $$ not unescaped", "legacy: {jwt_secret: \"${DOLLAR}\"}", func(c Config) bool { return c.Legacy.JWTSecret.Reveal() == "$$" }},
		{"value not parsed as YAML", "legacy:\n  jwt_secret: ${YAML}\n", func(c Config) bool { return c.Legacy.JWTSecret.Reveal() == "a: b" }},
		{"quoted int", "lockout: {max_attempts: \"${N}\"}", func(c Config) bool { return c.Lockout.MaxAttempts == 7 }},
		{"quoted bool", "lockout: {reveal: '${YES}'}", func(c Config) bool { return c.Lockout.Reveal }},
		{"quoted stays string", "legacy: {subject: \"${N}\"}", func(c Config) bool { return c.Legacy.Subject == "7" }},
		{"unknown is empty", "api_prefix: \"${NOPE}\"", func(c Config) bool { return c.APIPrefix == "" }},
		{"literal dollar", "legacy: {jwt_secret: \"$2b$10$.x $ $\"}", func(c Config) bool { return c.Legacy.JWTSecret.Reveal() == "$2b$10$.x $ $" }},
		{"escaped dollars", "legacy: {jwt_secret: \"$$2b$$10$$abc\"}", func(c Config) bool { return c.Legacy.JWTSecret.Reveal() == "$2b$10$abc" }},
		{"in a list", "trusted_proxies: [\"${NOPE:-10.0.0.0/8}\"]", func(c Config) bool { return c.TrustedProxies[0] == "10.0.0.0/8" }},
		{"through an alias", "legacy: {jwt_secret: &s \"${HOST}\", subject: *s}", func(c Config) bool { return c.Legacy.Subject == "db.internal" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tc.yaml), getenv)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("unexpected result for %s: %#v", tc.yaml, c)
			}
		})
	}
}

func TestExpansionNotOnKeys(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("${KEY}: x\n"), env("KEY", "listen"))
	requireProblem(t, err, "${KEY}", 1, "unknown key")
}

func TestExpansionErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ yaml, key, msg string }{
		{"upstream:\n  url: \"http://${HOST\"\n", "upstream.url", "unterminated"},
		{"upstream:\n  url: \"${1X}\"\n", "upstream.url", "invalid variable name"},
		{"upstream:\n  url: \"${}\"\n", "upstream.url", "invalid variable name"},
		{"upstream:\n  url: \"$HOST\"\n", "upstream.url", "bare $NAME"},
		// An unset variable is "", not null: it must not bring the default back.
		{"upstream:\n  timeout: ${UNSET}\n", "upstream.timeout", "invalid duration"},
		{"upstream:\n  max_idle_conns: ${UNSET}\n", "upstream.max_idle_conns", "must be a whole number"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml), env("HOST", "h"))
		requireProblem(t, err, tc.key, 2, tc.msg)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Parallel()
	file := []byte("secret_key: file-secret-file-secret-file-secret-xx\nstorage: {url: \"sqlite://./f.db\"}\nsessions: {url: \"memory://\"}\n")

	c, err := Parse(file, env())
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretKey.Reveal() != "file-secret-file-secret-file-secret-xx" || c.Storage.URL.Reveal() != "sqlite://./f.db" {
		t.Errorf("file values lost without environment: %+v", c)
	}

	c, err = Parse(file, env(
		"SECRET_KEY", testKey,
		"DATABASE_URL", "postgresql+asyncpg://user:pass@db/app",
		"REDIS_URL", "redis://:pw@redis:6379/2",
		"PORTERO_LEGACY_SECRET", "ignored",
		"LISTEN", ":1",
	))
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretKey.Reveal() != testKey {
		t.Error("SECRET_KEY not applied")
	}
	if got := c.Storage.URL.Reveal(); got != "postgres://user:pass@db/app" {
		t.Errorf("DATABASE_URL gave %s", got)
	}
	if got := c.Sessions.URL.Reveal(); got != "redis://:pw@redis:6379/2" {
		t.Errorf("REDIS_URL gave %s", got)
	}
	if c.Listen != ":8080" {
		t.Error("an environment variable outside the guide's three changed the config")
	}

	// A bad override is named by key and by variable, with no file line.
	_, err = Parse(file, env("DATABASE_URL", "mysql://db/x", "SECRET_KEY", "short"))
	requireProblem(t, err, "storage.url", 0, "(set by DATABASE_URL)")
	requireProblem(t, err, "secret_key", 0, "(set by SECRET_KEY)")
}

func TestNormalizeStorageURL(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"postgresql+asyncpg://u:p@db:5432/app":           "postgres://u:p@db:5432/app",
		"postgresql+psycopg://u:p@db/app":                "postgres://u:p@db/app",
		"postgresql+psycopg2://u@db/app":                 "postgres://u@db/app",
		"postgresql://u:p@db/app?sslmode=require":        "postgres://u:p@db/app?sslmode=require",
		"postgres://u:p@db/app":                          "postgres://u:p@db/app",
		"PostgreSQL+AsyncPG://u@db/app":                  "postgres://u@db/app",
		"postgresql+asyncpg://u@db/app?ssl=true":         "postgres://u@db/app?sslmode=require",
		"postgresql+asyncpg://u@db/app?ssl=verify-full":  "postgres://u@db/app?sslmode=verify-full",
		"postgresql+asyncpg://u@db/app?ssl=false&x=1":    "postgres://u@db/app?sslmode=disable&x=1",
		"postgresql+asyncpg://u@db/app?ssl=1&sslmode=on": "postgres://u@db/app?ssl=1&sslmode=on",
		"sqlite://./data/portero.db":                     "sqlite://./data/portero.db",
		"mysql+pymysql://u@db/app":                       "mysql+pymysql://u@db/app",
		"no scheme":                                      "no scheme",
	}
	for in, want := range cases {
		if got := NormalizeStorageURL(in); got != want {
			t.Errorf("NormalizeStorageURL(%q) = %q, want %q", in, got, want)
		}
	}
	// In the file too, not only from DATABASE_URL.
	c, err := Parse([]byte("storage: {url: \"postgresql+asyncpg://u:p@db/app\"}"), nil)
	if err != nil || c.Storage.URL.Reveal() != "postgres://u:p@db/app" || c.Storage.Driver() != "postgres" {
		t.Errorf("file storage.url: %v %s", err, c.Storage.URL.Reveal())
	}
}

func TestDecodeProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, yaml, key string
		line            int
		msg             string
	}{
		{"unknown top-level key", "listen: \":8080\"\nlissten: \":1\"\n", "lissten", 2, "unknown key (did you mean listen?)"},
		{"unknown nested key", "upstream:\n  url: http://a\n  timeoutt: 5s\n", "upstream.timeoutt", 3, "did you mean timeout?"},
		{"unknown key camel case", "server:\n  readHeaderTimeout: 5s\n", "server.readHeaderTimeout", 2, "did you mean read_header_timeout?"},
		{"unknown key no suggestion", "zzzzzzzz: 1\n", "zzzzzzzz", 1, "unknown key"},
		{"unknown key in route", "routes:\n  - path: /a\n    mode: public\n    role: [x]\n", "routes[0].role", 4, "did you mean roles?"},
		{"bad duration", "sessions:\n  idle_timeout: 60\n", "sessions.idle_timeout", 2, "invalid duration"},
		{"duration as list", "sessions:\n  idle_timeout: [1]\n", "sessions.idle_timeout", 2, "must be a duration"},
		{"int type mismatch", "lockout:\n  max_attempts: many\n", "lockout.max_attempts", 2, "must be a whole number, got \"many\""},
		{"int overflow", "lockout:\n  max_attempts: 99999999999999999999999\n", "lockout.max_attempts", 2, "whole number"},
		{"bool mismatch", "lockout:\n  reveal: sometimes\n", "lockout.reveal", 2, "true or false"},
		{"string given a map", "listen:\n  port: 1\n", "listen", 2, "must be a single value, not a mapping"},
		{"struct given a string", "upstream: http://x\n", "upstream", 1, "must be a mapping"},
		{"list given a string", "trusted_proxies: 10.0.0.0/8\n", "trusted_proxies", 1, "must be a list"},
		{"route given a string", "routes:\n  - /a\n", "routes[0]", 2, "must be a mapping"},
		{"duplicate key", "listen: \":1\"\nops_listen: \":2\"\nlisten: \":3\"\n", "listen", 3, "duplicate key (first set on line 1)"},
		{"merge key", "base: &b {url: http://a}\n", "base", 1, "unknown key"},
		{"merge key in mapping", "upstream:\n  <<: {url: http://a}\n", "upstream.<<", 2, "merge keys"},
		{"binary", "secret_key: !!binary aGVsbG8=\n", "secret_key", 1, "binary"},
		{"complex key", "? [a]\n: b\n", "", 1, "keys must be plain names"},
		{"syntax", "listen: \":8080\"\n  bad: indent\n", "", 1, "invalid YAML"},
		{"syntax later", "listen: \":8080\"\nroutes:\n  - path: \"/a\n", "", 3, "invalid YAML"},
		{"top-level list", "- a\n- b\n", "", 1, "must be a mapping"},
		{"two documents", "listen: \":8080\"\n---\nlisten: \":9\"\n", "", 2, "only one YAML document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yaml), nil)
			requireProblem(t, err, tc.key, tc.line, tc.msg)
		})
	}
}

func TestEveryProblemReportedInFileOrder(t *testing.T) {
	t.Parallel()
	y := `listen: nope
upstream:
  url: ftp://x
  timeout: soon
routes:
  - path: /a
    mode: public
    methods: [TRACE]
  - path: /b
    mode: bogus
registration: sometimes
`
	_, err := Parse([]byte(y), nil)
	ps := Problems(err)
	var got []string
	for _, p := range ps {
		got = append(got, p.InFile("portero.yaml"))
	}
	want := []string{
		"portero.yaml:1: listen: must be host:port such as :8080 or 127.0.0.1:9090 (got \"nope\")",
		"portero.yaml:3: upstream.url: must be an absolute http(s) URL such as http://127.0.0.1:8000",
		"portero.yaml:4: upstream.timeout: invalid duration \"soon\": want e.g. 30s, 60m, 12h or 365d",
		"portero.yaml:8: routes[0].methods[0]: TRACE is never forwarded",
		"portero.yaml:10: routes[1].mode: must be one of public, legacy, gateway, dual, shadow (got \"bogus\")",
		"portero.yaml:11: registration: must be one of open, admin, closed (got \"sometimes\")",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A decode problem is not repeated by validation of the default left in its place.
	for _, p := range ps {
		if p.Key == "upstream.timeout" && !strings.Contains(p.Msg, "invalid duration") {
			t.Errorf("extra problem %v", p)
		}
	}
	if p := (Problem{Key: "a.b", Line: 3, Msg: "m"}); p.Error() != "line 3: a.b: m" || p.InFile("f") != "f:3: a.b: m" {
		t.Errorf("formatting: %q %q", p.Error(), p.InFile("f"))
	}
	if p := (Problem{Msg: "m"}); p.Error() != "m" || p.InFile("f") != "f: m" {
		t.Errorf("formatting: %q %q", p.Error(), p.InFile("f"))
	}
	var one *Problem
	if !errors.As(err, &one) || one.Key != "listen" {
		t.Errorf("errors.As: %v", one)
	}
}

func TestAliases(t *testing.T) {
	t.Parallel()
	y := `
x-anchors: &roles [admin, analyst]
`
	if _, err := Parse([]byte(y), nil); err == nil {
		t.Error("unknown top-level key used only for anchors was accepted")
	}
	y = `
routes:
  - path: /a
    mode: gateway
    roles: &r [admin, analyst]
  - path: /b
    mode: dual
    roles: *r
legacy: {jwt_secret: s}
`
	c, err := Parse([]byte(y), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Routes[1].Roles, ",") != "admin,analyst" {
		t.Errorf("alias: %v", c.Routes[1].Roles)
	}
}

func TestAliasBomb(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("routes:\n  - &r {path: /a, mode: public, methods: &m [")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("GET")
	}
	b.WriteString("]}\n")
	for range 2000 {
		b.WriteString("  - {path: /a, mode: public, methods: *m}\n")
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()), nil)
	if err == nil {
		t.Fatal("accepted")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	ps := Problems(err)
	if len(ps) != 1 || !strings.Contains(ps[0].Msg, "too many aliases") {
		t.Errorf("want only the budget problem, got %d: %v", len(ps), ps[:min(len(ps), 3)])
	}
}

// lineOf finds the 1-based line of the first line starting with prefix, so
// tests keep pointing at the right key when the example file grows.
func lineOf(t *testing.T, path, prefix string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line starting with %q", path, prefix)
	return 0
}
