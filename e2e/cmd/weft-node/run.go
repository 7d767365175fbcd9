package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftmesh/weft/e2e/node/dns"
	"github.com/weftmesh/weft/e2e/node/kubelet"
	"github.com/weftmesh/weft/e2e/node/kubelet/runtimeadapter"
	"github.com/weftmesh/weft/e2e/node/kubeletapi"
	"github.com/weftmesh/weft/e2e/node/runtime"
)

// run wires the runtime, DNS, service proxy and kubelet and runs them until ctx ends, then tears
// everything down in order: pods, runtime (bridge and state), service proxy rules.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	rest, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	rest.QPS, rest.Burst = 50, 100
	rest.UserAgent = "weft-node"
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	nodeIP := cfg.PodCIDR.Addr().Next()
	kubeSvc := netip.AddrPortFrom(cfg.ServiceCIDR.Addr().Next(), 443)
	dnsTarget := netip.AddrPortFrom(nodeIP, 53)

	rt, err := runtime.New(runtime.Config{
		StateDir:      cfg.StateDir,
		BinDir:        cfg.BinDir,
		Bridge:        cfg.Bridge,
		PodCIDR:       cfg.PodCIDR,
		ClusterDNS:    cfg.ClusterDNS,
		ClusterDomain: cfg.ClusterDomain,
		Client:        client,
		Logger:        log.With("component", "runtime"),
	})
	if err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	if err := rt.Init(ctx); err != nil {
		return fmt.Errorf("runtime init: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := rt.Shutdown(sctx); err != nil {
			log.Error("runtime shutdown", "err", err)
		}
	}()

	proxy, err := newServiceProxy(client, cfg, dnsTarget, log)
	if err != nil {
		return err
	}
	defer proxy.cleanup()

	dnsSrv, err := dns.New(dns.Config{
		Client:        client,
		ListenAddr:    net.JoinHostPort(nodeIP.String(), strconv.Itoa(int(dnsTarget.Port()))),
		ClusterDomain: cfg.ClusterDomain,
		Logger:        log.With("component", "dns"),
	})
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}

	kl, err := kubelet.New(kubelet.Config{
		Client:              client,
		Runtime:             runtimeadapter.New(rt),
		NodeName:            cfg.NodeName,
		NodeIP:              nodeIP,
		KubeletPort:         kubeletPort(cfg),
		PodCIDR:             cfg.PodCIDR,
		KubernetesService:   kubeSvc,
		RestartBackoffBase:  cfg.RestartBackoffBase,
		RestartBackoffMax:   cfg.RestartBackoffMax,
		ShutdownGracePeriod: cfg.ShutdownGracePeriod,
		Logger:              log.With("component", "kubelet"),
	})
	if err != nil {
		return fmt.Errorf("kubelet: %w", err)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	background := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	background("dns", dnsSrv.Run)
	background("service proxy", proxy.run)
	if cfg.KubeletCert != "" {
		api, err := kubeletapi.New(kubeletapi.Config{
			Node:         kl,
			Client:       client,
			NodeName:     cfg.NodeName,
			Addr:         net.JoinHostPort(nodeIP.String(), strconv.Itoa(kubeletapi.Port)),
			CertFile:     cfg.KubeletCert,
			KeyFile:      cfg.KubeletKey,
			ClientCAFile: cfg.ClientCA,
			Logger:       log.With("component", "kubelet-api"),
		})
		if err != nil {
			cancel(err)
		} else {
			background("kubelet API", api.Run)
		}
	}
	kerr := kl.Run(ctx)
	cancel(nil)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return kerr
}

// kubeletPort is the advertised kubelet API port: 10250 when the API is served.
func kubeletPort(cfg Config) int32 {
	if cfg.KubeletCert == "" {
		return 0
	}
	return kubeletapi.Port
}
