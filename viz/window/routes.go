package window

import (
	"sort"
	"strings"
)

// DefaultRoute names the traffic that matched no ServiceProfile route.
const DefaultRoute = "[DEFAULT]"

// RouteRow is one route's line of Routes.
type RouteRow struct {
	Route     string `json:"route"`
	Authority string `json:"authority"`
	// Signals are the effective figures (as the client saw them, after
	// retries).
	Signals
	ActualRequests float64  `json:"actualRequests"`
	ActualSuccess  *float64 `json:"actualSuccess"`
	ActualRPS      float64  `json:"actualRps"`
}

// Routes answers `viz routes`: q.Resource is svc/NAME (the routes of that
// Service's profile, from its servers' inbound route metrics, or with
// q.To from the resource's outbound ones) or a workload.
func (w *Window) Routes(q Query) []RouteRow {
	w.mu.RLock()
	defer w.mu.RUnlock()
	first, last, secs := w.span(q.Window)
	type rk struct{ route, authority string }
	accs := map[rk]*acc{}
	for _, s := range w.series {
		k := &s.key
		if k.Family != Route {
			continue
		}
		if q.To != nil {
			if k.Dir != "outbound" {
				continue
			}
			if _, _, ok := q.Resource.owns(k); !ok {
				continue
			}
			if !authorityIs(q.To, k, w.svcName) {
				continue
			}
		} else {
			if k.Dir != "inbound" {
				continue
			}
			if q.Resource.Type == "svc" {
				if !authorityIs(&q.Resource, k, w.svcName) {
					continue
				}
			} else if _, _, ok := q.Resource.owns(k); !ok {
				continue
			}
		}
		name := k.Route
		if name == "" {
			name = DefaultRoute
		}
		a := accs[rk{name, k.Authority}]
		if a == nil {
			a = &acc{}
			accs[rk{name, k.Authority}] = a
		}
		s.each(first, last, func(p *Point) { a.add(p, k, last, first) })
	}
	out := make([]RouteRow, 0, len(accs))
	for k, a := range accs {
		r := RouteRow{Route: k.route, Authority: k.authority, Signals: a.signals(secs, w.cfg.Interval.Seconds()),
			ActualRequests: a.areq, ActualRPS: a.areq / secs}
		if a.areq > 0 {
			r.ActualSuccess = ptr(a.aok / a.areq)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Route == DefaultRoute) != (out[j].Route == DefaultRoute) {
			return out[j].Route == DefaultRoute
		}
		if out[i].Route != out[j].Route {
			return out[i].Route < out[j].Route
		}
		return out[i].Authority < out[j].Authority
	})
	return out
}

// authorityIs reports whether a route series' dst is the resource: a
// Service by FQDN or by ClusterIP (both forms are read), or an authority.
func authorityIs(r *Resource, k *Key, svcName func(string) (string, string)) bool {
	switch r.Type {
	case "authority":
		return r.Name == "" || k.Authority == r.Name
	case "svc":
		ns, name := svcName(k.Authority)
		return name != "" && (r.Name == "" || name == r.Name) && (r.Namespace == "" || ns == r.Namespace)
	}
	_, name, ok := r.dst(k, svcName)
	return ok && name != "" && !strings.Contains(name, ":")
}

// Edge is one pair of workloads that talk.
type Edge struct {
	SrcNamespace string `json:"srcNamespace"`
	Src          string `json:"src"`
	DstNamespace string `json:"dstNamespace"`
	Dst          string `json:"dst"`
	// Secured is true when all the traffic between them was mTLS.
	Secured bool `json:"secured"`
	// ClientID and ServerID are the identities seen (server side from the
	// client's outbound metrics; client side from the server's inbound).
	ClientID string `json:"clientId,omitempty"`
	ServerID string `json:"serverId,omitempty"`
	Signals
}

// Edges answers `viz edges`: every pair of workloads of q.Resource's type
// (in its namespace, as source or destination) with traffic in the window.
func (w *Window) Edges(q Query) []Edge {
	w.mu.RLock()
	defer w.mu.RUnlock()
	first, last, secs := w.span(q.Window)
	type ek struct{ sns, src, dns, dst string }
	accs := map[ek]*acc{}
	ids := map[ek]*Edge{}
	any := q.Resource
	any.Namespace, any.Name = "", ""
	for _, s := range w.series {
		k := &s.key
		if k.Family == Route || k.Dir != "outbound" || k.Pod != "" {
			continue
		}
		sns, src, ok := any.owns(k)
		if !ok {
			continue
		}
		dns, dst, ok := any.dst(k, w.svcName)
		if !ok {
			continue
		}
		if q.Resource.Namespace != "" && sns != q.Resource.Namespace && dns != q.Resource.Namespace {
			continue
		}
		e := ek{sns, src, dns, dst}
		a := accs[e]
		if a == nil {
			a = &acc{}
			accs[e] = a
			ids[e] = &Edge{}
		}
		if k.ServerID != "" {
			ids[e].ServerID = k.ServerID
		}
		s.each(first, last, func(p *Point) { a.add(p, k, last, first) })
	}
	// Client identities from the servers' inbound series.
	for _, s := range w.series {
		k := &s.key
		if k.Dir != "inbound" || k.Pod != "" || k.ClientID == "" {
			continue
		}
		for e, id := range ids {
			if e.dns == k.Namespace && e.dst == k.Name && kinds[q.Resource.Type] == k.Kind && sameServiceAccountNS(k.ClientID, e.sns) {
				id.ClientID = k.ClientID
			}
		}
	}
	out := make([]Edge, 0, len(accs))
	for e, a := range accs {
		if a.req+a.bytes+a.opened == 0 {
			continue
		}
		sig := a.signals(secs, w.cfg.Interval.Seconds())
		secured := sig.TLSShare != nil && *sig.TLSShare == 1
		out = append(out, Edge{SrcNamespace: e.sns, Src: e.src, DstNamespace: e.dns, Dst: e.dst, Secured: secured,
			ClientID: ids[e].ClientID, ServerID: ids[e].ServerID, Signals: sig})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.SrcNamespace+"/"+a.Src != b.SrcNamespace+"/"+b.Src {
			return a.SrcNamespace+"/"+a.Src < b.SrcNamespace+"/"+b.Src
		}
		return a.DstNamespace+"/"+a.Dst < b.DstNamespace+"/"+b.Dst
	})
	return out
}

// sameServiceAccountNS reports whether a SPIFFE ID
// (spiffe://td/ns/NS/sa/SA) is in namespace ns.
func sameServiceAccountNS(id, ns string) bool {
	return strings.Contains(id, "/ns/"+ns+"/")
}
