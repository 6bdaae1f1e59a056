// Command demo-upstream is a stand-in for the legacy app that Portero fronts:
// it echoes what it receives and offers the streaming, WebSocket, status,
// delay and trailer endpoints that the proxy's tests and `make run` need.
// It is a test double, not a model of a production server: it accepts any
// WebSocket origin and believes every request.
//
// Usage:
//
//	demo-upstream [-listen 127.0.0.1:8000] [-shutdown-grace 10s]
//
// Once listening it logs a line `msg=listening addr=HOST:PORT` to stderr, so a
// test that starts it on port 0 can learn the port. On SIGTERM or SIGINT it
// stops accepting, lets in-flight requests finish within the grace period,
// closes WebSockets with 1001 (going away) and exits 0; a second signal
// kills it at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the default handling returns, so a second one
	// ends a shutdown that hangs.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo-upstream:", err)
		os.Exit(1)
	}
}

// config is what the command line sets.
type config struct {
	listen string
	grace  time.Duration
}

// parseFlags reads the command line; usage and errors go to output.
func parseFlags(args []string, output io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("demo-upstream", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8000", "address to listen on (port 0 picks a free one)")
	fs.DurationVar(&cfg.grace, "shutdown-grace", 10*time.Second, "how long in-flight requests may take to finish on shutdown")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.grace <= 0 {
		return config{}, fmt.Errorf("-shutdown-grace must be positive, got %s", cfg.grace)
	}
	return cfg, nil
}

// run parses args, listens and serves until ctx ends.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	return serve(ctx, ln, cfg.grace, slog.New(slog.NewTextHandler(stderr, nil)))
}

// serve answers on ln until ctx ends, then shuts down gracefully: in-flight
// requests (event streams included) get up to grace to finish, and open
// WebSockets are told the server is going away.
func serve(ctx context.Context, ln net.Listener, grace time.Duration, logger *slog.Logger) error {
	shutdown, beginShutdown := context.WithCancel(context.Background())
	defer beginShutdown()
	s := newServer(shutdown)
	srv := &http.Server{
		Handler: s,
		// No read or write timeout: gigabyte bodies and long event streams
		// must get through. Slow or idle clients are still cut off.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Shutdown does not see hijacked connections; this tells the WebSockets.
	srv.RegisterOnShutdown(beginShutdown)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())

	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "grace", grace.String())
	graceCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(graceCtx)
	if err == nil {
		err = s.waitWebSockets(graceCtx)
	}
	if err != nil {
		_ = srv.Close()
		<-served
		return fmt.Errorf("shutting down: %w", err)
	}
	<-served // http.ErrServerClosed, expected
	logger.Info("stopped")
	return nil
}
