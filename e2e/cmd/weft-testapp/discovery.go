package main

import (
	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/e2e/testapp"
)

func backendCmd() *cobra.Command {
	var cfg testapp.BackendConfig
	c := &cobra.Command{Use: "backend", Short: "HTTP backend naming itself in weft-backend: ?sleep=, ?fail=, /counts, /healthz; gRPC health service", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return testapp.ServeBackend(c.Context(), cfg, c.OutOrStdout())
		}}
	c.Flags().StringVar(&cfg.Addr, "addr", ":8080", "HTTP listen address")
	c.Flags().StringVar(&cfg.GRPCAddr, "grpc-addr", "", "gRPC listen address (empty: no gRPC)")
	c.Flags().DurationVar(&cfg.Delay, "delay", 0, "added to every gRPC call and HTTP request but /healthz and /counts")
	c.Flags().DurationVar(&cfg.ShutdownDelay, "shutdown-delay", 0, "after SIGTERM, keep serving this long with /healthz failing")
	c.Flags().StringVar(&cfg.Name, "name", "", "name in the weft-backend header (default: the hostname)")
	return c
}

func loadCmd() *cobra.Command {
	var addr string
	c := &cobra.Command{Use: "load", Short: "serve POST /run: a bounded HTTP or gRPC load run, answered with per-backend counts as JSON", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return testapp.ServeLoad(c.Context(), addr) }}
	c.Flags().StringVar(&addr, "addr", ":9100", "listen address")
	return c
}
