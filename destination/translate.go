package destination

import (
	"net/netip"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	"github.com/weftmesh/weft/destination/watcher"
)

// defaultWeight is every endpoint's weight (Linkerd's).
const defaultWeight = 10000

// translator turns watcher addresses into protobuf.
type translator struct {
	td spiffeid.TrustDomain
}

func tcpAddress(ap netip.AddrPort) *destinationv1.TcpAddress {
	ip := ap.Addr().Unmap()
	return &destinationv1.TcpAddress{Ip: ip.AsSlice(), Port: uint32(ap.Port())}
}

// identity is the SPIFFE ID of a meshed pod's proxy, "" if not meshed.
func (t translator) identity(p *watcher.Pod) string {
	if p == nil || !p.Meshed {
		return ""
	}
	id, err := spiffeid.FromSegments(t.td, "ns", p.Namespace, "sa", p.ServiceAccount)
	if err != nil {
		return ""
	}
	return id.String()
}

// weightedAddr translates one address. opaque marks the port opaque.
func (t translator) weightedAddr(a watcher.Address, opaque bool) *destinationv1.WeightedAddr {
	w := &destinationv1.WeightedAddr{Addr: tcpAddress(a.AddrPort), Weight: defaultWeight, MetricLabels: map[string]string{}}
	if a.Zone != "" {
		w.MetricLabels["zone"] = a.Zone
	}
	if p := a.Pod; p != nil {
		w.MetricLabels["pod"] = p.Name
		w.MetricLabels["serviceaccount"] = p.ServiceAccount
		w.MetricLabels[strings.ToLower(p.OwnerKind)] = p.OwnerName
		if p.OpaquePorts[uint32(a.AddrPort.Port())] {
			opaque = true
		}
	}
	if id := t.identity(a.Pod); id != "" {
		w.TlsIdentity = &destinationv1.TlsIdentity{SpiffeId: id}
	}
	if opaque {
		w.ProtocolHint = &destinationv1.ProtocolHint{Protocol: destinationv1.ProtocolHint_OPAQUE}
	}
	return w
}

// updates translates a change into the messages that move a proxy from the
// previous set to the new one. An empty set is NoEndpoints, which clears it.
func (t translator) updates(ch watcher.Change, opaque bool) []*destinationv1.Update {
	if len(ch.Set.Addresses) == 0 {
		return []*destinationv1.Update{{Update: &destinationv1.Update_NoEndpoints{NoEndpoints: &destinationv1.NoEndpoints{Exists: ch.Set.Exists}}}}
	}
	var out []*destinationv1.Update
	if len(ch.Removed) > 0 {
		rm := &destinationv1.RemoveSet{}
		for _, ap := range ch.Removed {
			rm.Addrs = append(rm.Addrs, tcpAddress(ap))
		}
		out = append(out, &destinationv1.Update{Update: &destinationv1.Update_Remove{Remove: rm}})
	}
	if len(ch.Added) > 0 {
		add := &destinationv1.AddSet{MetricLabels: ch.Set.Labels}
		for _, a := range ch.Added {
			add.Addrs = append(add.Addrs, t.weightedAddr(a, opaque))
		}
		out = append(out, &destinationv1.Update{Update: &destinationv1.Update_Add{Add: add}})
	}
	return out
}
