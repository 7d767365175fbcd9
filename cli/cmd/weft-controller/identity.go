package main

import (
	"errors"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/identity"
	"github.com/weftmesh/weft/internal/kubeclient"
)

func identityCmd() *cobra.Command {
	var (
		cfg                      identity.Config
		kube                     kubeclient.Options
		secret, configMap        string
		certFile, keyFile, roots string
	)
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Issue X.509-SVIDs to proxies that prove their ServiceAccount",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
			cfg.Service.Logger = log
			client, err := kubeclient.Clientset(kube)
			if err != nil {
				return err
			}
			cfg.Service.Reviewer = &identity.KubeTokenReviewer{Client: client}
			switch {
			case certFile != "" || keyFile != "" || roots != "":
				if certFile == "" || keyFile == "" || roots == "" {
					return errors.New("--issuer-certificate-file, --issuer-key-file and --trust-anchors-file go together")
				}
				cfg.Source = &identity.FileSource{IssuerCert: certFile, IssuerKey: keyFile, TrustAnchors: roots, Logger: log}
			default:
				cfg.Source = &identity.KubeSource{Client: client, Namespace: cfg.Namespace, Secret: secret, ConfigMap: configMap, Logger: log}
			}
			srv, err := identity.New(cfg)
			if err != nil {
				return err
			}
			return srv.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&kube.Kubeconfig, "kubeconfig", "", "kubeconfig path (default: in-cluster)")
	f.StringVar(&cfg.ListenAddr, "addr", ":8080", "gRPC listen address")
	f.StringVar(&cfg.AdminAddr, "admin-addr", ":9990", "admin listen address (/metrics, /ready, /live, /selftest)")
	f.StringVar(&cfg.Namespace, "namespace", "weft", "namespace of the control plane")
	f.StringVar(&cfg.ServiceAccount, "service-account", "weft-identity", "ServiceAccount the identity service runs as (its own SVID)")
	f.StringVar(&cfg.Service.TrustDomain, "trust-domain", identity.DefaultTrustDomain, "SPIFFE trust domain")
	f.DurationVar(&cfg.Service.Lifetime, "issuance-lifetime", identity.DefaultLifetime, "lifetime of issued certificates")
	f.DurationVar(&cfg.Service.ClockSkew, "clock-skew-allowance", identity.DefaultClockSkew, "how far NotBefore is backdated")
	f.IntVar(&cfg.Service.MaxConcurrent, "max-concurrent", identity.DefaultMaxConcurrent, "Certify requests served at once")
	f.StringVar(&secret, "issuer-secret", "weft-identity-issuer", "Secret holding the issuer (tls.crt, tls.key)")
	f.StringVar(&configMap, "trust-anchors-configmap", "weft-identity-trust-roots", "ConfigMap holding the trust anchors (ca-bundle.crt)")
	f.StringVar(&certFile, "issuer-certificate-file", "", "read the issuer certificate from a file instead of the Secret")
	f.StringVar(&keyFile, "issuer-key-file", "", "read the issuer key from a file instead of the Secret")
	f.StringVar(&roots, "trust-anchors-file", "", "read the trust anchors from a file instead of the ConfigMap")
	return cmd
}
