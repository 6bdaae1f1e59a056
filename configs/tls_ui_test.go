package configs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTLSAndUISettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range []string{cert, key} {
		if err := os.WriteFile(f, []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, yaml, key, msg string
		line                 int
	}{
		{"cert without key", "tls:\n  cert_file: " + cert + "\n", "tls.key_file", "both or neither", 1},
		{"key without cert", "tls:\n  key_file: " + key + "\n", "tls.cert_file", "both or neither", 1},
		{"missing cert file", "tls:\n  cert_file: " + filepath.Join(dir, "nope.pem") + "\n  key_file: " + key + "\n", "tls.cert_file", "readable PEM file", 2},
		{"key is a directory", "tls:\n  cert_file: " + cert + "\n  key_file: " + dir + "\n", "tls.key_file", "readable PEM file", 3},
		{"title too long", "ui:\n  title: \"012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901\"\n", "ui.title", "at most 100", 2},
		{"title control char", "ui:\n  title: \"a\\tb\"\n", "ui.title", "control", 2},
		{"logo over http", "ui:\n  logo_url: http://cdn.example/logo.png\n", "ui.logo_url", "https://", 2},
		{"logo scheme-relative", "ui:\n  logo_url: //cdn.example/logo.png\n", "ui.logo_url", "same-origin path", 2},
		{"logo javascript", "ui:\n  logo_url: \"javascript:alert(1)\"\n", "ui.logo_url", "same-origin path", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yaml), nil)
			requireProblem(t, err, tc.key, tc.line, tc.msg)
		})
	}

	c, err := Parse([]byte("tls:\n  cert_file: "+cert+"\n  key_file: "+key+"\nui:\n  title: Muestras Univar\n  logo_url: https://cdn.example/logo.png\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS.Enabled() || c.UI.Title != "Muestras Univar" || c.UI.LogoURL != "https://cdn.example/logo.png" {
		t.Errorf("parsed %+v %+v", c.TLS, c.UI)
	}
	if d := Default(); d.TLS.Enabled() || d.UI.Title != "Portero" {
		t.Errorf("defaults: %+v %+v", d.TLS, d.UI)
	}
}
