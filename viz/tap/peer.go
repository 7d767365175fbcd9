package tap

import (
	"net"
	"strings"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
)

// Peer is one end of a tapped exchange, as far as the event tells.
type Peer struct {
	Namespace string `json:"namespace,omitempty"`
	// Workload is TYPE/NAME (deploy/web); sa/NAME when only the peer's
	// identity (its ServiceAccount) is known.
	Workload string `json:"workload,omitempty"`
	Pod      string `json:"pod,omitempty"`
	Addr     string `json:"addr,omitempty"`
	// Identity is the peer's SPIFFE ID when mTLS proved it.
	Identity string `json:"identity,omitempty"`
}

// Name is how tables show p: its workload, else its address's IP (the
// port of a client differs per connection: the kubelet's probes would make
// one row each), else "-".
func (p Peer) Name() string {
	switch {
	case p.Workload != "":
		return p.Workload
	case p.Addr != "":
		if host, _, err := net.SplitHostPort(p.Addr); err == nil {
			return host
		}
		return p.Addr
	}
	return "-"
}

// workloadLabels map the proxy's destination labels (discovery's owner
// kind, lowercased) to viz stat's short types, in order of preference.
var workloadLabels = []struct{ label, short string }{
	{"deployment", "deploy"}, {"statefulset", "sts"}, {"daemonset", "ds"}, {"job", "job"}, {"pod", "po"}, {"service", "svc"},
}

// Peers returns the source and destination of ev: the tapped pod is the
// source of outbound and the destination of inbound requests; the other end
// comes from the destination labels (outbound) or the client's identity
// (inbound).
func Peers(ev Event) (src, dst Peer) {
	e := ev.Event
	self := Peer{Namespace: ev.Namespace, Workload: ev.Workload, Pod: ev.Pod}
	if e.GetDirection() == "outbound" {
		self.Identity, self.Addr = e.GetClientId(), e.GetSourceAddr()
		return self, fromLabels(e)
	}
	self.Identity = e.GetServerId()
	self.Addr = e.GetTargetAddr()
	src = fromIdentity(e.GetClientId())
	src.Addr = e.GetSourceAddr()
	if ev.SourceWorkload != "" {
		src.Namespace, src.Workload = ev.SourceNamespace, ev.SourceWorkload
	}
	return src, self
}

func fromLabels(e *tapv1.Event) Peer {
	l := e.GetDestinationLabels()
	p := Peer{Namespace: l["namespace"], Pod: l["pod"], Addr: e.GetTargetAddr(), Identity: e.GetServerId()}
	for _, w := range workloadLabels {
		if v := l[w.label]; v != "" {
			p.Workload = w.short + "/" + v
			break
		}
	}
	if id := fromIdentity(p.Identity); id.Workload != "" {
		if p.Workload == "" {
			p.Workload = id.Workload
		}
		if p.Namespace == "" {
			p.Namespace = id.Namespace
		}
	}
	return p
}

// fromIdentity reads spiffe://TD/ns/NS/sa/SA.
func fromIdentity(id string) Peer {
	p := Peer{Identity: id}
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return p
	}
	parts := strings.Split(rest, "/")
	if len(parts) == 5 && parts[1] == "ns" && parts[3] == "sa" {
		p.Namespace, p.Workload = parts[2], "sa/"+parts[4]
	}
	return p
}
