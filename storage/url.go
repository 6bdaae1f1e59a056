package storage

import (
	"fmt"
	"net/url"
	"strings"
)

// target is what a storage URL asks for, worked out before anything is opened.
type target struct {
	dialect Dialect

	// pgURL is the URL handed to pgx: the caller's URL with its scheme
	// normalised to postgres:// (a "+driver" suffix removed).
	pgURL string

	// sqliteDSN is the name handed to the SQLite driver, with Portero's
	// connection parameters appended.
	sqliteDSN string
	// sqliteFile is the database file whose directory Open creates; empty
	// for an in-memory database.
	sqliteFile string
	memory     bool

	// secrets are the URL's password values (decoded and as written), kept
	// only so that error messages can be scrubbed of them.
	secrets []string
}

// sqliteParams are the connection parameters every SQLite connection gets;
// see the package comment for why each is there.
var sqliteParams = []string{
	"_txlock=immediate",
	"_busy_timeout=5000",
	"_foreign_keys=1",
	"_synchronous=NORMAL",
	"_time_format=sqlite",
	"_timezone=UTC",
}

// passwordParams are the query parameters in which libpq-style URLs carry secrets.
var passwordParams = []string{"password", "sslpassword"}

// splitScheme returns the lower-cased scheme of raw (without any "+driver"
// suffix) and the text after "://". ok is false when raw has no well-formed
// scheme; nothing of raw may then be shown to anyone, since a keyword/value
// connection string ("host=… password=…") ends up here.
func splitScheme(raw string) (scheme, full, rest string, ok bool) {
	i := strings.Index(raw, "://")
	if i <= 0 {
		return "", "", "", false
	}
	full = raw[:i]
	for j, c := range full {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", "", "", false
		}
	}
	scheme = strings.ToLower(full)
	if k := strings.IndexByte(scheme, '+'); k >= 0 {
		scheme = scheme[:k]
	}
	return scheme, full, raw[i+3:], true
}

// parseURL works out the target of a storage URL. Its errors wrap
// ErrInvalidURL or ErrUnsupportedScheme and never contain a password.
func parseURL(raw string) (target, error) {
	scheme, full, rest, ok := splitScheme(raw)
	if !ok {
		return target{}, fmt.Errorf("%w: no scheme; want postgres://…, postgresql://… or sqlite://PATH", ErrInvalidURL)
	}
	switch scheme {
	case "postgres", "postgresql":
		return parsePostgres(raw, full)
	case "sqlite", "sqlite3":
		return parseSQLite(rest)
	default:
		return target{}, fmt.Errorf("%w: %q", ErrUnsupportedScheme, full)
	}
}

func parsePostgres(raw, scheme string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes its input, and a password with an unescaped '/',
		// '?' or '#' shifts into the host or port it complains about, so
		// nothing of its message is passed on.
		return target{}, fmt.Errorf("%w: %s://… is not a valid URL; percent-encode special characters in the user name and password", ErrInvalidURL, scheme)
	}
	t := target{dialect: Postgres, pgURL: "postgres" + raw[len(scheme):]}
	if pw, ok := u.User.Password(); ok && pw != "" {
		t.secrets = append(t.secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
		if raw := rawPassword(raw); raw != "" {
			t.secrets = append(t.secrets, raw)
		}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return target{}, fmt.Errorf("%w: %s: query string does not parse", ErrInvalidURL, Redact(raw))
	}
	for _, k := range passwordParams {
		for _, v := range q[k] {
			if v != "" {
				t.secrets = append(t.secrets, v, url.QueryEscape(v))
			}
		}
	}
	if u.Host == "" && q.Get("host") == "" {
		// pgx would silently fall back to a local socket or $PGHOST; for a
		// gateway's configuration that is more surprise than convenience.
		return target{}, fmt.Errorf("%w: %s: no host", ErrInvalidURL, Redact(raw))
	}
	return t, nil
}

func parseSQLite(rest string) (target, error) {
	if rest == "" {
		return target{}, fmt.Errorf("%w: sqlite:// needs a path, e.g. sqlite://./data/portero.db", ErrInvalidURL)
	}
	if strings.ContainsRune(rest, 0) {
		return target{}, fmt.Errorf("%w: sqlite path contains a NUL byte", ErrInvalidURL)
	}
	t := target{dialect: SQLite}
	params := sqliteParams
	if !strings.HasPrefix(rest, "file:") {
		if strings.ContainsAny(rest, "?#") {
			return target{}, fmt.Errorf("%w: sqlite://%s: a plain path takes no query; use sqlite://file:PATH?… for SQLite URI parameters", ErrInvalidURL, rest)
		}
		t.memory = rest == ":memory:"
		if !t.memory {
			t.sqliteFile = rest
			params = append(params[:len(params):len(params)], "_journal_mode=WAL")
		}
		t.sqliteDSN = rest + "?" + strings.Join(params, "&")
		return t, nil
	}

	if strings.ContainsRune(rest, '#') {
		return target{}, fmt.Errorf("%w: sqlite://%s: a fragment is not allowed", ErrInvalidURL, rest)
	}
	u, err := url.Parse(rest)
	if err != nil {
		return target{}, fmt.Errorf("%w: sqlite://%s is not a valid SQLite URI", ErrInvalidURL, rest)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return target{}, fmt.Errorf("%w: sqlite://%s: query string does not parse", ErrInvalidURL, rest)
	}
	for k := range q {
		if strings.HasPrefix(k, "_") {
			return target{}, fmt.Errorf("%w: sqlite://%s: parameter %q is set by Portero and may not be overridden", ErrInvalidURL, rest, k)
		}
	}
	path := u.Path
	if u.Opaque != "" {
		if path, err = url.PathUnescape(u.Opaque); err != nil {
			return target{}, fmt.Errorf("%w: sqlite://%s: path does not unescape", ErrInvalidURL, rest)
		}
	}
	if u.Host != "" && u.Host != "localhost" {
		return target{}, fmt.Errorf("%w: sqlite://%s: a SQLite URI names no host", ErrInvalidURL, rest)
	}
	t.memory = path == ":memory:" || path == "" || q.Get("mode") == "memory"
	if !t.memory {
		t.sqliteFile = path
		params = append(params[:len(params):len(params)], "_journal_mode=WAL")
	}
	sep := "?"
	if strings.ContainsRune(rest, '?') {
		sep = "&"
	}
	t.sqliteDSN = rest + sep + strings.Join(params, "&")
	return t, nil
}

// rawPassword returns the password as written in raw's user info (still
// percent-encoded), found the way net/url finds it: the authority ends at the
// first '/', and the user info at its last '@'.
func rawPassword(raw string) string {
	_, rest, _ := strings.Cut(raw, "://")
	if i := strings.IndexAny(rest, "#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.IndexAny(rest, "?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	_, pw, _ := strings.Cut(rest[:at], ":")
	return pw
}

// scrub replaces every password of t in msg, as a last guard for messages
// that come from a driver.
func (t target) scrub(msg string) string {
	for _, s := range t.secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}

// Redact returns rawURL fit for logs and error messages: passwords in the
// user info and in password/sslpassword query parameters become "xxxxx". A
// string that does not parse as a URL is not shown at all.
func Redact(rawURL string) string {
	scheme, full, _, ok := splitScheme(rawURL)
	if !ok {
		return "<invalid storage URL>"
	}
	if scheme == "sqlite" || scheme == "sqlite3" {
		return rawURL // a SQLite URL holds no credentials
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return full + "://<unparseable>"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = "<unparseable>"
		} else {
			for _, k := range passwordParams {
				if _, has := q[k]; has {
					q.Set(k, "xxxxx")
				}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}
