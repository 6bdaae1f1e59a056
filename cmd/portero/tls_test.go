package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return selfSignedSerial(t, 1)
}

// selfSignedSerial is selfSigned with the certificate's serial number.
func selfSignedSerial(t *testing.T, serial int64) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "portero test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLSWithHTTP2(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	// cookie_secure is off, as in development: over TLS the cookies are
	// Secure all the same.
	plain, _, _ := startStack(t, fmt.Sprintf("tls: {cert_file: %q, key_file: %q}\nsessions: {cookie_name: portero_session, cookie_secure: false}\n", certFile, keyFile))
	public := "https://" + strings.TrimPrefix(plain, "http://")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
	}}
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := client.Get(public + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}

	res, body := get("/anything/over-tls")
	if res.StatusCode != 200 || res.ProtoMajor != 2 || !strings.Contains(body, `"request_uri":"/anything/over-tls"`) {
		t.Errorf("proxied over TLS: %d %s %s", res.StatusCode, res.Proto, body)
	}
	res, _ = get("/auth/signin")
	if res.StatusCode != 200 || res.ProtoMajor != 2 {
		t.Errorf("sign-in page over TLS: %d %s", res.StatusCode, res.Proto)
	}
	if res.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no Strict-Transport-Security on a page served over TLS")
	}
	if sc := res.Header.Get("Set-Cookie"); !strings.Contains(sc, "Secure") {
		t.Errorf("cookie over TLS without Secure: %q", sc)
	}
	res, err := client.Post(public+"/auth/cookie/login", "application/json", strings.NewReader(`{"username":"nobody@example.com","password":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("login over TLS: %d", res.StatusCode)
	}

	// Plain HTTP on the TLS port gets nothing useful.
	if res, err := http.Get(plain + "/anything/x"); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP on the TLS listener: %d", res.StatusCode)
		}
	}
	// An old protocol version is refused.
	old := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if res, err := old.Get(public + "/anything/x"); err == nil {
		res.Body.Close()
		t.Error("a TLS 1.1 client was served")
	}
}
