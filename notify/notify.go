// Package notify delivers Portero's messages to users: password reset and
// e-mail verification links, and notices that an account was locked or its
// password changed. It is a package of its own because it talks SMTP and
// renders mail, which has nothing to do with the account data authn owns;
// authn depends only on a one-method Sender.
//
// Two senders: SMTP (STARTTLS and AUTH, for production) and File (appends
// each message to a file, for development and `make run`). Message bodies
// come from embedded text/template files, one per Kind.
package notify

import (
	"context"
	"embed"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Sender delivers one message.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Message is one plain-text mail to one recipient.
type Message struct {
	To      string
	Subject string
	Text    string
}

// Kind names a message template.
type Kind string

// The messages Portero sends.
const (
	KindResetPassword   Kind = "reset_password"
	KindVerifyEmail     Kind = "verify_email"
	KindAccountLocked   Kind = "account_locked"
	KindPasswordChanged Kind = "password_changed"
)

// Kinds lists every Kind, for metrics that pre-declare their labels.
func Kinds() []Kind {
	return []Kind{KindResetPassword, KindVerifyEmail, KindAccountLocked, KindPasswordChanged}
}

// Data is what the templates may use; fields a message does not need stay empty.
type Data struct {
	Site      string        // the site's name (ui.title)
	Email     string        // the recipient
	Link      string        // a page that takes Token, when a base URL is configured
	Token     string        // a single-use token, for clients without the page
	ExpiresIn time.Duration // how long Token lasts
	Until     time.Time     // when a lock lifts
	When      time.Time     // when the event happened
}

//go:embed templates/*.txt
var templateFS embed.FS

// Templates renders messages from the embedded templates.
type Templates struct{ t *template.Template }

// NewTemplates parses the embedded templates.
func NewTemplates() (*Templates, error) {
	t, err := template.New("").Funcs(template.FuncMap{"minutes": minutes}).ParseFS(templateFS, "templates/*.txt")
	if err != nil {
		return nil, fmt.Errorf("notify: templates: %w", err)
	}
	for _, k := range Kinds() {
		if t.Lookup(string(k)+".txt") == nil {
			return nil, fmt.Errorf("notify: no template for %s", k)
		}
	}
	return &Templates{t: t}, nil
}

// Render makes the message of kind for d.Email. A template's first line is
// "Subject: …", then a blank line, then the body.
func (ts *Templates) Render(kind Kind, d Data) (Message, error) {
	var b strings.Builder
	if err := ts.t.ExecuteTemplate(&b, string(kind)+".txt", d); err != nil {
		return Message{}, fmt.Errorf("notify: render %s: %w", kind, err)
	}
	head, body, ok := strings.Cut(b.String(), "\n\n")
	subject, hasSubject := strings.CutPrefix(head, "Subject: ")
	if !ok || !hasSubject {
		return Message{}, fmt.Errorf("notify: template %s must start with a Subject line and a blank line", kind)
	}
	return Message{To: d.Email, Subject: strings.TrimSpace(subject), Text: body}, nil
}

// minutes says a duration in whole minutes or hours for a sentence.
func minutes(d time.Duration) string {
	switch m := int((d + time.Minute - 1) / time.Minute); {
	case m <= 1:
		return "1 minute"
	case m%60 == 0 && m >= 120:
		return fmt.Sprintf("%d hours", m/60)
	case m == 60:
		return "1 hour"
	default:
		return fmt.Sprintf("%d minutes", m)
	}
}
