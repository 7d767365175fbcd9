// Command weft-node is the node agent of weft's local cluster: it stands in for kubelet (one
// Node, pods run as processes by e2e/node/runtime), kube-proxy (e2e/node/svcproxy) and cluster
// DNS (e2e/node/dns). It runs until SIGTERM/SIGINT, then stops every pod and removes everything
// it created.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/weftmesh/weft/e2e/node/runtime"
)

// Config is the parsed command line.
type Config struct {
	Kubeconfig          string        // path of the kubeconfig; required
	NodeName            string        // Node to register
	StateDir            string        // runtime state (pods, logs); required
	BinDir              string        // image binaries; required
	Bridge              string        // pod bridge name
	PodCIDR             netip.Prefix  // pod range; its first host address is the bridge gateway and the node IP
	ServiceCIDR         netip.Prefix  // Service range; its first host address is the kubernetes Service
	ClusterDNS          netip.Addr    // cluster DNS Service IP
	ClusterDomain       string        // cluster domain
	RestartBackoffBase  time.Duration // first container restart back-off
	RestartBackoffMax   time.Duration // back-off cap
	ShutdownGracePeriod time.Duration // bound of each pod's grace period on shutdown
	LogLevel            slog.Level    // log level
	KubeletCert         string        // kubelet API serving certificate; "" serves no kubelet API
	KubeletKey          string        // its key
	ClientCA            string        // CA verifying the kubelet API's client certificates
}

func parseFlags(args []string) (Config, error) {
	fs := flag.NewFlagSet("weft-node", flag.ContinueOnError)
	var cfg Config
	var podCIDR, svcCIDR, dnsIP, level string
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (required)")
	fs.StringVar(&cfg.NodeName, "node-name", "weft-node", "name of the Node to register")
	fs.StringVar(&cfg.StateDir, "state-dir", "", "directory for pod state and container logs (required)")
	fs.StringVar(&cfg.BinDir, "bin-dir", "", "directory of the binaries images map to (required)")
	fs.StringVar(&cfg.Bridge, "bridge", "weft0", "pod bridge name")
	fs.StringVar(&podCIDR, "pod-cidr", "198.18.0.0/20", "pod IP range; the first host address is the bridge gateway and node IP")
	fs.StringVar(&svcCIDR, "service-cidr", "198.19.0.0/16", "Service ClusterIP range")
	fs.StringVar(&dnsIP, "cluster-dns", "198.19.0.10", "cluster DNS Service IP")
	fs.StringVar(&cfg.ClusterDomain, "cluster-domain", "cluster.local", "cluster domain")
	fs.DurationVar(&cfg.RestartBackoffBase, "restart-backoff-base", 10*time.Second, "first container restart back-off (doubles per crash)")
	fs.DurationVar(&cfg.RestartBackoffMax, "restart-backoff-max", 5*time.Minute, "container restart back-off cap")
	fs.DurationVar(&cfg.ShutdownGracePeriod, "shutdown-grace-period", 20*time.Second, "upper bound of each pod's termination grace period when the agent stops")
	fs.StringVar(&cfg.KubeletCert, "kubelet-cert", "", "kubelet API serving certificate (port 10250 on the node IP); empty serves no kubelet API")
	fs.StringVar(&cfg.KubeletKey, "kubelet-key", "", "key of --kubelet-cert")
	fs.StringVar(&cfg.ClientCA, "client-ca", "", "CA bundle verifying kubelet API client certificates (required with --kubelet-cert)")
	fs.StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for name, v := range map[string]string{"--kubeconfig": cfg.Kubeconfig, "--state-dir": cfg.StateDir, "--bin-dir": cfg.BinDir} {
		if v == "" {
			return Config{}, fmt.Errorf("%s is required", name)
		}
	}
	if cfg.KubeletCert != "" && (cfg.KubeletKey == "" || cfg.ClientCA == "") {
		return Config{}, errors.New("--kubelet-cert needs --kubelet-key and --client-ca")
	}
	var err error
	if cfg.PodCIDR, err = netip.ParsePrefix(podCIDR); err != nil || !cfg.PodCIDR.Addr().Is4() {
		return Config{}, fmt.Errorf("--pod-cidr %q: want an IPv4 prefix", podCIDR)
	}
	if cfg.ServiceCIDR, err = netip.ParsePrefix(svcCIDR); err != nil {
		return Config{}, fmt.Errorf("--service-cidr %q: %w", svcCIDR, err)
	}
	if cfg.ClusterDNS, err = netip.ParseAddr(dnsIP); err != nil {
		return Config{}, fmt.Errorf("--cluster-dns %q: %w", dnsIP, err)
	}
	if !cfg.ServiceCIDR.Contains(cfg.ClusterDNS) {
		return Config{}, fmt.Errorf("--cluster-dns %s is outside --service-cidr %s", cfg.ClusterDNS, cfg.ServiceCIDR)
	}
	if cfg.RestartBackoffBase <= 0 || cfg.RestartBackoffMax < cfg.RestartBackoffBase {
		return Config{}, errors.New("--restart-backoff-base must be positive and at most --restart-backoff-max")
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return Config{}, fmt.Errorf("--log-level: %w", err)
	}
	cfg.PodCIDR = cfg.PodCIDR.Masked()
	cfg.ServiceCIDR = cfg.ServiceCIDR.Masked()
	return cfg, nil
}

func main() {
	runtime.MaybeReexec()
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "weft-node:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("weft-node failed", "err", err)
		os.Exit(1)
	}
	log.Info("weft-node stopped")
}
