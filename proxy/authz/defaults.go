package authz

import (
	"fmt"
	"net/netip"
	"strings"
)

// DefaultPolicy is a port's fallback: the workload's default inbound policy
// (annotation config.weft.io/default-inbound-policy, install flag) or a
// Server's accessPolicy.
type DefaultPolicy uint8

// Default policies. The zero value is AllUnauthenticated (today's default,
// so meshing a workload never breaks its clients).
const (
	AllUnauthenticated DefaultPolicy = iota
	AllAuthenticated
	ClusterUnauthenticated
	ClusterAuthenticated
	Deny
	// Audit allows everything but marks each request Deny would refuse, so
	// it is logged and counted before enforcing.
	Audit
)

var defaultNames = [...]string{"all-unauthenticated", "all-authenticated", "cluster-unauthenticated", "cluster-authenticated", "deny", "audit"}

// String is the configuration spelling of d.
func (d DefaultPolicy) String() string {
	if int(d) < len(defaultNames) {
		return defaultNames[d]
	}
	return "deny"
}

// ParseDefaultPolicy parses a default policy name ("" is
// all-unauthenticated).
func ParseDefaultPolicy(s string) (DefaultPolicy, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return AllUnauthenticated, nil
	}
	for i, n := range defaultNames {
		if n == s {
			return DefaultPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("default inbound policy %q is not one of %s", s, strings.Join(defaultNames[:], ", "))
}

// DefaultClusterNetworks are the networks cluster-* policies accept when the
// control plane sends none: the RFC 1918, CGNAT, benchmark (198.18.0.0/15)
// and IPv6 unique-local ranges.
var DefaultClusterNetworks = []Network{
	{CIDR: netip.MustParsePrefix("10.0.0.0/8")},
	{CIDR: netip.MustParsePrefix("100.64.0.0/10")},
	{CIDR: netip.MustParsePrefix("172.16.0.0/12")},
	{CIDR: netip.MustParsePrefix("192.168.0.0/16")},
	{CIDR: netip.MustParsePrefix("198.18.0.0/15")},
	{CIDR: netip.MustParsePrefix("fd00::/8")},
}

// authorization is the allow rule d stands for; ok is false for Deny and
// Audit, which allow nobody by rule.
func (d DefaultPolicy) authorization(cluster []Network) (Authorization, bool) {
	a := Authorization{Kind: "default", Name: d.String()}
	switch d {
	case AllUnauthenticated:
		a.Authentication.Unauthenticated = true
	case AllAuthenticated:
	case ClusterUnauthenticated:
		a.Networks, a.Authentication.Unauthenticated = cluster, true
	case ClusterAuthenticated:
		a.Networks = cluster
	default:
		return a, false
	}
	if len(a.Networks) == 0 && (d == ClusterAuthenticated || d == ClusterUnauthenticated) {
		a.Networks = DefaultClusterNetworks
	}
	return a, true
}

// DefaultPortPolicy is the policy of a port no Server selects.
func DefaultPortPolicy(port uint16, d DefaultPolicy, cluster []Network) *PortPolicy {
	return &PortPolicy{Port: port, ServerKind: "default", ServerName: d.String(), Fallback: d, ClusterNetworks: cluster}
}

// MatchIdentity reports whether a SPIFFE ID matches pattern: "*" matches any
// identity; a pattern ending in "*" matches IDs with that prefix (at a path
// segment boundary when the prefix ends in "/", e.g.
// "spiffe://cluster.local/ns/demo/*"); a pattern starting with "*." matches
// DNS-like identities by suffix (Linkerd's "*.demo.serviceaccount…"
// style); anything else matches exactly.
func MatchIdentity(pattern, id string) bool {
	if id == "" {
		return false
	}
	switch {
	case pattern == "*":
		return true
	case strings.HasPrefix(pattern, "*."):
		return strings.HasSuffix(id, pattern[1:]) && len(id) > len(pattern)-1
	case strings.HasSuffix(pattern, "*"):
		prefix := pattern[:len(pattern)-1]
		return strings.HasPrefix(id, prefix) && len(id) > len(prefix)
	}
	return pattern == id
}

// ServiceAccountID is the SPIFFE ID of a ServiceAccount in trust domain td.
func ServiceAccountID(td, namespace, name string) string {
	return "spiffe://" + td + "/ns/" + namespace + "/sa/" + name
}
