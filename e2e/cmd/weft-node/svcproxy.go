package main

import (
	"context"
	"log/slog"
	"net/netip"

	"k8s.io/client-go/kubernetes"
)

// serviceProxy is the Service proxy wired into the node agent.
type serviceProxy struct {
	run     func(ctx context.Context) error
	cleanup func()
}

// newServiceProxy is a placeholder until e2e/node/svcproxy lands: it runs nothing.
func newServiceProxy(_ kubernetes.Interface, _ Config, _ netip.AddrPort, log *slog.Logger) (*serviceProxy, error) {
	log.Warn("service proxy not wired: e2e/node/svcproxy is missing")
	return &serviceProxy{
		run:     func(ctx context.Context) error { <-ctx.Done(); return nil },
		cleanup: func() {},
	}, nil
}
