package notify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portero/portero/notify"
	"github.com/portero/portero/notify/notifytest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestSMTPDelivers: a message goes through STARTTLS and AUTH to a real
// server, arrives once, intact, with UTF-8 in subject and body.
func TestSMTPDelivers(t *testing.T) {
	t.Parallel()
	srv := notifytest.NewServer(t)
	s, err := notify.NewSMTP(srv.Config("Portero <no-reply@portero.test>"))
	if err != nil {
		t.Fatal(err)
	}
	m := notify.Message{To: "zoë@example.test", Subject: "Ünïcode ✓", Text: "Line one\nA long line " + strings.Repeat("é", 100) + "\n"}
	if err := s.Send(ctx(t), m); err != nil {
		t.Fatal(err)
	}
	got := srv.Wait(t, "zoë@example.test", 1, 5*time.Second)
	if got.Subject != m.Subject || got.Text != m.Text || got.From != "no-reply@portero.test" {
		t.Errorf("received %+v", got)
	}
	if got.Header.Get("Message-ID") == "" || got.Header.Get("Date") == "" || got.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("headers %v", got.Header)
	}
}

// TestSMTPRefusals: no STARTTLS means no AUTH (the server offers none in
// clear), a wrong password is refused, and a header with a line break never
// leaves the process.
func TestSMTPRefusals(t *testing.T) {
	t.Parallel()
	srv := notifytest.NewServer(t)
	msg := notify.Message{To: "a@example.test", Subject: "s", Text: "t"}
	for name, mut := range map[string]func(*notify.SMTPConfig){
		"no starttls":    func(c *notify.SMTPConfig) { c.StartTLS = false },
		"wrong password": func(c *notify.SMTPConfig) { c.Password = "nope" },
		"untrusted cert": func(c *notify.SMTPConfig) { c.TLSConfig = nil },
	} {
		cfg := srv.Config("no-reply@portero.test")
		mut(&cfg)
		s, err := notify.NewSMTP(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(ctx(t), msg); err == nil {
			t.Errorf("%s: sent", name)
		}
	}
	s, _ := notify.NewSMTP(srv.Config("no-reply@portero.test"))
	for _, bad := range []notify.Message{
		{To: "a@example.test\r\nBcc: victim@example.test", Subject: "s"},
		{To: "a@example.test", Subject: "s\nBcc: victim@example.test"},
		{To: "not an address", Subject: "s"},
	} {
		if err := s.Send(ctx(t), bad); !errors.Is(err, notify.ErrInvalidMessage) {
			t.Errorf("%+v: %v, want ErrInvalidMessage", bad, err)
		}
	}
	if n := len(srv.Mails()); n != 0 {
		t.Errorf("%d messages delivered, want 0", n)
	}
	if _, err := notify.NewSMTP(notify.SMTPConfig{Host: "h", Port: 25, From: "not an address"}); err == nil {
		t.Error("bad From accepted")
	}
}

func TestFileAppends(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "outbox.txt")
	f, err := notify.NewFile(path, "no-reply@portero.test")
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"a@example.test", "b@example.test"} {
		if err := f.Send(ctx(t), notify.Message{To: to, Subject: "Hi", Text: "token abc\n"}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "From no-reply@portero.test "); n != 2 || !strings.Contains(string(b), "To: <b@example.test>") {
		t.Errorf("file:\n%s", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	ts, err := notify.NewTemplates()
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, k := range notify.Kinds() {
		for _, link := range []string{"", "https://app.test/auth/reset?token=T0k"} {
			m, err := ts.Render(k, notify.Data{Site: "Muestras", Email: "a@example.test", Link: link, Token: "T0k",
				ExpiresIn: 15 * time.Minute, When: when, Until: when.Add(30 * time.Minute)})
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if m.To != "a@example.test" || !strings.Contains(m.Subject, "Muestras") || strings.Contains(m.Text, "<no value>") {
				t.Errorf("%s: %+v", k, m)
			}
			if (k == notify.KindResetPassword || k == notify.KindVerifyEmail) && !strings.Contains(m.Text, "T0k") {
				t.Errorf("%s: no token in %q", k, m.Text)
			}
		}
	}
}
