package dns

import (
	"net/netip"
	"strconv"
	"strings"

	mdns "github.com/miekg/dns"
)

// nameKind says what a query name inside the cluster zone refers to.
type nameKind int

const (
	kindUnknown   nameKind = iota // in the zone, but no such name can exist
	kindApex                      // <zone>
	kindVersion                   // dns-version.<zone>
	kindSvcRoot                   // svc.<zone>
	kindPodRoot                   // pod.<zone>
	kindNamespace                 // <ns>.svc.<zone> (or <ns>.pod.<zone>)
	kindService                   // <svc>.<ns>.svc.<zone>
	kindEndpoint                  // <endpoint>.<svc>.<ns>.svc.<zone>
	kindPort                      // _<port>._<proto>.<svc>.<ns>.svc.<zone>
	kindPod                       // <dashed-ip>.<ns>.pod.<zone>
)

// clusterName is a parsed query name inside the cluster zone. All strings are lower case.
type clusterName struct {
	kind      nameKind
	namespace string
	service   string
	endpoint  string     // hostname or dashed IP of one endpoint (kindEndpoint)
	port      string     // port name without the leading underscore (kindPort)
	proto     string     // "tcp", "udp" or "sctp" (kindPort)
	podIP     netip.Addr // kindPod
}

// parseClusterName parses a fully qualified, lower-case query name. zone is the lower-case,
// fully qualified cluster domain ("cluster.local."). ok is false when name is not in zone.
func parseClusterName(name, zone string) (cn clusterName, ok bool) {
	if !mdns.IsSubDomain(zone, name) {
		return clusterName{}, false
	}
	rest := strings.TrimSuffix(strings.TrimSuffix(name, zone), ".")
	var labels []string
	if rest != "" {
		labels = mdns.SplitDomainName(rest)
	}
	// Read labels from the zone outwards.
	n := len(labels)
	at := func(i int) string { return labels[n-1-i] }
	switch {
	case n == 0:
		return clusterName{kind: kindApex}, true
	case n == 1 && at(0) == "dns-version":
		return clusterName{kind: kindVersion}, true
	case at(0) == "svc":
		return parseServiceName(labels[:n-1]), true
	case at(0) == "pod":
		return parsePodName(labels[:n-1]), true
	}
	return clusterName{kind: kindUnknown}, true
}

// parseServiceName parses the labels left of "svc.<zone>".
func parseServiceName(l []string) clusterName {
	n := len(l)
	switch n {
	case 0:
		return clusterName{kind: kindSvcRoot}
	case 1:
		return clusterName{kind: kindNamespace, namespace: l[0]}
	case 2:
		return clusterName{kind: kindService, namespace: l[1], service: l[0]}
	case 3:
		if strings.HasPrefix(l[0], "_") {
			return clusterName{kind: kindUnknown}
		}
		return clusterName{kind: kindEndpoint, namespace: l[2], service: l[1], endpoint: l[0]}
	case 4:
		port, okPort := strings.CutPrefix(l[0], "_")
		proto, okProto := strings.CutPrefix(l[1], "_")
		if !okPort || !okProto || port == "" || !validProto(proto) {
			return clusterName{kind: kindUnknown}
		}
		return clusterName{kind: kindPort, namespace: l[3], service: l[2], port: port, proto: proto}
	}
	return clusterName{kind: kindUnknown}
}

// parsePodName parses the labels left of "pod.<zone>" (the "pods insecure" mode of CoreDNS:
// the address is taken from the name itself).
func parsePodName(l []string) clusterName {
	switch len(l) {
	case 0:
		return clusterName{kind: kindPodRoot}
	case 1:
		return clusterName{kind: kindNamespace, namespace: l[0]}
	case 2:
		ip, ok := parseDashedIP(l[0])
		if !ok {
			return clusterName{kind: kindUnknown}
		}
		return clusterName{kind: kindPod, namespace: l[1], podIP: ip}
	}
	return clusterName{kind: kindUnknown}
}

func validProto(p string) bool { return p == "tcp" || p == "udp" || p == "sctp" }

// parseDashedIP parses "10-0-0-1" or "fd00--1" into an address.
func parseDashedIP(s string) (netip.Addr, bool) {
	if strings.Count(s, "-") == 3 && !strings.Contains(s, "--") {
		a, err := netip.ParseAddr(strings.ReplaceAll(s, "-", "."))
		return a, err == nil && a.Is4()
	}
	a, err := netip.ParseAddr(strings.ReplaceAll(s, "-", ":"))
	return a, err == nil && a.Is6() && !a.Is4In6() && a.Zone() == ""
}

// dashedIP is the inverse of parseDashedIP: the endpoint or pod label of an address.
func dashedIP(a netip.Addr) string {
	if a.Is4() {
		return strings.ReplaceAll(a.String(), ".", "-")
	}
	return strings.ReplaceAll(a.String(), ":", "-")
}

// parseReverseName parses a lower-case "<reversed-ip>.in-addr.arpa." or
// "<nibbles>.ip6.arpa." name. ok is false when name is not a complete reverse name.
func parseReverseName(name string) (netip.Addr, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		l := strings.Split(rest, ".")
		if len(l) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, s := range l {
			v, err := strconv.ParseUint(s, 10, 8)
			if err != nil || (len(s) > 1 && s[0] == '0') {
				return netip.Addr{}, false
			}
			b[3-i] = byte(v)
		}
		return netip.AddrFrom4(b), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		l := strings.Split(rest, ".")
		if len(l) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, s := range l {
			if len(s) != 1 {
				return netip.Addr{}, false
			}
			v, err := strconv.ParseUint(s, 16, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			nib := 31 - i
			if nib%2 == 0 {
				b[nib/2] |= byte(v) << 4
			} else {
				b[nib/2] |= byte(v)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// isReverseZone reports whether name is in in-addr.arpa. or ip6.arpa.
func isReverseZone(name string) bool {
	return mdns.IsSubDomain("in-addr.arpa.", name) || mdns.IsSubDomain("ip6.arpa.", name)
}
