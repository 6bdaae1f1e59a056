package configs

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(devYAML))
	f.Add([]byte(""))
	f.Add([]byte("listen: \":8080\"\nupstream: {url: \"http://${HOST:-x}:1\", timeout: 1d}\n"))
	f.Add([]byte("routes:\n  - &r {path: /a, mode: gateway, roles: [admin], methods: [GET]}\n  - *r\n"))
	f.Add([]byte("secret_key: \"$$${SECRET}\"\nstorage: {url: \"postgresql+asyncpg://u:p@db/x?ssl=true\"}\n"))
	f.Add([]byte("sessions: {url: \"redis://:p@r/0\", idle_timeout: 2h, absolute_timeout: 1h}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("? [a]\n: b\n---\nc: d\n"))
	f.Add([]byte("trusted_proxies: [\"::ffff:1.2.3.4/120\", 0.0.0.0/0]\nheaders: {user_id: X_A, user_email: x-a}\n"))
	getenv := env("HOST", "h", "SECRET", "0123456789abcdef0123456789abcdef", "EMPTY", "", "YAML", "{a: b}")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, getenv)
		if err != nil {
			ps := Problems(err)
			if len(ps) == 0 || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error without problems: %v", err)
			}
			for _, p := range ps {
				if p.Msg == "" || p.Line < 0 || strings.HasPrefix(p.Msg, "internal:") {
					t.Fatalf("bad problem %#v", p)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted a config Validate refuses: %v", err)
		}
		out, err := c.Redacted()
		if err != nil {
			t.Fatalf("Redacted: %v", err)
		}
		_, _ = Parse(out, getenv)
		_ = c.Warnings()
		_ = c.TrustedProxyPrefixes()
	})
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "$", "$$", "${A}", "${A:-b}", "${A", "$A", "x$1", "${:-}", "$${A}", "${A:-${B}}"} {
		f.Add(s)
	}
	getenv := env("A", "${B}", "B", "b")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := expand(s, getenv)
		if err != nil {
			return
		}
		if !strings.Contains(s, "$") && out != s {
			t.Fatalf("expand(%q) = %q without any $", s, out)
		}
		if !strings.Contains(s, "${") && len(out) > len(s) {
			t.Fatalf("expand(%q) = %q grew without a variable", s, out)
		}
	})
}

func TestExpandTable(t *testing.T) {
	t.Parallel()
	getenv := env("A", "alpha", "B", "", "NESTED", "${A}")
	cases := []struct{ in, want, err string }{
		{"", "", ""},
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"x${A}y${A}", "xalphayalpha", ""},
		{"${B:-dflt}", "dflt", ""},
		{"${UNSET:-}", "", ""},
		{"${UNSET}", "", ""},
		{"${A:-dflt}", "alpha", ""},
		{"${NESTED}", "${A}", ""},
		{"$$", "$", ""},
		{"$${A}", "${A}", ""},
		{"$$$${A}", "$${A}", ""},
		{"$", "$", ""},
		{"a$", "a$", ""},
		{"$1$.$ $-", "$1$.$ $-", ""},
		{"${UNSET:-a:-b}", "a:-b", ""},
		{"${A", "", "unterminated"},
		{"${A-x}", "", "invalid variable name"},
		{"${ A}", "", "invalid variable name"},
		{"$A", "", "bare $NAME"},
		{"$_x", "", "bare $NAME"},
	}
	for _, tc := range cases {
		got, err := expand(tc.in, getenv)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("expand(%q) error %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzMaskURL checks that a password never survives masking, whatever
// characters it holds, and that masking never panics.
func FuzzMaskURL(f *testing.F) {
	for _, s := range []string{"p", "p@ss", "p/w", "p?w#x", "p%zz", "::", ""} {
		f.Add("postgres", s, "db:5432/x?sslmode=require")
	}
	f.Fuzz(func(t *testing.T, scheme, password, tail string) {
		_ = maskURL(scheme + password + tail)
		if strings.Contains(tail, "@") {
			return
		}
		raw := scheme + "://u:" + password + "@" + tail
		out := maskURL(raw)
		if out == redacted {
			return
		}
		s, _, ok := splitScheme(raw)
		if !ok || strings.HasPrefix(s, "sqlite") || strings.HasPrefix(s, "memory") {
			return // these are printed as written: they never carry credentials
		}
		if strings.ContainsAny(password, "/?#") {
			t.Fatalf("maskURL(%q) = %q: a password with /, ? or # must hide the whole URL", raw, out)
		}
		if !strings.HasPrefix(out, scheme+"://u:xxxxx@") {
			t.Fatalf("maskURL(%q) = %q shows the password", raw, out)
		}
	})
}
