package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/internal/kubeclient"
	"github.com/weftmesh/weft/viz/metricsapi"
	"github.com/weftmesh/weft/viz/promsource"
)

func vizCmd() *cobra.Command {
	var (
		cfg  metricsapi.Config
		kube kubeclient.Options
	)
	cmd := &cobra.Command{
		Use:   "viz",
		Short: "Scrape meshed proxies into the metrics window and serve the viz query API",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
			client, err := kubeclient.Clientset(kube)
			if err != nil {
				return err
			}
			cfg.Client = client
			srv, err := metricsapi.New(cfg)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
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
	return cmd
}
