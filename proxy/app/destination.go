package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftmesh/weft/proxy/config"
	"github.com/weftmesh/weft/proxy/destclient"
	"github.com/weftmesh/weft/proxy/discovery"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/target"
)

// newDestination connects (lazily) to the destination service. With
// identity on, the gRPC connection is weft mTLS straight to the service's
// port (the destination pod's proxy terminates it, as for any meshed
// endpoint) and the peer must be cfg.DestinationName; without identity it is
// plaintext. fallback resolves what the destination does not know.
func (a *App) newDestination(fallback discovery.Resolver) (*destResolver, error) {
	cfg := &a.cfg
	dr := &destResolver{fallback: fallback}
	if fallback == nil {
		dr.fallback = &discovery.PassThrough{}
	}
	// The connection goes through our dialer (gRPC's "passthrough" target:
	// we resolve the name ourselves), which records whether the destination
	// is reachable at all.
	var dial func(ctx context.Context, addr string) (net.Conn, error)
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if a.mesh == nil {
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			ap, err := resolveAddr(ctx, addr)
			if err != nil {
				return nil, err
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ap.String())
		}
	} else {
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
		// The TLS is ours (below gRPC), so gRPC itself sees plaintext.
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			ap, err := resolveAddr(ctx, addr)
			if err != nil {
				return nil, err
			}
			return d.Dial(ctx, target.Endpoint{Addr: ap, Identity: name, Protocol: target.HTTP2})
		}
	}
	opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := dial(ctx, addr)
		if err != nil {
			if !dr.down.Swap(true) {
				a.log.Warn("destination service unreachable: requests use the last known endpoints, else the fallback, without waiting",
					"addr", addr, "err", err)
			}
			return nil, err
		}
		if dr.down.Swap(false) {
			a.log.Info("destination service reachable again", "addr", addr)
		}
		return c, nil
	}))
	dc, err := destclient.New(destclient.Config{
		Addr: "passthrough:///" + cfg.DestinationAddr, ContextToken: cfg.DestinationContext,
		Suffixes: cfg.DestinationSuffixes, FailFastTimeout: cfg.DestinationFailFast,
		DialOptions: opts, Fallback: fallback, Logger: a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvDestinationAddr, err)
	}
	dr.dc = dc
	return dr, nil
}

// destResolver adapts the destination client for the proxy: while the
// destination service cannot even be dialed (down since the last attempt),
// requests do not wait the fail-fast timeout for targets it never answered
// for: they get the last known endpoints, or the fallback at once. (The
// destination client alone makes every request to a pending target wait
// the full fail-fast timeout, twice for HTTP with the profile lookup, which
// slows every request of a pod whose control plane is missing.)
type destResolver struct {
	dc       *destclient.Client
	fallback discovery.Resolver
	down     atomic.Bool
}

// done is an already-cancelled context: the destination client's waits end
// at once.
var done = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Resolve implements discovery.Resolver.
func (r *destResolver) Resolve(authority string, orig netip.AddrPort) (target.Endpoint, error) {
	return r.ResolveContext(context.Background(), authority, orig)
}

// ResolveContext picks the endpoint (see destclient.Client.ResolveContext).
func (r *destResolver) ResolveContext(ctx context.Context, authority string, orig netip.AddrPort) (target.Endpoint, error) {
	if !r.down.Load() {
		return r.dc.ResolveContext(ctx, authority, orig)
	}
	ep, err := r.dc.ResolveContext(done, authority, orig)
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return r.fallback.Resolve(authority, orig)
	}
	return ep, err
}

// Profile returns the target's profile (nil without one); it does not wait
// while the destination is down.
func (r *destResolver) Profile(ctx context.Context, authority string, orig netip.AddrPort) *profile.Profile {
	if r.down.Load() {
		ctx = done
	}
	return r.dc.Profile(ctx, authority, orig)
}

// RouteProfile implements target.Profiles (one lookup); it does not wait
// while the destination is down.
func (r *destResolver) RouteProfile(ctx context.Context, authority string, orig netip.AddrPort) (*profile.Profile, target.Endpoint, error) {
	if !r.down.Load() {
		return r.dc.RouteProfile(ctx, authority, orig)
	}
	prof, ep, err := r.dc.RouteProfile(done, authority, orig)
	if err != nil && errors.Is(err, context.Canceled) && ctx.Err() == nil {
		ep, err = r.fallback.Resolve(authority, orig)
	}
	return prof, ep, err
}

// Close ends the subscriptions.
func (r *destResolver) Close() error { return r.dc.Close() }

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
