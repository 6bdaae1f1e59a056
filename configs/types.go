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

func (d Duration) String() string { return time.Duration(d).String() }

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
// parameters (pgx reads ?password=, redis URLs may too). Anything that does
// not parse as a URL with a scheme is hidden entirely: it could be a DSN with
// a password in a form this function does not know.
func maskURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return redacted
	}
	// An '@' anywhere but between the user info and the host means the URL
	// is malformed (a password with an unescaped '?', '#' or '/'), and a part
	// of the password may have landed in the host, path or query.
	if strings.Contains(raw, "@") && (u.User == nil || strings.Contains(u.Host+u.Path+u.RawQuery+u.Fragment, "@")) {
		return redacted
	}
	_, hasPassword := u.User.Password()
	masked := hasPassword
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery, masked = redacted, true
		} else {
			found := false
			for k := range q {
				if secretQueryKey(k) {
					q[k] = []string{maskedPassword}
					found = true
				}
			}
			if found {
				u.RawQuery, masked = q.Encode(), true
			}
		}
	}
	if u.Fragment != "" {
		u.Fragment, masked = maskedPassword, true
	}
	if !masked {
		// Print it exactly as written: re-encoding would turn memory:// into memory:.
		return raw
	}
	// url.URL.Redacted writes "xxxxx" in place of a set password.
	return u.Redacted()
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
