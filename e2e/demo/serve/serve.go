// Package serve runs the demo's servers: a readiness handler that turns unready while draining,
// and graceful HTTP and gRPC shutdown when the context ends (SIGTERM in the mains).
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
)

// DefaultGrace is how long a server waits for in-flight requests after SIGTERM.
const DefaultGrace = 10 * time.Second

// Health is the /healthz readiness handler: 200 "ok" until Drain, then 503 "draining".
// The zero value is ready.
type Health struct{ draining atomic.Bool }

// Drain makes the handler report not ready.
func (h *Health) Drain() { h.draining.Store(true) }

// ServeHTTP implements http.Handler.
func (h *Health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if h.draining.Load() {
		http.Error(w, "draining", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// HTTP serves h on addr until ctx is done, then stops accepting and waits up to grace
// (zero means DefaultGrace) for in-flight requests.
func HTTP(ctx context.Context, addr string, h http.Handler, grace time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return HTTPListener(ctx, ln, h, grace)
}

// HTTPListener is HTTP on an existing listener, which it closes.
func HTTPListener(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	if grace <= 0 {
		grace = DefaultGrace
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	slog.Info("serving http", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve http %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown http %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http %s: %w", ln.Addr(), err)
	}
	return nil
}

// GRPC serves s on ln until ctx is done, then stops gracefully, forcing the stop after grace
// (zero means DefaultGrace) so that open streams cannot hold the process.
func GRPC(ctx context.Context, ln net.Listener, s *grpc.Server, grace time.Duration) error {
	if grace <= 0 {
		grace = DefaultGrace
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	slog.Info("serving grpc", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve grpc %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.Stop()
		<-done
	}
	return nil
}
