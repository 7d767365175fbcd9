// Package authz is the inbound proxy's authorization model: the compiled
// per-port policy the control plane streams (servers, HTTP routes,
// authorizations), the default policies, and the decision for a connection or
// a request. It has no I/O: the proxy's request pipeline calls Authorizer
// after routing, and the connection path calls it after mTLS.
//
// Semantics follow Linkerd's policy.linkerd.io resources: an authorization
// allows a client when both its networks and its authentication match; a
// request is allowed when one authorization of the route it matches allows
// it; when none does, the port's fallback (a Server's accessPolicy, or the
// workload's default policy) decides. Paths and hosts are normalised before
// any match (see normalize.go).
package authz

import (
	"fmt"
	"net/netip"
	"regexp"
)

// Protocol is a Server's proxyProtocol.
type Protocol uint8

// Protocols, in Linkerd's spelling order.
const (
	ProtocolUnknown Protocol = iota
	ProtocolHTTP1
	ProtocolHTTP2
	ProtocolGRPC
	ProtocolOpaque
	ProtocolTLS
)

var protocolNames = [...]string{"unknown", "HTTP/1", "HTTP/2", "gRPC", "opaque", "TLS"}

// String is the CRD spelling of p.
func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return "unknown"
}

// ParseProtocol parses a Server's proxyProtocol ("" is unknown).
func ParseProtocol(s string) (Protocol, error) {
	if s == "" || s == "unknown" {
		return ProtocolUnknown, nil
	}
	for i, n := range protocolNames {
		if n == s {
			return Protocol(i), nil
		}
	}
	return 0, fmt.Errorf("proxy protocol %q is not unknown, HTTP/1, HTTP/2, gRPC, opaque or TLS", s)
}

// Network is a CIDR with exceptions, as in NetworkAuthentication.
type Network struct {
	CIDR   netip.Prefix
	Except []netip.Prefix
}

// Contains reports whether a is in n's CIDR and in none of its exceptions.
func (n Network) Contains(a netip.Addr) bool {
	a = a.Unmap()
	if !n.CIDR.Contains(a) {
		return false
	}
	for _, e := range n.Except {
		if e.Contains(a) {
			return false
		}
	}
	return true
}

// ParseNetwork parses a CIDR (or a bare address) and its exceptions.
func ParseNetwork(cidr string, except ...string) (Network, error) {
	p, err := parsePrefix(cidr)
	if err != nil {
		return Network{}, err
	}
	n := Network{CIDR: p}
	for _, e := range except {
		ep, err := parsePrefix(e)
		if err != nil {
			return Network{}, fmt.Errorf("except: %w", err)
		}
		n.Except = append(n.Except, ep)
	}
	return n, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network %q is neither a CIDR (10.0.0.0/8) nor an address", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// AllNetworks are 0.0.0.0/0 and ::/0.
var AllNetworks = []Network{
	{CIDR: netip.MustParsePrefix("0.0.0.0/0")},
	{CIDR: netip.MustParsePrefix("::/0")},
}

// Authentication says which clients an authorization accepts.
type Authentication struct {
	// Unauthenticated accepts clients without an identity (plaintext).
	Unauthenticated bool
	// Identities are SPIFFE ID patterns (see MatchIdentity); empty with
	// Unauthenticated false means any verified identity.
	Identities []string
}

// Authorization is one compiled AuthorizationPolicy (or a default).
type Authorization struct {
	// Kind and Name label metrics: authz_kind ("authorizationpolicy",
	// "default") and authz_name.
	Kind, Name string
	// Networks the client address must be in; empty means any.
	Networks       []Network
	Authentication Authentication
}

// Allows reports whether the client (id "" when unauthenticated) is accepted.
func (a *Authorization) Allows(clientID string, addr netip.Addr) bool {
	if len(a.Networks) > 0 {
		in := false
		for _, n := range a.Networks {
			if n.Contains(addr) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	if clientID == "" {
		return a.Authentication.Unauthenticated
	}
	if len(a.Authentication.Identities) == 0 {
		return true
	}
	for _, p := range a.Authentication.Identities {
		if MatchIdentity(p, clientID) {
			return true
		}
	}
	return false
}

// PathKind is how a route matches paths.
type PathKind uint8

// Path match kinds (Gateway API's).
const (
	PathPrefix PathKind = iota // PathPrefix matches whole segments
	PathExact
	PathRegex
)

// PathMatch matches a normalised path.
type PathMatch struct {
	Kind  PathKind
	Value string
	Regex *regexp.Regexp // compiled Value when Kind is PathRegex
}

// HeaderMatch matches a header by name (case-insensitive) and value.
type HeaderMatch struct {
	Name, Value string
	Regex       *regexp.Regexp // non-nil: Value is a regular expression
}

// RouteMatch is one HTTPRoute match; set fields are ANDed.
type RouteMatch struct {
	Path    *PathMatch
	Method  string
	Headers []HeaderMatch
}

// Route is one compiled HTTPRoute rule set and the authorizations that
// target it.
type Route struct {
	Name string
	// Hostnames the request's host must match ("*.example.com" wildcards);
	// empty means any host.
	Hostnames []string
	// Matches are ORed; empty matches every request.
	Matches        []RouteMatch
	Authorizations []Authorization
}

// PortPolicy is the effective policy of one inbound port.
type PortPolicy struct {
	Port uint16
	// ServerKind and ServerName label metrics: "server" and its name, or
	// "default" and the default policy's name.
	ServerKind, ServerName string
	Protocol               Protocol
	// Authorizations target the whole Server (every route and the
	// connection).
	Authorizations []Authorization
	// Routes are the HTTPRoutes attached to the Server, most specific first
	// (see SortRoutes). Empty means one implicit route, "default", matching
	// everything.
	Routes []Route
	// Fallback decides when no authorization allows: the Server's
	// accessPolicy or the default policy.
	Fallback DefaultPolicy
	// ClusterNetworks are the networks cluster-* fallbacks accept.
	ClusterNetworks []Network
}
