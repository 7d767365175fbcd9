// Command demo-web is the demo's HTTP/1.1 frontend (image weft/demo-web).
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftmesh/weft/e2e/demo/api/authorspb"
	"github.com/weftmesh/weft/e2e/demo/env"
	"github.com/weftmesh/weft/e2e/demo/serve"
	"github.com/weftmesh/weft/e2e/demo/web"
)

func main() {
	if err := run(); err != nil {
		slog.Error("demo-web", "err", err)
		os.Exit(1)
	}
}

func run() error {
	timeout, err := env.Duration("TIMEOUT", 5*time.Second)
	if err != nil {
		return err
	}
	addr := flag.String("addr", env.String("ADDR", ":8080"), "listen address (env ADDR)")
	booksURL := flag.String("books-url", env.String("BOOKS_URL", "http://books:7000"), "books service base URL (env BOOKS_URL)")
	authorsAddr := flag.String("authors-addr", env.String("AUTHORS_ADDR", "authors:7001"), "authors gRPC host:port (env AUTHORS_ADDR)")
	flag.DurationVar(&timeout, "timeout", timeout, "bound on each page's backend calls (env TIMEOUT)")
	flag.Parse()

	cc, err := grpc.NewClient("dns:///"+*authorsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("authors client %s: %w", *authorsAddr, err)
	}
	defer cc.Close()
	h, err := web.NewHandler(web.Config{BooksURL: *booksURL, Authors: authorspb.NewAuthorsClient(cc), Timeout: timeout})
	if err != nil {
		return fmt.Errorf("web config: %w", err)
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
