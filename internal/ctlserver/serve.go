// Package ctlserver runs a control-plane component: its API listener, its
// admin listener (/metrics, /live, /ready, /selftest) and the background
// tasks it depends on, with one shutdown policy. identity, destination and
// the injector all serve through it.
package ctlserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// API is the component's main server.
type API interface {
	// Serve accepts on lis until Stop; it returns nil or ErrStopped once
	// stopped, any other error when serving failed.
	Serve(lis net.Listener) error
	// Stop stops accepting and lets work in flight finish until ctx is done,
	// then ends it.
	Stop(ctx context.Context)
}

// Config describes one component.
type Config struct {
	// Name of the component, for logs and /selftest ("identity").
	Name string
	// Addr of the API; AdminAddr of the admin endpoints.
	Addr, AdminAddr string
	// Gatherer serves /metrics; nil serves an empty registry.
	Gatherer prometheus.Gatherer
	// Ready answers /ready: nil error means ready. nil means always ready.
	Ready func() error
	// SelfTests run on GET /selftest (see selftest.go).
	SelfTests []SelfTest
	// Drain is how long in-flight API work may finish on shutdown; 0 ends it
	// at once (for long-lived streams whose clients reconnect elsewhere).
	Drain time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Task runs alongside the servers until ctx is done; an error ends Serve.
type Task func(ctx context.Context) error

// adminShutdown bounds how long the admin server may take to close.
const adminShutdown = 5 * time.Second

// Run listens on cfg's addresses and calls Serve.
func Run(ctx context.Context, cfg Config, api API, tasks ...Task) error {
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("%s: listen %s: %w", cfg.Name, cfg.Addr, err)
	}
	admin, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		lis.Close()
		return fmt.Errorf("%s: listen admin %s: %w", cfg.Name, cfg.AdminAddr, err)
	}
	return Serve(ctx, cfg, api, lis, admin, tasks...)
}

// Serve serves api on lis and the admin endpoints on admin, running tasks
// beside them, until ctx is done or any of them fails. It then stops the
// API (draining up to cfg.Drain) and the admin server, and returns the
// first failure, nil after a clean cancellation.
func Serve(ctx context.Context, cfg Config, api API, lis, admin net.Listener, tasks ...Task) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hs := NewHTTP(Limits{Handshake: 5 * time.Second}, AdminHandler(cfg, lis.Addr()), nil)
	errc := make(chan error, 2+len(tasks))
	stopping := make(chan struct{})
	go func() { errc <- serveErr("admin", hs.Serve(admin), stopping) }()
	go func() { errc <- serveErr("api", api.Serve(lis), stopping) }()
	for _, t := range tasks {
		go func() {
			if err := t(ctx); err != nil && ctx.Err() == nil {
				errc <- err
			}
		}()
	}
	log.Info(cfg.Name+" serving", "addr", lis.Addr().String(), "admin", admin.Addr().String())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		log.Error(cfg.Name+" stopping", "err", err)
	}
	close(stopping)
	cancel()
	drain, done := context.WithTimeout(context.Background(), cfg.Drain)
	api.Stop(drain)
	done()
	shut, done := context.WithTimeout(context.Background(), adminShutdown)
	defer done()
	if hs.Shutdown(shut) != nil {
		hs.Close()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Name, err)
	}
	return nil
}

// ErrStopped is what an API's Serve may return once Stop was called.
var ErrStopped = errors.New("server stopped")

// serveErr names a server's failure; after shutdown began, its return is
// expected and is not a failure.
func serveErr(what string, err error, stopping <-chan struct{}) error {
	select {
	case <-stopping:
		return nil
	default:
	}
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, ErrStopped) {
		return fmt.Errorf("%s server ended unexpectedly", what)
	}
	return fmt.Errorf("serve %s: %w", what, err)
}
