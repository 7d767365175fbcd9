package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/kubeclient"
	"github.com/weftmesh/weft/viz/metricsapi"
	"github.com/weftmesh/weft/viz/promsource"
	"github.com/weftmesh/weft/viz/tap"
)

func vizCmd() *cobra.Command {
	var (
		cfg    metricsapi.Config
		tapCfg tap.Config
		ident  = tap.IdentityConfig{Namespace: injector.VizNamespace, ServiceAccount: injector.VizServiceAccount}
		kube   kubeclient.Options
	)
	cmd := &cobra.Command{
		Use:   "viz",
		Short: "Scrape meshed proxies into the metrics window, serve the viz query API and the tap API",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
			cfg.Logger = log
			client, err := kubeclient.Clientset(kube)
			if err != nil {
				return err
			}
			cfg.Client = client
			if tapCfg.ListenAddr == "" {
				srv, err := metricsapi.New(cfg) // live top answers "tap is not enabled"
				if err != nil {
					return err
				}
				return srv.Run(cmd.Context())
			}
			ident.Client, ident.Logger = client, log
			tapCfg.Client, tapCfg.Logger = client, log
			tapCfg.Identity = tap.IdentityFromConfigMap(ident)
			tapSrv, err := tap.New(tapCfg)
			if err != nil {
				return err
			}
			cfg.Tap = mergerTapper(tapSrv)
			srv, err := metricsapi.New(cfg)
			if err != nil {
				return err
			}
			return runBoth(cmd.Context(), srv.Run, tapSrv.Run)
		},
	}
	f := cmd.Flags()
	f.StringVar(&kube.Kubeconfig, "kubeconfig", "", "kubeconfig path (default: in-cluster)")
	f.StringVar(&cfg.ListenAddr, "addr", ":8084", "query API listen address (HTTP)")
	f.StringVar(&cfg.AdminAddr, "admin-addr", ":9994", "admin listen address (/metrics, /ready, /live)")
	f.DurationVar(&cfg.Interval, "scrape-interval", metricsapi.DefaultInterval, "time between scrapes of every proxy, and the window's resolution")
	f.DurationVar(&cfg.Span, "window", metricsapi.DefaultSpan, "how far back the metrics window reaches")
	f.IntVar(&cfg.MaxSeries, "max-series", 0, "cap on the window's series (0: the window's default)")
	f.IntVar(&cfg.Concurrency, "scrape-concurrency", 32, "proxies scraped at once")
	f.StringVar(&cfg.PrometheusURL, "prometheus-url", "", "answer queries from this Prometheus (PromQL) instead of the window; proxies are then not scraped")
	f.StringVar(&cfg.PrometheusSelector, "prometheus-selector", promsource.DefaultSelector, "label matchers selecting the proxies' series in Prometheus")
	f.StringVar(&tapCfg.ListenAddr, "tap-addr", "", "tap API listen address (HTTPS, called by the Kubernetes API server); empty disables tap")
	f.StringVar(&tapCfg.CertFile, "tap-tls-cert-file", "", "tap API serving certificate (PEM)")
	f.StringVar(&tapCfg.KeyFile, "tap-tls-key-file", "", "tap API serving key (PEM)")
	f.StringVar(&ident.ControlPlaneNamespace, "weft-namespace", "weft", "namespace of the weft control plane (its weft-config and identity service)")
	f.StringVar(&ident.TokenFile, "identity-token-file", "", "projected ServiceAccount token (audience identity.weft.io) tap proves its identity with")
	return cmd
}

// mergerTapper gives the dashboard's live top the tap server's Merger:
// the same resolution, mTLS source and pod following as the tap API.
func mergerTapper(ts *tap.Server) metricsapi.TapFunc {
	return func(ctx context.Context, t tap.Target, req *tapv1.ObserveRequest, limit int, emit func(tap.Event) error) error {
		m, err := ts.Merger(ctx, t)
		if err != nil {
			return err
		}
		return m.Run(ctx, req, limit, emit)
	}
}

// runBoth runs a and b until ctx ends or one fails; the first error stops
// the other.
func runBoth(ctx context.Context, a, b func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	for _, run := range []func(context.Context) error{a, b} {
		go func() { errs <- run(ctx) }()
	}
	err := <-errs
	cancel()
	if err2 := <-errs; err == nil {
		err = err2
	}
	return err
}
