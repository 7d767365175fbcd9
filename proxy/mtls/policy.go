package mtls

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weftmesh/weft/proxy/iptables"
)

// DefaultPolicy decides what an inbound port accepts when it is not listed
// as requiring identity.
type DefaultPolicy uint8

// Default policies. The zero value is AllUnauthenticated.
const (
	// AllUnauthenticated accepts plaintext and mTLS connections (the default,
	// so meshing a workload never breaks its unmeshed clients).
	AllUnauthenticated DefaultPolicy = iota
	// AllAuthenticated accepts only connections from a peer proxy with a
	// verified identity in the trust domain.
	AllAuthenticated
	// Deny refuses every connection.
	Deny
)

// String is the configuration spelling of d.
func (d DefaultPolicy) String() string {
	switch d {
	case AllAuthenticated:
		return "all-authenticated"
	case Deny:
		return "deny"
	}
	return "all-unauthenticated"
}

// Policy is the inbound authorization policy. The zero value accepts
// everything.
type Policy struct {
	// Default applies to ports not in RequireIdentity.
	Default DefaultPolicy
	// RequireIdentity lists port ranges that accept only authenticated
	// (mTLS) connections whatever the default (except Deny).
	RequireIdentity []iptables.PortRange
}

// Allows reports whether a connection to port, authenticated or not, may be
// served. A refused connection is counted by the caller as
// proxyerr.Unauthenticated.
func (p *Policy) Allows(port uint16, authenticated bool) bool {
	switch p.Default {
	case Deny:
		return false
	case AllAuthenticated:
		return authenticated
	}
	if authenticated {
		return true
	}
	for _, r := range p.RequireIdentity {
		if port >= r.First && port <= r.Last {
			return false
		}
	}
	return true
}

// Environment variables ParsePolicy reads.
const (
	EnvDefaultPolicy        = "WEFT_PROXY_INBOUND_DEFAULT_POLICY"
	EnvPortsRequireIdentity = "WEFT_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY"
)

// ParsePolicy parses the default policy ("all-unauthenticated" or "" ,
// "all-authenticated", "deny") and a port list ("8080,9000-9010"; "" is none).
func ParsePolicy(defaultPolicy, ports string) (Policy, error) {
	var p Policy
	switch strings.TrimSpace(defaultPolicy) {
	case "", "all-unauthenticated":
		p.Default = AllUnauthenticated
	case "all-authenticated":
		p.Default = AllAuthenticated
	case "deny":
		p.Default = Deny
	default:
		return Policy{}, fmt.Errorf("%s: %q is not all-unauthenticated, all-authenticated or deny", EnvDefaultPolicy, defaultPolicy)
	}
	rs, err := iptables.ParsePortRanges(ports)
	if err != nil {
		return Policy{}, fmt.Errorf("%s: %w", EnvPortsRequireIdentity, err)
	}
	p.RequireIdentity = slices.Clip(rs)
	return p, nil
}

// PolicyFromEnv reads the policy variables with getenv.
func PolicyFromEnv(getenv func(string) string) (Policy, error) {
	return ParsePolicy(getenv(EnvDefaultPolicy), getenv(EnvPortsRequireIdentity))
}
