// Package discovery answers "where does this go?": a Resolver maps a
// request's authority (host:port) or a connection's original destination to
// an endpoint. Static reads a STATIC_DISCOVERY YAML file; PassThrough sends
// everything to its original destination. The destination service client of
// a later issue implements the same interface.
package discovery

import (
	"net/netip"
	"sync"

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

// PassThrough resolves everything to the original destination. The zero
// value is ready to use.
type PassThrough struct{ names names }

// Resolve implements Resolver.
func (p *PassThrough) Resolve(authority string, orig netip.AddrPort) (target.Endpoint, error) {
	return p.names.passThrough(authority, orig), nil
}

// names interns the strings pass-through endpoints carry (the address and
// the authority, which may alias a request buffer), so repeated targets do
// not allocate. It stops growing at maxNames entries and then allocates.
type names struct {
	mu    sync.RWMutex
	addrs map[netip.AddrPort]string
	auths map[string]string
}

const maxNames = 4096

func (n *names) passThrough(authority string, orig netip.AddrPort) target.Endpoint {
	addr := n.addr(orig)
	if authority == "" {
		authority = addr
	} else {
		authority = n.auth(authority)
	}
	return target.Endpoint{
		Addr: orig,
		Peer: peerOf(authority, addr),
	}
}

func (n *names) addr(ap netip.AddrPort) string {
	n.mu.RLock()
	s, ok := n.addrs[ap]
	n.mu.RUnlock()
	if ok {
		return s
	}
	s = ap.String()
	n.mu.Lock()
	if n.addrs == nil {
		n.addrs = map[netip.AddrPort]string{}
	}
	if len(n.addrs) < maxNames {
		n.addrs[ap] = s
	}
	n.mu.Unlock()
	return s
}

func (n *names) auth(a string) string {
	n.mu.RLock()
	s, ok := n.auths[a]
	n.mu.RUnlock()
	if ok {
		return s
	}
	s = string(append([]byte(nil), a...))
	n.mu.Lock()
	if n.auths == nil {
		n.auths = map[string]string{}
	}
	if len(n.auths) < maxNames {
		n.auths[s] = s
	}
	n.mu.Unlock()
	return s
}
