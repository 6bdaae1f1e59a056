// Package notifytest runs a real SMTP server in the test process (with
// STARTTLS and AUTH PLAIN required, as a production relay would) and keeps
// what it receives, so tests see the mail Portero actually sent.
package notifytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/portero/portero/notify"
)

// Mail is one message the server accepted.
type Mail struct {
	From    string // envelope sender
	To      string // envelope recipient (the server takes one per message)
	Header  mail.Header
	Subject string // decoded
	Text    string // decoded body
	Raw     []byte
}

// Token returns the first value of a "token=" query parameter in a link, or
// the indented token line of a message without a link ("" if none).
func (m Mail) Token() string {
	if t := linkToken.FindStringSubmatch(m.Text); t != nil {
		return t[1]
	}
	if t := bareToken.FindStringSubmatch(m.Text); t != nil {
		return t[1]
	}
	return ""
}

var (
	linkToken = regexp.MustCompile(`[?&]token=([A-Za-z0-9_-]+)`)
	bareToken = regexp.MustCompile(`(?m)^  ([A-Za-z0-9_-]{40,})\s*$`)
)

// Server is the capturing SMTP server.
type Server struct {
	Host, Username, Password string
	Port                     int
	roots                    *x509.CertPool

	mu      sync.Mutex
	mails   []Mail
	arrived chan struct{} // closed and replaced on every message
}

// NewServer starts a server on a free loopback port, stopped by tb.Cleanup.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	cert, roots := selfSigned(tb)
	s := &Server{Host: "127.0.0.1", Username: "portero", Password: "relay-" + strconv.Itoa(int(time.Now().UnixNano()%1e6)),
		roots: roots, arrived: make(chan struct{})}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "mail.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.AllowInsecureAuth = false // AUTH only after STARTTLS
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 1 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return s
}

// Config is an SMTP sender configuration for this server.
func (s *Server) Config(from string) notify.SMTPConfig {
	return notify.SMTPConfig{Host: s.Host, Port: s.Port, Username: s.Username, Password: s.Password, From: from,
		StartTLS: true, TLSConfig: &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12}, Timeout: 10 * time.Second}
}

// Mails returns every message so far.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// To returns the messages to one address.
func (s *Server) To(addr string) []Mail { return s.to(addr, nil) }

func (s *Server) to(addr string, keep func(Mail) bool) []Mail {
	var out []Mail
	for _, m := range s.Mails() {
		if strings.EqualFold(m.To, addr) && (keep == nil || keep(m)) {
			out = append(out, m)
		}
	}
	return out
}

// Wait waits until addr has received n messages and returns the n-th;
// it fails the test after timeout.
func (s *Server) Wait(tb testing.TB, addr string, n int, timeout time.Duration) Mail {
	tb.Helper()
	return s.WaitFor(tb, addr, n, timeout, nil)
}

// WaitFor is Wait counting only the messages keep accepts (nil: all), for
// flows whose links arrive among notices sent at their own pace.
func (s *Server) WaitFor(tb testing.TB, addr string, n int, timeout time.Duration, keep func(Mail) bool) Mail {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ch := s.arrived
		s.mu.Unlock()
		if got := s.to(addr, keep); len(got) >= n {
			return got[n-1]
		}
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("no message #%d to %s within %v (have %d)", n, addr, timeout, len(s.to(addr, keep)))
		}
	}
}

// HasToken keeps the messages that carry a link token.
func HasToken(m Mail) bool { return m.Token() != "" }

func (s *Server) add(m Mail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mails = append(s.mails, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s        *Server
	authed   bool
	from, to string
}

var _ smtp.AuthSession = (*session)(nil)

func (se *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (se *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != se.s.Username || pass != se.s.Password {
			return errors.New("invalid credentials")
		}
		se.authed = true
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if !se.authed {
		return smtp.ErrAuthRequired
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if se.to != "" {
		return &smtp.SMTPError{Code: 452, Message: "one recipient per message"}
	}
	se.to = to
	return nil
}

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: se.from, To: se.to, Raw: raw}
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		return err
	}
	m.Header = msg.Header
	m.Subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	body := io.Reader(msg.Body)
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	m.Text = strings.ReplaceAll(string(text), "\r\n", "\n")
	se.s.add(m)
	return nil
}

func (se *session) Reset()        { se.from, se.to = "", "" }
func (se *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "notifytest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
