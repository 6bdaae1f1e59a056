package configs

import (
	"errors"
	"strings"
	"testing"
)

// TestValidationRules runs one case per rule: a small file breaking it, and
// the key, line and message fragment the problem must carry.
func TestValidationRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		yaml string
		key  string
		line int
		msg  string
	}{
		{"listen not host:port", "listen: 8080\n", "listen", 1, "must be host:port"},
		{"listen bad port", "listen: \":http\"\n", "listen", 1, "port must be a number"},
		{"listen port range", "listen: \":70000\"\n", "listen", 1, "port must be a number"},
		{"listen bad host", "listen: \"bad host:80\"\n", "listen", 1, "host must be"},
		{"ops_listen not host:port", "\nops_listen: localhost\n", "ops_listen", 2, "must be host:port"},
		{"ops_listen same port", "listen: \":9000\"\nops_listen: \"127.0.0.1:9000\"\n", "ops_listen", 2, "must not share its port"},
		{"api_prefix slash", "api_prefix: /\n", "api_prefix", 1, "must be empty"},
		{"api_prefix trailing slash", "api_prefix: /portero/\n", "api_prefix", 1, "not end with one"},
		{"api_prefix relative", "api_prefix: portero\n", "api_prefix", 1, `must start with "/"`},
		{"api_prefix reserved", "api_prefix: /-/x\n", "api_prefix", 1, "reserved"},
		{"api_prefix dotdot", "api_prefix: /a/../b\n", "api_prefix", 1, `".."`},
		{"trusted proxy junk", "trusted_proxies:\n  - 10.0.0.0/8\n  - not-an-ip\n", "trusted_proxies[1]", 3, "IP address or a CIDR"},
		{"trusted proxy bad cidr", "trusted_proxies: [10.0.0.0/33]\n", "trusted_proxies[0]", 1, "IP address or a CIDR"},
		{"trusted proxy zone", "trusted_proxies: [\"fe80::1%eth0\"]\n", "trusted_proxies[0]", 1, "IP address or a CIDR"},
		{"read_header_timeout zero", "server:\n  read_header_timeout: 0s\n", "server.read_header_timeout", 2, "positive"},
		{"idle_timeout negative", "server:\n  idle_timeout: -1s\n", "server.idle_timeout", 2, "positive"},
		{"shutdown_grace zero", "server:\n  shutdown_grace: 0s\n", "server.shutdown_grace", 2, "positive"},
		{"own_timeout zero", "server:\n  own_timeout: 0s\n", "server.own_timeout", 2, "positive"},
		{"hashing workers negative", "hashing:\n  workers: -1\n", "hashing.workers", 2, "one per CPU"},
		{"hashing queue negative", "hashing:\n  queue: -1\n", "hashing.queue", 2, "0 or more"},
		{"hashing max_wait zero", "hashing:\n  max_wait: 0s\n", "hashing.max_wait", 2, "positive"},
		{"max_header_bytes small", "server:\n  max_header_bytes: 4095\n", "server.max_header_bytes", 2, "between 4096"},
		{"max_header_bytes big", "server:\n  max_header_bytes: 1048577\n", "server.max_header_bytes", 2, "between 4096"},
		{"upstream.url relative", "upstream:\n  url: /app\n", "upstream.url", 2, "absolute http(s) URL"},
		{"upstream.url scheme", "upstream:\n  url: ftp://x\n", "upstream.url", 2, "absolute http(s) URL"},
		{"upstream.url no host", "upstream:\n  url: \"http://\"\n", "upstream.url", 2, "absolute http(s) URL"},
		{"upstream.url credentials", "upstream:\n  url: http://u:p@app\n", "upstream.url", 2, "credentials"},
		{"upstream.url fragment", "upstream:\n  url: http://app/#x\n", "upstream.url", 2, "fragment"},
		{"upstream.timeout zero", "upstream: {timeout: 0s}\n", "upstream.timeout", 1, "positive"},
		{"upstream.dial_timeout zero", "upstream:\n  dial_timeout: 0s\n", "upstream.dial_timeout", 2, "positive"},
		{"upstream.idle_conn_timeout zero", "upstream:\n  idle_conn_timeout: 0s\n", "upstream.idle_conn_timeout", 2, "positive"},
		{"upstream.max_idle_conns zero", "upstream:\n  max_idle_conns: 0\n", "upstream.max_idle_conns", 2, "positive"},
		{"upstream.host junk", "upstream:\n  host: \"not a host\"\n", "upstream.host", 2, `"preserve", "upstream"`},
		{"upstream.host bad port", "upstream:\n  host: \"app:0\"\n", "upstream.host", 2, `"preserve", "upstream"`},
		{"upstream.host bare v6", "upstream:\n  host: \"::1\"\n", "upstream.host", 2, `"preserve", "upstream"`},
		{"storage.url empty", "storage:\n  url: \"\"\n", "storage.url", 2, "must be set"},
		{"storage.url scheme", "storage:\n  url: mysql://db/x\n", "storage.url", 2, `got "mysql"`},
		{"storage.url unparsable", "storage:\n  url: \"postgres://u:p?x@db/x\"\n", "storage.url", 2, "not a valid URL"},
		{"storage.url a DSN", "storage:\n  url: \"host=db password=p\"\n", "storage.url", 2, "not a valid URL"},
		{"sessions.url unparsable", "sessions:\n  url: \"redis://:p/w@r\"\n", "sessions.url", 2, "not a valid URL"},
		{"storage.url sqlite no path", "storage:\n  url: \"sqlite://\"\n", "storage.url", 2, "file path"},
		{"sessions.url scheme", "sessions:\n  url: memcached://x\n", "sessions.url", 2, `got "memcached"`},
		{"sessions.url redis no host", "sessions:\n  url: \"redis:///0\"\n", "sessions.url", 2, "needs a host"},
		{"sessions.url empty", "sessions:\n  url: \"\"\n", "sessions.url", 2, "must be set"},
		{"sessions.idle_timeout zero", "sessions:\n  idle_timeout: 0s\n", "sessions.idle_timeout", 2, "positive"},
		{"sessions.absolute_timeout zero", "sessions:\n  absolute_timeout: 0s\n", "sessions.absolute_timeout", 2, "positive"},
		{"sessions.key_prefix empty", "sessions:\n  key_prefix: \"\"\n", "sessions.key_prefix", 2, "1 to 64 characters"},
		{"sessions.key_prefix hash tag", "sessions:\n  key_prefix: \"p{x}:\"\n", "sessions.key_prefix", 2, "without braces"},
		{"sessions.cache_ttl long", "sessions:\n  cache_ttl: 5m\n", "sessions.cache_ttl", 2, "between 0 (off) and 1m"},
		{"sessions.cache_ttl negative", "sessions:\n  cache_ttl: -1s\n", "sessions.cache_ttl", 2, "between 0 (off) and 1m"},
		{"sessions.touch_interval over idle", "sessions:\n  touch_interval: 2h\n", "sessions.touch_interval", 2, "below sessions.idle_timeout"},
		{"idle over absolute", "sessions:\n  idle_timeout: 2h\n  absolute_timeout: 1h\n", "sessions.idle_timeout", 2, "must not exceed"},
		{"idle default over absolute", "sessions:\n  absolute_timeout: 30m\n", "sessions.idle_timeout", 1, "must not exceed"},
		{"secret_key short", "secret_key: short\n", "secret_key", 1, "at least 32 bytes"},
		{"lockout.max_attempts zero", "lockout:\n  max_attempts: 0\n", "lockout.max_attempts", 2, "positive"},
		{"lockout.window zero", "lockout:\n  window: 0s\n", "lockout.window", 2, "positive"},
		{"lockout.duration zero", "lockout:\n  duration: 0s\n", "lockout.duration", 2, "positive"},
		{"registration", "registration: maybe\n", "registration", 1, "open, admin, closed"},
		{"jwt_algorithm", "legacy:\n  jwt_algorithm: RS256\n", "legacy.jwt_algorithm", 2, "HS256, HS384, HS512"},
		{"legacy.subject", "legacy:\n  subject: \" \"\n", "legacy.subject", 2, "must name the claim"},
		{"header not a token", "headers:\n  user_id: \"X Auth\"\n", "headers.user_id", 2, "valid HTTP header name"},
		{"header empty", "headers:\n  assertion: \"\"\n", "headers.assertion", 2, "valid HTTP header name"},
		{"header reserved", "headers:\n  user_email: authorization\n", "headers.user_email", 2, "stripped from every request"},
		{"header duplicate", "headers:\n  user_id: X-User\n  user_roles: x_user\n", "headers.user_roles", 3, "same header as headers.user_id"},
		{"log.level", "log:\n  level: trace\n", "log.level", 2, "debug, info, warn, error"},
		{"log.format", "log:\n  format: xml\n", "log.format", 2, "json, console"},
		{"default_mode", "default_mode: open\n", "default_mode", 1, "public, legacy, gateway, dual, shadow"},
		{"route mode", "routes:\n  - path: /a\n    mode: private\n", "routes[0].mode", 3, "public, legacy, gateway, dual, shadow"},
		{"route mode missing", "routes:\n  - path: /a\n", "routes[0].mode", 2, "must be set"},
		{"route path relative", "routes:\n  - path: a\n    mode: public\n", "routes[0].path", 2, `must start with "/"`},
		{"route path missing", "routes:\n  - mode: public\n", "routes[0].path", 2, "must be set"},
		{"route path trailing slash", "routes:\n  - path: /a/\n    mode: public\n", "routes[0].path", 2, "must not end"},
		{"route path double slash", "routes:\n  - path: /a//b\n    mode: public\n", "routes[0].path", 2, `"//"`},
		{"route path dot", "routes:\n  - path: /a/./b\n    mode: public\n", "routes[0].path", 2, `"."`},
		{"route path query", "routes:\n  - path: /a?b\n    mode: public\n", "routes[0].path", 2, "without ?query"},
		{"route path bad escape", "routes:\n  - path: /a%zz\n    mode: public\n", "routes[0].path", 2, "malformed"},
		{"route path space", "routes:\n  - path: \"/a b\"\n    mode: public\n", "routes[0].path", 2, "percent-encoded"},
		{"route path reserved", "routes:\n  - path: /-/metrics\n    mode: public\n", "routes[0].path", 2, "reserved"},
		{"route duplicate", "routes:\n  - path: /a\n    mode: public\n  - path: /a\n    mode: gateway\n", "routes[1]", 4, "same path and methods as routes[0]"},
		{"route duplicate methods", "routes:\n  - {path: /a, mode: public, methods: [GET, POST]}\n  - {path: /a, mode: gateway, methods: [POST, GET]}\n", "routes[1]", 3, "same path and methods"},
		{"route overlapping methods", "routes:\n  - {path: /a, mode: public, methods: [GET, POST]}\n  - {path: /a, mode: gateway, methods: [POST, PUT]}\n", "routes[1].methods", 3, "POST on /a are also in routes[0]"},
		{"method lower case", "routes:\n  - path: /a\n    mode: public\n    methods:\n      - GET\n      - post\n", "routes[0].methods[1]", 6, "upper-case"},
		{"method not a token", "routes:\n  - path: /a\n    mode: public\n    methods: [\"GE T\"]\n", "routes[0].methods[0]", 4, "upper-case"},
		{"method TRACE", "routes:\n  - path: /a\n    mode: public\n    methods: [TRACE]\n", "routes[0].methods[0]", 4, "never forwarded"},
		{"method CONNECT", "routes:\n  - path: /a\n    mode: public\n    methods: [GET, CONNECT]\n", "routes[0].methods[1]", 4, "never forwarded"},
		{"method twice", "routes:\n  - path: /a\n    mode: public\n    methods: [GET, GET]\n", "routes[0].methods[1]", 4, "listed twice"},
		{"roles on public", "routes:\n  - path: /a\n    mode: public\n    roles: [admin]\n", "routes[0].roles", 4, "apply only to gateway and dual"},
		{"role with comma", "routes:\n  - path: /a\n    mode: gateway\n    roles: [\"a,b\"]\n", "routes[0].roles[0]", 4, "without spaces or commas"},
		{"legacy_token on legacy", "routes:\n  - path: /a\n    mode: legacy\n    legacy_token: true\n", "routes[0].legacy_token", 4, "gateway and dual"},
		{"dual without legacy secret", "legacy:\n  subject: sub\nroutes:\n  - path: /a\n    mode: dual\n", "legacy.jwt_secret", 1, "routes[0] verifies or mints"},
		{"default dual without legacy secret", "default_mode: dual\n", "legacy.jwt_secret", 0, "default_mode (dual)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yaml), nil)
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.yaml)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false for %v", err)
			}
			requireProblem(t, err, tc.key, tc.line, tc.msg)
		})
	}
}

// requireProblem fails unless err holds a *Problem with exactly key and line
// whose message contains msg.
func requireProblem(t testing.TB, err error, key string, line int, msg string) {
	t.Helper()
	for _, p := range Problems(err) {
		if p.Key == key && p.Line == line && strings.Contains(p.Msg, msg) {
			return
		}
	}
	t.Fatalf("want a problem %q at line %d containing %q; got:\n%v", key, line, msg, err)
}

func TestValidAlternatives(t *testing.T) {
	t.Parallel()
	okFiles := map[string]string{
		"defaults":               "",
		"only comments":          "# nothing here\n",
		"null document":          "~\n",
		"upstream host literal":  "upstream: {host: \"app.internal:8443\"}\n",
		"upstream host v6":       "upstream: {host: \"[::1]:8000\"}\n",
		"upstream host upstream": "upstream: {host: upstream}\n",
		"upstream underscore":    "upstream: {url: \"http://legacy_app:8000/base\"}\n",
		"v6 listen":              "listen: \"[::]:8080\"\n",
		"listen port 0":          "listen: \"127.0.0.1:0\"\nops_listen: \"127.0.0.1:0\"\n",
		"api prefix":             "api_prefix: /portero\n",
		"proxies":                "trusted_proxies: [10.0.0.1, \"10.1.2.3/8\", \"::1\", \"fd00::/8\"]\n",
		"postgres":               "storage: {url: \"postgres://u:p@db:5432/portero?sslmode=disable\"}\n",
		"postgres socket":        "storage: {url: \"postgres:///portero?host=/var/run/postgresql\"}\n",
		"sqlite absolute":        "storage: {url: \"sqlite:///var/lib/portero/portero.db\"}\n",
		"rediss":                 "sessions: {url: \"rediss://:pw@redis:6380/1\"}\n",
		"root route":             "routes: [{path: /, mode: public}]\n",
		"escaped route":          "routes: [{path: /a%20b, mode: public}]\n",
		"fallback plus methods":  "routes:\n  - {path: /a, mode: legacy}\n  - {path: /a, mode: gateway, methods: [POST]}\n  - {path: /a, mode: public, methods: [GET, HEAD]}\n",
		"secret key":             "secret_key: 0123456789abcdef0123456789abcdef\n",
		"day duration":           "lockout: {window: 1d, duration: 2d}\n",
		"idle equals absolute":   "sessions: {idle_timeout: 1h, absolute_timeout: 1h}\n",
	}
	for name, y := range okFiles {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := Parse([]byte(y), nil); err != nil {
				t.Fatalf("Parse(%q): %v", y, err)
			}
		})
	}
}

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8080" || c.OpsListen != "127.0.0.1:9090" || c.Upstream.Timeout.D().String() != "30s" {
		t.Errorf("empty file did not give the defaults: %+v", c)
	}
}

func TestValidateCollectsEveryProblem(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Listen = "nope"
	c.Registration = "x"
	c.Log.Level = "loud"
	c.Routes = []Route{{Path: "x", Mode: "y"}}
	ps := Problems(c.Validate())
	keys := map[string]bool{}
	for _, p := range ps {
		keys[p.Key] = true
		if p.Line != 0 {
			t.Errorf("Validate gave a line for %s", p.Key)
		}
	}
	for _, k := range []string{"listen", "registration", "log.level", "routes[0].path", "routes[0].mode"} {
		if !keys[k] {
			t.Errorf("no problem for %s in %v", k, ps)
		}
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	c := Default()
	c.TrustedProxies = []string{"0.0.0.0/0"}
	c.Routes = []Route{{Path: "/auth/login", Mode: "public"}}
	c.Lockout.Reveal = true
	got := map[string]bool{}
	for _, w := range c.Warnings() {
		got[w.Key] = true
	}
	for _, k := range []string{"secret_key", "trusted_proxies[0]", "sessions.url", "routes[0].path", "lockout.reveal"} {
		if !got[k] {
			t.Errorf("no warning for %s: %v", k, c.Warnings())
		}
	}
	c.APIPrefix = "/portero"
	c.SecretKey = "0123456789abcdef0123456789abcdef"
	for _, w := range c.Warnings() {
		if w.Key == "routes[0].path" || w.Key == "secret_key" {
			t.Errorf("unexpected warning %v", w)
		}
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	t.Parallel()
	c := Default()
	c.TrustedProxies = []string{"10.0.0.1", "10.1.2.3/8", "::1", "fd00::1/8", "::ffff:192.168.0.1", "::ffff:192.168.0.0/112", "junk"}
	var got []string
	for _, p := range c.TrustedProxyPrefixes() {
		got = append(got, p.String())
	}
	want := []string{"10.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8", "192.168.0.1/32", "192.168.0.0/16"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestStoreHelpers(t *testing.T) {
	t.Parallel()
	for url, want := range map[string]string{
		"sqlite://./data/portero.db": "sqlite", "sqlite3:///p.db": "sqlite", "sqlite://:memory:": "sqlite",
		"postgres://db/x": "postgres", "postgresql+asyncpg://db/x": "postgres", "mysql://db/x": "", "x": "",
	} {
		if got := (Storage{URL: SecretURL(url)}).Driver(); got != want {
			t.Errorf("Storage.Driver(%s) = %q, want %q", url, got, want)
		}
	}
	for url, want := range map[string]string{"redis://r:6379": "redis", "REDISS://r": "redis", "memory://": "memory", "x://": ""} {
		if got := (Sessions{URL: SecretURL(url)}).Driver(); got != want {
			t.Errorf("Sessions.Driver(%s) = %q, want %q", url, got, want)
		}
	}
	if got := (Log{Level: "warn"}).ZapLevel().String(); got != "warn" {
		t.Errorf("ZapLevel = %s", got)
	}
}

func TestDurationString(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"1h": "1h", "90m": "1h30m", "2m": "2m", "30s": "30s", "0s": "0s", "100ms": "100ms", "1m30s": "1m30s", "365d": "8760h", "-60m": "-1h"} {
		d, err := ParseDuration(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.String(); got != want {
			t.Errorf("%s prints %s, want %s", in, got, want)
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Errorf("%s does not round-trip: %v %v", in, back, err)
		}
	}
}
