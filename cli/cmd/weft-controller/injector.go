package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/kubeclient"
)

func injectorCmd() *cobra.Command {
	var (
		cfg  injector.Config
		kube kubeclient.Options
	)
	cmd := &cobra.Command{
		Use:   "injector",
		Short: "Serve the proxy-injector admission webhook",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
			client, err := kubeclient.Clientset(kube)
			if err != nil {
				return err
			}
			cfg.Client = client
			srv, err := injector.New(cfg)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&kube.Kubeconfig, "kubeconfig", "", "kubeconfig path (default: in-cluster)")
	f.StringVar(&cfg.ListenAddr, "addr", ":8443", "webhook listen address (HTTPS, path /inject)")
	f.StringVar(&cfg.AdminAddr, "admin-addr", ":9995", "admin listen address (/metrics, /ready, /live, /selftest)")
	f.StringVar(&cfg.Namespace, "namespace", "weft", "namespace of the control plane")
	f.StringVar(&cfg.ConfigMap, "config-map", "weft-config", "ConfigMap holding the install values (key \"values\")")
	f.StringVar(&cfg.CertFile, "tls-cert-file", "", "webhook serving certificate (PEM)")
	f.StringVar(&cfg.KeyFile, "tls-key-file", "", "webhook serving key (PEM)")
	return cmd
}
