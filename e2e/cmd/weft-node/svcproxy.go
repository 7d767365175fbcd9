package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/e2e/node/svcproxy"
)

// serviceProxy is the Service proxy wired into the node agent.
type serviceProxy struct {
	run     func(ctx context.Context) error
	cleanup func()
}

// newServiceProxy builds the iptables Service proxy and removes rules a crashed run left behind.
func newServiceProxy(client kubernetes.Interface, cfg Config, dnsTarget netip.AddrPort, log *slog.Logger) (*serviceProxy, error) {
	p, err := svcproxy.New(svcproxy.Config{
		Client:      client,
		ServiceCIDR: cfg.ServiceCIDR,
		PodCIDR:     cfg.PodCIDR,
		ClusterDNS:  cfg.ClusterDNS,
		DNSTarget:   dnsTarget,
	})
	if err != nil {
		return nil, fmt.Errorf("service proxy: %w", err)
	}
	if err := p.Cleanup(); err != nil {
		log.Warn("service proxy: remove leftovers", "err", err)
	}
	return &serviceProxy{
		run: p.Run,
		cleanup: func() {
			if err := p.Cleanup(); err != nil {
				log.Error("service proxy cleanup", "err", err)
			}
		},
	}, nil
}
