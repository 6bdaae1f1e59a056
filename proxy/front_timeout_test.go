package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
)

// A store that stops answering mid-query must not hold an own-endpoint
// request forever: the request's context carries OwnTimeout, and the
// proxied path does not (streams run as long as they need).
func TestOwnEndpointsHaveADeadline(t *testing.T) {
	t.Parallel()
	var ownDeadline, fwdDeadline bool
	own := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ownDeadline = r.Context().Deadline()
		select {
		case <-r.Context().Done():
			w.WriteHeader(http.StatusServiceUnavailable)
		case <-time.After(5 * time.Second):
		}
	})
	fwd := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, fwdDeadline = r.Context().Deadline() })
	front := NewFront(FrontOptions{Own: own, OwnPrefixes: []string{"/auth"}, OwnTimeout: 50 * time.Millisecond,
		Health: NewHealth(time.Second), Forward: fwd, IPs: NewIPResolver(nil), Log: zap.NewNop()})

	start := time.Now()
	rec := httptest.NewRecorder()
	front.ServeHTTP(rec, httptest.NewRequest("POST", "/auth/login", nil))
	if took := time.Since(start); !ownDeadline || rec.Code != http.StatusServiceUnavailable || took > 2*time.Second {
		t.Errorf("own endpoint: deadline %v, status %d after %v", ownDeadline, rec.Code, took)
	}
	front.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/app", nil))
	if fwdDeadline {
		t.Error("a proxied request got the own-endpoint deadline")
	}
}
