package configs

import (
	"strings"
	"testing"
)

// TestNotifyRules: each rule of notify, password_reset and verification
// names its key; a complete SMTP setting passes and its password never prints.
func TestNotifyRules(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, yaml, key, msg string }{
		{"kind", "notify: {kind: pigeon}\n", "notify.kind", "smtp, file, none"},
		{"from", "notify: {kind: file, from: nobody}\n", "notify.from", "must be an address"},
		{"base_url", "notify: {kind: none, base_url: \"ftp://x\"}\n", "notify.base_url", "origin"},
		{"smtp host", "notify: {kind: smtp, from: a@b.c}\n", "notify.smtp.host", "mail relay"},
		{"smtp port", "notify: {kind: smtp, from: a@b.c, smtp: {host: mail, port: 70000}}\n", "notify.smtp.port", "port number"},
		{"smtp password", "notify: {kind: smtp, from: a@b.c, smtp: {host: mail, username: u}}\n", "notify.smtp.password", "with notify.smtp.username"},
		{"smtp starttls", "notify: {kind: smtp, from: a@b.c, smtp: {host: mail, username: u, password: p, starttls: false}}\n", "notify.smtp.starttls", "must be true"},
		{"file path", "notify: {kind: file, from: a@b.c, file: {path: \"\"}}\n", "notify.file.path", "must name the file"},
		{"reset lifetime", "password_reset: {token_lifetime: 48h}\n", "password_reset.token_lifetime", "between 1m and 24h"},
		{"verify lifetime", "verification: {token_lifetime: 10s}\n", "verification.token_lifetime", "between 1m and 30d"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.yaml), nil)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		found := false
		for _, p := range Problems(err) {
			if p.Key == tc.key && strings.Contains(p.Msg, tc.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want a problem on %s containing %q, got %v", tc.name, tc.key, tc.msg, err)
		}
	}

	good := "notify:\n  kind: smtp\n  from: \"Portero <no-reply@example.com>\"\n  base_url: https://app.example.com\n" +
		"  smtp: {host: mail.example.com, username: portero, password: \"${SMTP_PASSWORD}\"}\n" +
		"verification: {required_for_login: true}\n"
	c, err := Parse([]byte(good), func(k string) string {
		if k == "SMTP_PASSWORD" {
			return "relay-secret-value"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Notify.SMTP.Port != 587 || !c.Notify.SMTP.StartTLS || c.Notify.SMTP.Password.Reveal() != "relay-secret-value" || !c.Verification.RequiredForLogin {
		t.Errorf("parsed %+v %+v", c.Notify, c.Verification)
	}
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "relay-secret-value") || !strings.Contains(string(out), "password: '[REDACTED]'") {
		t.Errorf("redacted config:\n%s", out)
	}
}
