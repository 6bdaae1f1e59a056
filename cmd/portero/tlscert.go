package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// certCheckEvery is how often a handshake may look at the certificate
// files again: renewals are picked up within it, and a busy listener stats
// two files at most once per period.
const certCheckEvery = 10 * time.Second

// certReloader serves the public listener's certificate and picks up a
// renewed one (cert-manager, certbot and Kubernetes secret mounts replace
// the files) without a restart. A pair that does not load, a renewal
// caught half-written say, leaves the one in service in place.
type certReloader struct {
	certFile, keyFile string
	log               *zap.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // the files' sizes and modification times when loaded
	checked time.Time
}

func newCertReloader(certFile, keyFile string, log *zap.Logger, now func() time.Time) (*certReloader, error) {
	if now == nil {
		now = time.Now
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: now}
	stamp, err := r.fileStamp()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.checked = &cert, stamp, now()
	return r, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= certCheckEvery {
		r.checked = now
		r.reloadLocked()
	}
	return r.cert, nil
}

func (r *certReloader) reloadLocked() {
	stamp, err := r.fileStamp()
	if err != nil || stamp == r.stamp {
		return // unchanged, or a file missing for a moment mid-renewal
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.Warn("tls certificate not reloaded: the old one stays in service", zap.String("cert_file", r.certFile), zap.Error(err))
		return
	}
	r.cert, r.stamp = &cert, stamp
	fields := []zap.Field{zap.String("cert_file", r.certFile)}
	if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
		fields = append(fields, zap.Time("not_after", leaf.NotAfter))
	}
	r.log.Info("tls certificate reloaded", fields...)
}

func (r *certReloader) fileStamp() (string, error) {
	var stamp string
	for _, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%d@%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp, nil
}
