package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// serialServed is the serial number of the certificate r hands out.
func serialServed(t *testing.T, r *certReloader) int64 {
	t.Helper()
	c, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.Int64()
}

// TestCertReloaderPicksUpRenewals: a renewed certificate (files replaced,
// as cert-manager or certbot do) is served from the next check on, with no
// restart; a half-written or broken pair keeps the old one serving.
func TestCertReloaderPicksUpRenewals(t *testing.T) {
	t.Parallel()
	certFile, keyFile, _ := selfSignedSerial(t, 1)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	r, err := newCertReloader(certFile, keyFile, zap.NewNop(), func() time.Time { return time.Unix(0, now.Load()) })
	if err != nil {
		t.Fatal(err)
	}
	if got := serialServed(t, r); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}
	replace := func(serial int64) {
		t.Helper()
		c, k, _ := selfSignedSerial(t, serial)
		for src, dst := range map[string]string{c: certFile, k: keyFile} {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(filepath.Dir(dst), "new")
			if err := os.WriteFile(tmp, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	advance := func() { now.Add(int64(certCheckEvery + time.Millisecond)) }

	replace(2)
	if got := serialServed(t, r); got != 1 {
		t.Fatalf("checked again before certCheckEvery: serial %d", got)
	}
	advance()
	if got := serialServed(t, r); got != 2 {
		t.Fatalf("after the renewal: serial %d, want 2", got)
	}

	// A broken certificate file (a renewal caught half-way) is not taken.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\ntruncated"), 0o600); err != nil {
		t.Fatal(err)
	}
	advance()
	if got := serialServed(t, r); got != 2 {
		t.Fatalf("after a broken renewal: serial %d, want the old 2", got)
	}
	replace(3)
	advance()
	if got := serialServed(t, r); got != 3 {
		t.Fatalf("after the renewal completed: serial %d, want 3", got)
	}

	if _, err := newCertReloader(certFile, filepath.Join(t.TempDir(), "missing.pem"), zap.NewNop(), nil); err == nil {
		t.Error("a missing key file at start is not an error")
	}
}
