package configs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	secretKey    = "secret-key-0123456789-0123456789-SECRET"
	legacySecret = "legacy-jwt-secret-LEGACY"
	pgPassword   = "pg-PASSWORD-42"
	redisPass    = "redis-PASSWORD-43"
)

func secretConfig(t testing.TB) Config {
	t.Helper()
	y := fmt.Sprintf(`
secret_key: %q
storage: {url: "postgres://portero:%s@db:5432/portero?sslmode=require"}
sessions: {url: "rediss://:%s@redis:6380/0"}
legacy: {jwt_secret: %q}
routes:
  - {path: /a, mode: dual}
`, secretKey, pgPassword, redisPass, legacySecret)
	c, err := Parse([]byte(y), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func requireNoSecret(t testing.TB, where, out string) {
	t.Helper()
	for _, s := range []string{secretKey, legacySecret, pgPassword, redisPass} {
		if strings.Contains(out, s) {
			t.Errorf("%s leaks %q:\n%s", where, s, out)
		}
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	c := secretConfig(t)
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	requireNoSecret(t, "Redacted()", string(out))
	for _, want := range []string{
		"secret_key: '[REDACTED]'",
		"jwt_secret: '[REDACTED]'",
		"url: postgres://portero:xxxxx@db:5432/portero?sslmode=require",
		"url: rediss://:xxxxx@redis:6380/0",
		"timeout: 30s",
		"path: /a",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("Redacted() lacks %q:\n%s", want, out)
		}
	}

	// Credentials in upstream.url are refused by Validate, but even an
	// unvalidated Config must not print them.
	c.Upstream.URL = "http://user:" + pgPassword + "@app"
	out, _ = c.Redacted()
	requireNoSecret(t, "Redacted() with upstream credentials", string(out))
}

func TestRedactedRoundTrip(t *testing.T) {
	t.Parallel()
	for name, load := range map[string]func() (Config, error){
		"defaults": func() (Config, error) { return Default(), nil },
		"dev.yaml": func() (Config, error) { return Dev(nil) },
	} {
		c, err := load()
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Redacted()
		if err != nil {
			t.Fatal(err)
		}
		// SECRET_KEY puts back the one secret the printed form hides and
		// validation needs; the legacy secret is copied over after.
		back, err := Parse(out, env("SECRET_KEY", c.SecretKey.Reveal()))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		back.Legacy.JWTSecret = c.Legacy.JWTSecret
		if !reflect.DeepEqual(normalise(back), normalise(c)) {
			t.Errorf("%s: round trip changed the config:\n%+v\n%+v", name, back, c)
		}
	}
}

// normalise makes nil and empty slices compare equal.
func normalise(c Config) Config {
	if len(c.TrustedProxies) == 0 {
		c.TrustedProxies = nil
	}
	if len(c.Routes) == 0 {
		c.Routes = nil
	}
	if len(c.Headers.Disable) == 0 {
		c.Headers.Disable = nil
	}
	for i := range c.Routes {
		if len(c.Routes[i].Permissions) == 0 {
			c.Routes[i].Permissions = nil
		}
		if len(c.Routes[i].Methods) == 0 {
			c.Routes[i].Methods = nil
		}
		if len(c.Routes[i].Roles) == 0 {
			c.Routes[i].Roles = nil
		}
	}
	return c
}

func TestSecretsNeverPrint(t *testing.T) {
	t.Parallel()
	c := secretConfig(t)
	values := map[string]any{
		"Config": c, "*Config": &c, "Storage": c.Storage, "Legacy": c.Legacy,
		"Secret": c.SecretKey, "SecretURL": c.Storage.URL, "[]Secret": []Secret{c.SecretKey},
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%10.3s"} {
			requireNoSecret(t, name+" "+verb, fmt.Sprintf(verb, v))
		}
		requireNoSecret(t, name+" Sprint", fmt.Sprint(v))
		requireNoSecret(t, name+" Sprintln", fmt.Sprintln(v))
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		requireNoSecret(t, name+" json", string(b))
	}
	if got := fmt.Sprint(c.Storage.URL); got != "postgres://portero:xxxxx@db:5432/portero?sslmode=require" {
		t.Errorf("storage.url prints %q", got)
	}
	if got := fmt.Sprintf("%q|%#v|%v", c.SecretKey, c.SecretKey, Secret("")); got != `"[REDACTED]"|"[REDACTED]"|` {
		t.Errorf("secret prints %q", got)
	}

	var buf bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)
	log := zap.New(core)
	log.Info("config",
		zap.Any("config", c), zap.Reflect("reflect", c), zap.Any("key", c.SecretKey),
		zap.Stringer("url", c.Storage.URL), zap.Any("sessions", c.Sessions), zap.Any("legacy", &c.Legacy))
	_ = log.Sync()
	requireNoSecret(t, "zap", buf.String())
	if !strings.Contains(buf.String(), "[REDACTED]") || !strings.Contains(buf.String(), "xxxxx") {
		t.Errorf("zap output has no placeholders: %s", buf.String())
	}

	buf.Reset()
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "key", c.SecretKey, "url", c.Storage.URL, "config", c)
	requireNoSecret(t, "slog", buf.String())
}

func TestMaskURL(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"":                    "",
		"postgres://u:p@db/x": "postgres://u:xxxxx@db/x",
		"postgres://u@db/x":   "postgres://u@db/x",
		"postgres://db/x?password=p&sslmode=require":  "postgres://db/x?password=xxxxx&sslmode=require",
		"redis://r:6379/0?user_token=t":               "redis://r:6379/0?user_token=xxxxx",
		"memory://":                                   "memory://",
		"sqlite://./data/portero.db":                  "sqlite://./data/portero.db",
		"postgres://u:12?pw@db/x":                     redacted, // unescaped '?' in the password
		"postgres://u:p/w@db/x":                       redacted,
		"postgres://u:p#w@db/x":                       redacted,
		"host=db password=p":                          redacted, // a DSN, not a URL
		"postgres://u:p@db/x#frag":                    "postgres://u:xxxxx@db/x#xxxxx",
		"::not a url":                                 redacted,
		"postgres://u:p@db1:5432,db2:5432/x":          "postgres://u:xxxxx@db1:5432,db2:5432/x",
		"postgres://u:p@ss@db/x":                      "postgres://u:xxxxx@db/x",
		"redis://:pw@r:6379/0":                        "redis://:xxxxx@r:6379/0",
		"redis://r?a=1&Password=2&flag&sslpassword=3": "redis://r?a=1&Password=xxxxx&flag&sslpassword=xxxxx",
		"redis://r?%zz=1":                             "redis://r?xxxxx=xxxxx",
		"sqlite://:memory:":                           "sqlite://:memory:",
		"1postgres://u:p@db":                          redacted,
	}
	for in, want := range cases {
		if got := maskURL(in); got != want {
			t.Errorf("maskURL(%q) = %q, want %q", in, got, want)
		}
	}
}
