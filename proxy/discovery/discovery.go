// Package discovery answers "where does this go?": a Resolver maps a
// request's authority (host:port) or a connection's original destination to
// an endpoint. Static reads a STATIC_DISCOVERY YAML file; PassThrough sends
// everything to its original destination. The destination service client of
// a later issue implements the same interface.
package discovery

import (
	"net/netip"

	"github.com/weftmesh/weft/proxy/target"
)

// Resolver picks the endpoint for one request or connection.
type Resolver interface {
	// Resolve returns the endpoint for traffic addressed to authority (empty
	// for opaque TCP) whose original destination was orig. A known target
	// without endpoints fails with a proxyerr NoEndpoints error; an unknown
	// one resolves to orig (pass-through). Resolve must not retain authority.
	Resolve(authority string, orig netip.AddrPort) (target.Endpoint, error)
}

// PassThrough resolves everything to the original destination.
type PassThrough struct{}

// Resolve implements Resolver.
func (PassThrough) Resolve(authority string, orig netip.AddrPort) (target.Endpoint, error) {
	return passThrough(authority, orig), nil
}

func passThrough(authority string, orig netip.AddrPort) target.Endpoint {
	addr := orig.String()
	if authority == "" {
		authority = addr
	} else {
		authority = clone(authority)
	}
	return target.Endpoint{
		Addr: orig,
		Peer: peerOf(authority, addr),
	}
}

func clone(s string) string { return string(append([]byte(nil), s...)) }
