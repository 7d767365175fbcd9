// Command demo-traffic is the demo's open-loop traffic generator (image weft/demo-traffic). It
// only ever targets the configured cluster-local Service names and serves its figures on /stats.
package main

import (
	"context"
	"errors"
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
	"github.com/weftmesh/weft/e2e/demo/traffic"
)

func main() {
	if err := run(); err != nil {
		slog.Error("demo-traffic", "err", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		rates    = traffic.DefaultRates()
		duration time.Duration
		timeout  = 5 * time.Second
		errs     []error
	)
	rate := func(name, envName string, p *float64, usage string) {
		v, err := env.Float(envName, *p)
		errs = append(errs, err)
		flag.Float64Var(p, name, v, usage+" per second, 0 disables (env "+envName+")")
	}
	rate("rate-web-index", "RATE_WEB_INDEX", &rates.WebIndex, "web GET /")
	rate("rate-web-stream", "RATE_WEB_STREAM", &rates.WebStream, "web GET /stream")
	rate("rate-books-list", "RATE_BOOKS_LIST", &rates.BooksList, "books GET /books")
	rate("rate-books-fail", "RATE_BOOKS_FAIL", &rates.BooksFail, "books GET /fail")
	rate("rate-books-slow", "RATE_BOOKS_SLOW", &rates.BooksSlow, "books GET /slow")
	rate("rate-authors-get", "RATE_AUTHORS_GET", &rates.AuthorsGet, "authors GetAuthor")
	rate("rate-authors-list", "RATE_AUTHORS_LIST", &rates.AuthorsList, "authors ListAuthors")
	d, err := env.Duration("DURATION", 0)
	errs = append(errs, err)
	to, err := env.Duration("TIMEOUT", timeout)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	flag.DurationVar(&duration, "duration", d, "how long to send, 0 means until SIGTERM (env DURATION)")
	flag.DurationVar(&timeout, "timeout", to, "bound on each request (env TIMEOUT)")
	webURL := flag.String("web-url", env.String("WEB_URL", "http://web:8080"), "web base URL (env WEB_URL)")
	booksURL := flag.String("books-url", env.String("BOOKS_URL", "http://books:7000"), "books base URL (env BOOKS_URL)")
	authorsAddr := flag.String("authors-addr", env.String("AUTHORS_ADDR", "authors:7001"), "authors gRPC host:port (env AUTHORS_ADDR)")
	clusterDomain := flag.String("cluster-domain", env.String("CLUSTER_DOMAIN", "cluster.local"), "cluster DNS domain (env CLUSTER_DOMAIN)")
	statsAddr := flag.String("stats-addr", env.String("STATS_ADDR", ":9000"), "listen address of /stats and /healthz (env STATS_ADDR)")
	flag.Parse()

	for _, t := range []string{*webURL, *booksURL, *authorsAddr} {
		if err := traffic.CheckTarget(t, *clusterDomain); err != nil {
			return err
		}
	}
	cc, err := grpc.NewClient("dns:///"+*authorsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("authors client %s: %w", *authorsAddr, err)
	}
	defer cc.Close()
	g, err := traffic.New(traffic.Config{
		Targets: traffic.DemoTargets(traffic.Endpoints{
			WebURL: *webURL, BooksURL: *booksURL, Authors: authorspb.NewAuthorsClient(cc),
			HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}},
		}, rates),
		Duration: duration,
		Timeout:  timeout,
	})
	if err != nil {
		return fmt.Errorf("traffic config: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	var health serve.Health
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", &health)
	mux.Handle("/stats", g.StatsHandler())
	srvCtx, stopSrv := context.WithCancel(ctx)
	defer stopSrv()
	srvErr := make(chan error, 1)
	go func() { srvErr <- serve.HTTP(srvCtx, *statsAddr, mux, 0) }()

	runErr := g.Run(ctx)
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	traffic.WriteTable(os.Stdout, g.Snapshot())
	if duration > 0 && ctx.Err() == nil {
		// A bounded run: keep /stats up until SIGTERM so its figures can still be read.
		slog.Info("traffic run finished; serving /stats until SIGTERM", "duration", duration)
		<-ctx.Done()
	}
	health.Drain()
	stopSrv()
	return errors.Join(runErr, <-srvErr)
}
