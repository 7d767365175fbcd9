// Command weft-proxy is weft's sidecar proxy. `weft-proxy` runs the proxy,
// configured by WEFT_PROXY_* environment variables (docs/proxy.md);
// `weft-proxy init ...` installs the iptables interception rules;
// `weft-proxy await` waits until the proxy in the same pod is ready.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/weftmesh/weft/proxy/app"
	"github.com/weftmesh/weft/proxy/config"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		os.Exit(runInit(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "await" {
		os.Exit(runAwait(os.Args[2:], os.Stderr))
	}
	if len(os.Args) > 1 {
		fmt.Fprintf(os.Stderr, "usage: weft-proxy (configured by WEFT_PROXY_* variables) | weft-proxy init [flags] | weft-proxy await [--timeout D]\nunknown argument %q\n", os.Args[1])
		os.Exit(2)
	}
	os.Exit(run())
}

func run() int {
	cfg, err := config.FromEnv(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "weft-proxy:", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "weft-proxy:", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	a, err := app.New(cfg, app.Options{Logger: log})
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}
