package destclient

import (
	"net/netip"
	"sort"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// addrPort converts a TcpAddress; false when it is malformed.
func addrPort(a *destinationv1.TcpAddress) (netip.AddrPort, bool) {
	ip, ok := netip.AddrFromSlice(a.GetIp())
	if !ok || a.GetPort() == 0 || a.GetPort() > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.GetPort())), true
}

// endpoints converts an AddSet; authority is reported in the endpoints'
// Peer. Malformed addresses are skipped.
func endpoints(authority string, set *destinationv1.AddSet) []target.Endpoint {
	out := make([]target.Endpoint, 0, len(set.GetAddrs()))
	for _, wa := range set.GetAddrs() {
		ap, ok := addrPort(wa.GetAddr())
		if !ok {
			continue
		}
		id := wa.GetTlsIdentity().GetSpiffeId()
		out = append(out, target.Endpoint{
			Addr:     ap,
			Identity: id,
			Protocol: protocol(wa.GetProtocolHint()),
			Peer: record.Peer{
				Authority:  authority,
				TargetAddr: ap.String(),
				ServerID:   id,
				Labels:     labels(set.GetMetricLabels(), wa.GetMetricLabels()),
			},
		})
	}
	return out
}

func protocol(h *destinationv1.ProtocolHint) target.Protocol {
	switch h.GetProtocol() {
	case destinationv1.ProtocolHint_HTTP2:
		return target.HTTP2
	case destinationv1.ProtocolHint_OPAQUE:
		return target.Opaque
	}
	return target.Unknown
}

// labels merges set and endpoint labels (the endpoint's win) into sorted
// dst_* labels; nil when there are none.
func labels(set, ep map[string]string) []record.Label {
	if len(set)+len(ep) == 0 {
		return nil
	}
	m := make(map[string]string, len(set)+len(ep))
	for k, v := range set {
		m[k] = v
	}
	for k, v := range ep {
		m[k] = v
	}
	out := make([]record.Label, 0, len(m))
	for k, v := range m {
		if !validLabelName(k) {
			continue
		}
		out = append(out, record.Label{Name: "dst_" + k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || (i > 0 && '0' <= c && c <= '9') {
			continue
		}
		return false
	}
	return true
}
