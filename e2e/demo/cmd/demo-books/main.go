// Command demo-books is the demo's HTTP/JSON books service (image weft/demo-books).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/weftmesh/weft/e2e/demo/books"
	"github.com/weftmesh/weft/e2e/demo/env"
	"github.com/weftmesh/weft/e2e/demo/serve"
)

func main() {
	if err := run(); err != nil {
		slog.Error("demo-books", "err", err)
		os.Exit(1)
	}
}

func run() error {
	rate, err := env.Float("FAILURE_RATE", 0.5)
	if err != nil {
		return err
	}
	delay, err := env.Duration("SLOW_DELAY", 200*time.Millisecond)
	if err != nil {
		return err
	}
	addr := flag.String("addr", env.String("ADDR", ":7000"), "listen address (env ADDR)")
	flag.Float64Var(&rate, "failure-rate", rate, "fraction 0..1 of GET /fail answered 500 (env FAILURE_RATE)")
	flag.DurationVar(&delay, "slow-delay", delay, "how long GET /slow waits (env SLOW_DELAY)")
	flag.Parse()

	h, err := books.NewHandler(books.Config{FailureRate: rate, SlowDelay: delay})
	if err != nil {
		return fmt.Errorf("books config: %w", err)
	}
	var health serve.Health
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", &health)
	mux.Handle("/", h)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); health.Drain() }()
	return serve.HTTP(ctx, *addr, mux, 0)
}
