// Command demo-authors is the demo's gRPC authors service (image weft/demo-authors), with the
// grpc.health.v1 service on its gRPC port and an HTTP /healthz on a second port.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"

	"github.com/weftmesh/weft/e2e/demo/authors"
	"github.com/weftmesh/weft/e2e/demo/env"
	"github.com/weftmesh/weft/e2e/demo/serve"
)

func main() {
	if err := run(); err != nil {
		slog.Error("demo-authors", "err", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", env.String("ADDR", ":7001"), "gRPC listen address (env ADDR)")
	healthAddr := flag.String("health-addr", env.String("HEALTH_ADDR", ":7002"), "HTTP /healthz listen address, empty to disable (env HEALTH_ADDR)")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	g := grpc.NewServer()
	hs := authors.Register(g, authors.NewServer())
	reflection.Register(g)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var health serve.Health
	go func() { <-ctx.Done(); health.Drain(); hs.Shutdown() }()

	errc := make(chan error, 2)
	go func() { errc <- serve.GRPC(ctx, ln, g, 0) }()
	n := 1
	if *healthAddr != "" {
		n++
		mux := http.NewServeMux()
		mux.Handle("GET /healthz", &health)
		go func() { errc <- serve.HTTP(ctx, *healthAddr, mux, 0) }()
	}
	var errs []error
	for range n {
		if err := <-errc; err != nil {
			errs = append(errs, err)
			stop() // one server failed: stop the other too
		}
	}
	return errors.Join(errs...)
}
