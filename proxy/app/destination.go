package app

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftmesh/weft/proxy/config"
	"github.com/weftmesh/weft/proxy/destclient"
	"github.com/weftmesh/weft/proxy/discovery"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/target"
)

// newDestination connects (lazily) to the destination service. With
// identity on, the gRPC connection is weft mTLS straight to the service's
// port (the destination pod's proxy terminates it, as for any meshed
// endpoint) and the peer must be cfg.DestinationName; without identity it is
// plaintext. fallback resolves what the destination does not know.
func (a *App) newDestination(fallback discovery.Resolver) (*destclient.Client, error) {
	cfg := &a.cfg
	var opts []grpc.DialOption
	if a.mesh != nil {
		_, portStr, _ := net.SplitHostPort(cfg.DestinationAddr)
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%s: port %q: %w", config.EnvDestinationAddr, portStr, err)
		}
		peerPort := uint16(port)
		if a.opts.PeerInboundPort != 0 {
			peerPort = a.opts.PeerInboundPort
		}
		d := &mtls.Dialer{SVIDs: a.mesh, Bundle: a.mesh, ConnectTimeout: cfg.ConnectTimeout, InboundPort: peerPort}
		a.destDialer = d
		name := cfg.DestinationName
		opts = append(opts,
			// The TLS is ours (below gRPC), so gRPC itself sees plaintext.
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				ap, err := resolveAddr(ctx, addr)
				if err != nil {
					return nil, err
				}
				return d.Dial(ctx, target.Endpoint{Addr: ap, Identity: name, Protocol: target.HTTP2})
			}))
	}
	dc, err := destclient.New(destclient.Config{
		Addr: cfg.DestinationAddr, ContextToken: cfg.DestinationContext,
		Suffixes: cfg.DestinationSuffixes, FailFastTimeout: cfg.DestinationFailFast,
		DialOptions: opts, Fallback: fallback, Logger: a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvDestinationAddr, err)
	}
	return dc, nil
}

// resolveAddr turns host:port into one ip:port (the first address).
func resolveAddr(ctx context.Context, addr string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", port, err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("%s: no addresses", host)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(p)), nil
}

// contextResolver is a Resolver that honours the request's context
// (destclient: the fail-fast wait ends with the request).
type contextResolver interface {
	ResolveContext(ctx context.Context, authority string, orig netip.AddrPort) (target.Endpoint, error)
}

// h2Router balances HTTP/2 requests per request from the core's side of
// the h2 seams (the h2 package does not report to the load handle): the
// request is counted pending on its endpoint from the pick until its stream
// ends (the request context is cancelled when the handler returns), so the
// RTT sample is the stream's duration, not the time to the first byte, and
// failures are not reported. See docs/proxy.md.
type h2Router struct{ router }

func (r h2Router) Route(ctx context.Context, authority string, orig netip.AddrPort) (target.Endpoint, error) {
	ep, err := r.router.Route(ctx, authority, orig)
	if err == nil && ep.Load != nil {
		l := ep.Load
		tok := l.Begin()
		context.AfterFunc(ctx, func() { l.End(tok, false) })
	}
	return ep, err
}
