package configs

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as a Go duration ("60m", "1h30m") or
// with a day suffix ("365d") for retention-style settings.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String is the Go form without zero tails ("1h", "90m", "1h30m", not
// "1h0m0s"), so printed configs read like the files they came from.
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// ParseDuration accepts Go durations plus a whole-number "d" (days) form.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q: want e.g. 30s, 60m, 12h or 365d", s)
		}
		return Duration(time.Duration(n) * 24 * time.Hour), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 30s, 60m, 12h or 365d", s)
	}
	return Duration(v), nil
}

// UnmarshalYAML reads a duration string. The loader does not go through it
// (it reports problems with their key path itself); it is here so that a
// plain yaml.Unmarshal of a Config still works.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as 60m", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the Go form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Secret is a string that never prints: fmt (every verb), zap, slog, YAML,
// JSON and text encoders all see a placeholder. Only Reveal gives the value.
type Secret string

const redacted = "[REDACTED]"

// Reveal returns the secret itself; call it only where the value is used.
func (s Secret) Reveal() string { return string(s) }

// String redacts. An empty secret prints empty so "not set" stays visible.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format covers every fmt verb: without it %d or %t on a Secret would print the
// raw string inside fmt's "%!d(configs.Secret=…)" complaint.
func (s Secret) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s.String()) }

// LogValue keeps log/slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalYAML redacts.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// MarshalJSON redacts (zap.Reflect and zap.Any on structs go through JSON).
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// MarshalText redacts for encoders that look for encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// SecretURL is a connection URL that may carry a password (storage.url,
// sessions.url). It prints as the URL with the password and password-like
// query parameters replaced by "xxxxx", so operators can still read which
// host and database are meant; a value that does not parse as a URL prints
// fully redacted. Only Reveal gives the value.
type SecretURL string

// Reveal returns the URL itself; call it only where the value is used.
func (u SecretURL) Reveal() string { return string(u) }

// String masks the password.
func (u SecretURL) String() string { return maskURL(string(u)) }

// GoString keeps %#v from printing the password.
func (u SecretURL) GoString() string { return strconv.Quote(u.String()) }

// Format covers every fmt verb (see Secret.Format).
func (u SecretURL) Format(f fmt.State, verb rune) { formatRedacted(f, verb, u.String()) }

// LogValue keeps log/slog from printing the password.
func (u SecretURL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// MarshalYAML masks the password.
func (u SecretURL) MarshalYAML() (any, error) { return u.String(), nil }

// MarshalJSON masks the password.
func (u SecretURL) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(u.String())), nil }

// MarshalText masks the password.
func (u SecretURL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// formatRedacted prints an already redacted text for any verb: %q and %#v
// quote it, everything else prints it as is.
func formatRedacted(f fmt.State, verb rune, s string) {
	switch {
	case verb == 'q', verb == 'v' && f.Flag('#'):
		s = strconv.Quote(s)
	}
	_, _ = io.WriteString(f, s)
}

const maskedPassword = "xxxxx"

// maskURL hides a URL's password and the values of password-like query
// parameters (pgx reads ?password=, redis URLs may too). It parses by hand,
// the way net/url finds the parts (the authority ends at the first '/', '?'
// or '#', the user info at its last '@'), so that URLs net/url refuses but
// the drivers take (pgx's postgres://u:p@h1:5432,h2:5432/db) still print
// readably. Anything without a scheme is hidden entirely: it could be a DSN
// with a password in a form this function does not know.
func maskURL(raw string) string {
	if raw == "" {
		return ""
	}
	scheme, rest, ok := splitScheme(raw)
	if !ok {
		return redacted
	}
	if base, _, _ := strings.Cut(scheme, "+"); base == "sqlite" || base == "sqlite3" || base == "memory" {
		return raw // a file path or nothing: no credentials to hide
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if strings.Contains(tail, "@") {
		// A password with an unescaped '/', '?' or '#': part of it would
		// show up in the path or the query.
		return redacted
	}
	var b strings.Builder
	b.WriteString(raw[:len(raw)-len(rest)]) // scheme://
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		user, _, hasPassword := strings.Cut(authority[:at], ":")
		b.WriteString(user)
		if hasPassword {
			b.WriteString(":" + maskedPassword)
		}
		b.WriteByte('@')
		authority = authority[at+1:]
	}
	b.WriteString(authority)
	tail, fragment, hasFragment := strings.Cut(tail, "#")
	path, query, hasQuery := strings.Cut(tail, "?")
	b.WriteString(path)
	if hasQuery {
		b.WriteByte('?')
		for i, pair := range strings.Split(query, "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			k, _, hasValue := strings.Cut(pair, "=")
			if name, err := url.QueryUnescape(k); err != nil || secretQueryKey(name) {
				if err != nil {
					k = maskedPassword
				}
				b.WriteString(k + "=" + maskedPassword)
				continue
			}
			if !hasValue {
				b.WriteString(k)
				continue
			}
			b.WriteString(pair)
		}
	}
	if hasFragment && fragment != "" {
		b.WriteString("#" + maskedPassword)
	}
	return b.String()
}

// splitScheme returns the scheme of raw (lower case) and what follows "://";
// ok is false when raw does not start with a well-formed scheme.
func splitScheme(raw string) (scheme, rest string, ok bool) {
	i := strings.Index(raw, "://")
	if i <= 0 {
		return "", "", false
	}
	for j := 0; j < i; j++ {
		c := raw[j]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", "", false
		}
	}
	return strings.ToLower(raw[:i]), raw[i+3:], true
}

// secretQueryKey reports whether a query parameter may hold a credential.
// It errs on the side of masking: a masked sslkey path costs nothing.
func secretQueryKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range []string{"pass", "pwd", "secret", "token", "key", "auth", "credential"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}
