package app

import (
	"context"
	"net/netip"
	"sync"

	"github.com/weftmesh/weft/proxy/discovery"
	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// router is what the HTTP/1, HTTP/2 and TCP layers ask for an endpoint
// (the h2.Router and http1.Router seams).
type router interface {
	Route(ctx context.Context, authority string, orig netip.AddrPort) (target.Endpoint, error)
}

// outboundRouter asks discovery: authority first, then the original
// destination, else pass-through.
type outboundRouter struct {
	res discovery.Resolver
	// meshed: identity is on, so endpoints with an identity are reached
	// over mTLS and labelled tls="true", server_id=<identity> (the mTLS
	// dialer fails any connection whose peer is not exactly that identity).
	meshed bool
}

func (r *outboundRouter) Route(ctx context.Context, authority string, orig netip.AddrPort) (target.Endpoint, error) {
	var ep target.Endpoint
	var err error
	if cr, ok := r.res.(contextResolver); ok {
		ep, err = cr.ResolveContext(ctx, authority, orig)
	} else {
		ep, err = r.res.Resolve(authority, orig)
	}
	return r.label(ep), err
}

// label marks a meshed endpoint's traffic as mTLS to its identity.
func (r *outboundRouter) label(ep target.Endpoint) target.Endpoint {
	if r.meshed && ep.Identity != "" {
		ep.Peer.TLS, ep.Peer.ServerID = true, ep.Identity
	}
	return ep
}

// profileRouter is the outbound target.Profiles over the destination: one
// lookup for a request's profile and first endpoint.
type profileRouter struct {
	dest *destResolver
	out  *outboundRouter
}

func (r profileRouter) RouteProfile(ctx context.Context, authority string, orig netip.AddrPort) (*profile.Profile, target.Endpoint, error) {
	prof, ep, err := r.dest.RouteProfile(ctx, authority, orig)
	return prof, r.out.label(ep), err
}

// peerKey carries the verified peer of an inbound mTLS connection to the
// inbound router (HTTP/1 and HTTP/2 pass the connection's context on).
type peerKey struct{}

// tlsPeer is what an mTLS handshake proved about a connection.
type tlsPeer struct{ clientID, serverID string }

func withTLSPeer(ctx context.Context, p *tlsPeer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// inboundRouter sends traffic to the local application on the original
// destination port: by default to the original destination address (the
// pod IP, as Istio does since 1.10, so an app bound to localhost only is not
// exposed to the network), or to 127.0.0.1 like Linkerd when loopback is set.
type inboundRouter struct {
	loopback bool
	addrs    addrCache
}

var loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})

func (r *inboundRouter) Route(ctx context.Context, authority string, orig netip.AddrPort) (target.Endpoint, error) {
	addr := orig
	if r.loopback {
		addr = netip.AddrPortFrom(loopback4, orig.Port())
	}
	s := r.addrs.get(addr)
	if authority == "" {
		authority = s
	} else {
		authority = r.addrs.intern(authority)
	}
	ep := target.Endpoint{Addr: addr, Peer: record.Peer{Authority: authority, TargetAddr: s}}
	if p, ok := ctx.Value(peerKey{}).(*tlsPeer); ok {
		ep.Peer.TLS, ep.Peer.ClientID, ep.Peer.ServerID = true, p.clientID, p.serverID
	}
	return ep, nil
}

// addrCache remembers the string forms of addresses and authorities so the
// per-request path does not allocate; it stops growing at maxCached.
type addrCache struct {
	mu    sync.RWMutex
	addrs map[netip.AddrPort]string
	auths map[string]string
}

const maxCached = 4096

func (c *addrCache) get(ap netip.AddrPort) string {
	c.mu.RLock()
	s, ok := c.addrs[ap]
	c.mu.RUnlock()
	if ok {
		return s
	}
	s = ap.String()
	c.mu.Lock()
	if c.addrs == nil {
		c.addrs = map[netip.AddrPort]string{}
	}
	if len(c.addrs) < maxCached {
		c.addrs[ap] = s
	}
	c.mu.Unlock()
	return s
}

// intern returns an owned copy of s (which may alias a request buffer).
func (c *addrCache) intern(s string) string {
	c.mu.RLock()
	v, ok := c.auths[s]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = string(append([]byte(nil), s...))
	c.mu.Lock()
	if c.auths == nil {
		c.auths = map[string]string{}
	}
	if len(c.auths) < maxCached {
		c.auths[v] = v
	}
	c.mu.Unlock()
	return v
}
