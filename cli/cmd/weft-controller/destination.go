package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/destination"
	"github.com/weftmesh/weft/internal/kubeclient"
)

func destinationCmd() *cobra.Command {
	var (
		cfg  destination.Config
		kube kubeclient.Options
	)
	cmd := &cobra.Command{
		Use:   "destination",
		Short: "Stream endpoints and route profiles to proxies",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
			rc, err := kubeclient.Config(kube)
			if err != nil {
				return err
			}
			if cfg.Client, err = kubernetes.NewForConfig(rc); err != nil {
				return fmt.Errorf("kubernetes client: %w", err)
			}
			if cfg.Dynamic, err = dynamic.NewForConfig(rc); err != nil {
				return fmt.Errorf("dynamic client: %w", err)
			}
			if cfg.Discovery, err = discovery.NewDiscoveryClientForConfig(rc); err != nil {
				return fmt.Errorf("discovery client: %w", err)
			}
			srv, err := destination.New(cfg)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&kube.Kubeconfig, "kubeconfig", "", "kubeconfig path (default: in-cluster)")
	f.StringVar(&cfg.ListenAddr, "addr", ":8086", "gRPC listen address")
	f.StringVar(&cfg.AdminAddr, "admin-addr", ":9996", "admin listen address (/metrics, /ready, /live, /selftest)")
	f.StringVar(&cfg.ClusterDomain, "cluster-domain", "cluster.local", "Kubernetes cluster domain")
	f.StringVar(&cfg.TrustDomain, "trust-domain", "cluster.local", "SPIFFE trust domain of meshed pods")
	f.StringVar(&cfg.SelfTestAuthority, "self-test-authority", "", "Service host:port the admin /selftest resolves (default kubernetes.default.svc.<cluster-domain>:443)")
	return cmd
}
