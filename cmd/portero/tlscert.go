package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
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

	cert atomic.Pointer[tls.Certificate]
	// reload is held by the one handshake that looks at the files; the
	// others go on with the certificate in service instead of waiting on
	// the file system (a slow secret mount must not stall every handshake).
	reload  sync.Mutex
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
	r.cert.Store(&cert)
	r.stamp, r.checked = stamp, now()
	return r, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if r.reload.TryLock() {
		if now := r.now(); now.Sub(r.checked) >= certCheckEvery {
			r.checked = now
			r.reloadLocked()
		}
		r.reload.Unlock()
	}
	return r.cert.Load(), nil
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
	r.cert.Store(&cert)
	r.stamp = stamp
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
