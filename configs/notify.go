package configs

import (
	"net"
	"net/mail"
	"net/url"
	"strings"
	"time"
)

// Notify is how Portero sends mail to users: password reset and
// verification links, and notices of a locked account or a changed password.
type Notify struct {
	// Kind is smtp (production), file (development: every message is
	// appended to file.path) or none (nothing is sent).
	Kind string `yaml:"kind"`
	// From is the sender, "Name <addr@host>" or "addr@host".
	From string `yaml:"from"`
	// BaseURL is the public origin the links in messages point at (such as
	// https://app.example.com); empty sends the bare token instead of a link.
	BaseURL string     `yaml:"base_url"`
	SMTP    NotifySMTP `yaml:"smtp"`
	File    NotifyFile `yaml:"file"`
}

// NotifySMTP is the mail relay.
type NotifySMTP struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// StartTLS requires the relay to upgrade the connection before AUTH
	// and the message; turn it off only for a relay on this machine.
	StartTLS bool `yaml:"starttls"`
}

// NotifyFile is the development outbox.
type NotifyFile struct {
	Path string `yaml:"path"`
}

// PasswordReset configures POST /auth/forgot-password and /auth/reset-password.
type PasswordReset struct {
	TokenLifetime Duration `yaml:"token_lifetime"`
}

// Verification configures e-mail verification.
type Verification struct {
	TokenLifetime Duration `yaml:"token_lifetime"`
	// RequiredForLogin refuses the login of a user whose e-mail is not
	// verified (400 LOGIN_USER_NOT_VERIFIED, only after the right password).
	RequiredForLogin bool `yaml:"required_for_login"`
}

func defaultNotify() Notify {
	return Notify{Kind: "none", SMTP: NotifySMTP{Port: 587, StartTLS: true}, File: NotifyFile{Path: "./data/outbox.mbox"}}
}

func (c Config) checkAccountFlows(ch *checker) {
	n := c.Notify
	ch.oneOf("notify.kind", n.Kind, "smtp", "file", "none")
	if n.Kind == "smtp" || n.Kind == "file" {
		if _, err := mail.ParseAddress(n.From); err != nil {
			ch.add("notify.from", "must be an address such as \"Portero <no-reply@example.com>\" (got %q)", n.From)
		}
	}
	if n.BaseURL != "" {
		u, err := url.Parse(n.BaseURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			ch.add("notify.base_url", "must be an origin such as https://app.example.com, without query or credentials (got %q)", n.BaseURL)
		}
	}
	switch n.Kind {
	case "smtp":
		if strings.TrimSpace(n.SMTP.Host) == "" {
			ch.add("notify.smtp.host", "must name the mail relay when notify.kind is smtp")
		}
		if n.SMTP.Port < 1 || n.SMTP.Port > 65535 {
			ch.add("notify.smtp.port", "must be a port number such as 587 (got %d)", n.SMTP.Port)
		}
		if n.SMTP.Username != "" && n.SMTP.Password == "" {
			ch.add("notify.smtp.password", "must be set with notify.smtp.username")
		}
		if n.SMTP.Username != "" && !n.SMTP.StartTLS && !loopbackHost(n.SMTP.Host) {
			ch.add("notify.smtp.starttls", "must be true to send a password to %s (only a relay on this machine may be reached without TLS)", n.SMTP.Host)
		}
	case "file":
		if strings.TrimSpace(n.File.Path) == "" {
			ch.add("notify.file.path", "must name the file messages are appended to when notify.kind is file")
		}
	}
	if d := c.PasswordReset.TokenLifetime; d < Duration(time.Minute) || d > Duration(24*time.Hour) {
		ch.add("password_reset.token_lifetime", "must be between 1m and 24h (got %s)", d)
	}
	if d := c.Verification.TokenLifetime; d < Duration(time.Minute) || d > Duration(30*24*time.Hour) {
		ch.add("verification.token_lifetime", "must be between 1m and 30d (got %s)", d)
	}
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c Config) accountFlowWarnings(warn func(key, format string, args ...any)) {
	if c.Notify.Kind == "none" && c.Verification.RequiredForLogin {
		warn("verification.required_for_login", "true while notify.kind is none: users cannot receive a verification link, only an admin can verify them")
	}
	if c.Notify.Kind != "none" && c.Notify.BaseURL == "" {
		warn("notify.base_url", "empty: messages carry bare tokens instead of links to the reset and verification pages")
	}
}
