package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// ServerOptions are the public listener's limits.
type ServerOptions struct {
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// Server runs the public listener and the ops listener and shuts both down
// gracefully: readiness flips to 503, listeners close, in-flight requests
// and upgraded (WebSocket) connections get the grace period, then whatever
// is left is cut.
type Server struct {
	public   *http.Server
	ops      *http.Server
	health   *Health
	upgrades *UpgradeTracker
	hardStop context.CancelFunc
	log      *zap.Logger
}

// NewServer builds both listeners. No write timeout is set on purpose: long
// downloads and event streams must run as long as they need; slow clients are
// bounded by the header and idle timeouts instead.
func NewServer(o ServerOptions, public http.Handler, ops http.Handler, health *Health, upgrades *UpgradeTracker, log *zap.Logger) *Server {
	hardCtx, hardStop := context.WithCancel(context.Background())
	errLog := zap.NewStdLog(log.With(zap.String("component", "http")))
	return &Server{
		public: &http.Server{
			Handler:           public,
			ReadHeaderTimeout: o.ReadHeaderTimeout,
			IdleTimeout:       o.IdleTimeout,
			MaxHeaderBytes:    o.MaxHeaderBytes,
			ErrorLog:          errLog,
			BaseContext:       func(net.Listener) context.Context { return hardCtx },
		},
		ops: &http.Server{
			Handler:           ops,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          errLog,
		},
		health:   health,
		upgrades: upgrades,
		hardStop: hardStop,
		log:      log,
	}
}

// Serve accepts on both listeners until Shutdown; it returns the first
// listener error other than a normal close.
func (s *Server) Serve(public, ops net.Listener) error {
	errc := make(chan error, 2)
	go func() { errc <- s.public.Serve(public) }()
	go func() { errc <- s.ops.Serve(ops) }()
	for range 2 {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	return nil
}

// Shutdown drains within ctx's deadline, then forces the rest closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.health.StartDraining()
	err := s.public.Shutdown(ctx)
	if err == nil {
		err = s.upgrades.Wait(ctx)
	}
	if err != nil {
		s.log.Warn("shutdown grace expired; closing remaining connections", zap.Error(err))
		_ = s.public.Close()
	}
	// Cancelling the base context ends upgraded tunnels, which net/http no longer tracks.
	s.hardStop()
	opsCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.ops.Shutdown(opsCtx)
	return err
}

// UpgradeTracker counts requests that switched protocols: http.Server.Shutdown
// neither waits for nor closes hijacked connections.
type UpgradeTracker struct{ wg sync.WaitGroup }

// Track wraps h so upgrade requests are counted while they run.
func (t *UpgradeTracker) Track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			t.wg.Add(1)
			defer t.wg.Done()
		}
		h.ServeHTTP(w, r)
	})
}

// Wait blocks until every upgraded connection ended or ctx is done.
func (t *UpgradeTracker) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
