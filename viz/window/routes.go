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

// Routes answers `viz routes`: q.Resource is svc/NAME or a workload.
// With q.To, the rows are the resource's outbound route series to q.To.
// Without, they are the route series of svc/NAME's servers (inbound) or,
// as weft's proxies record route series only on the client side, those of
// every client calling it (outbound); for a workload, its inbound ones.
// On the client side, requests that matched no profile route (the proxy
// records no route series for them) are the [DEFAULT] row: the HTTP
// requests to the authority minus those of its routes.
func (w *Window) Routes(q Query) []RouteRow {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return routes(q, w.set(q.Window))
}

type routeKey struct{ route, authority string }

func routes(q Query, set *seriesSet) []RouteRow {
	server, client := map[routeKey]*acc{}, map[routeKey]*acc{}
	http := map[string]*acc{} // client side, by authority
	set.each(func(k *Key, fill func(a *acc)) {
		switch {
		case k.Family == Route && serverSide(q, k, set.svcName):
			fill(accOf(server, routeKey{routeName(k.Route), k.Authority}))
		case k.Family == Route && clientSide(q, k, set.svcName):
			fill(accOf(client, routeKey{routeName(k.Route), k.Authority}))
		case k.Family == HTTP && k.Pod == "" && clientSide(q, k, set.svcName):
			fill(accOf(http, k.Authority))
		}
	})
	accs := server
	if len(server) == 0 {
		accs = client
		for auth, h := range http {
			for rk, a := range client {
				if rk.authority == auth && rk.route != DefaultRoute {
					h.sub(a)
				}
			}
			if h.req >= 0.5 {
				h.areq, h.aok = h.req, h.ok // no retries outside profile routes
				accOf(accs, routeKey{DefaultRoute, auth}).merge(h)
			}
		}
	}
	out := make([]RouteRow, 0, len(accs))
	for k, a := range accs {
		r := RouteRow{Route: k.route, Authority: k.authority, Signals: a.signals(set.secs, set.interval),
			ActualRequests: a.areq, ActualRPS: a.areq / set.secs}
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

func accOf[K comparable](m map[K]*acc, k K) *acc {
	a := m[k]
	if a == nil {
		a = &acc{}
		m[k] = a
	}
	return a
}

func routeName(r string) string {
	if r == "" {
		return DefaultRoute
	}
	return r
}

// serverSide reports whether an inbound series answers q (no q.To).
func serverSide(q Query, k *Key, svcName func(string) (string, string)) bool {
	if q.To != nil || k.Dir != "inbound" {
		return false
	}
	if q.Resource.Type == "svc" {
		return authorityIs(&q.Resource, k, svcName)
	}
	_, _, ok := q.Resource.owns(k)
	return ok
}

// clientSide reports whether a workload-level outbound series answers q:
// the resource's calls to q.To, or any client's calls to svc/NAME.
func clientSide(q Query, k *Key, svcName func(string) (string, string)) bool {
	if k.Dir != "outbound" {
		return false
	}
	if q.To != nil {
		_, _, ok := q.Resource.owns(k)
		return ok && authorityIs(q.To, k, svcName)
	}
	return q.Resource.Type == "svc" && authorityIs(&q.Resource, k, svcName)
}

// sub removes b's requests and latencies from a (never below zero).
func (a *acc) sub(b *acc) {
	a.req, a.ok = max(a.req-b.req, 0), max(a.ok-b.ok, 0)
	a.tlsReq = max(a.tlsReq-b.tlsReq, 0)
	for i := range a.buckets {
		a.buckets[i] = max(a.buckets[i]-b.buckets[i], 0)
	}
}

// merge adds b's figures to a.
func (a *acc) merge(b *acc) {
	a.req, a.ok, a.areq, a.aok = a.req+b.req, a.ok+b.ok, a.areq+b.areq, a.aok+b.aok
	a.tlsReq, a.tlsBytes, a.bytes = a.tlsReq+b.tlsReq, a.tlsBytes+b.tlsBytes, a.bytes+b.bytes
	a.opened, a.read, a.written, a.open = a.opened+b.opened, a.read+b.read, a.written+b.written, a.open+b.open
	for i := range a.buckets {
		a.buckets[i] += b.buckets[i]
	}
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
	return edges(q, w.set(q.Window))
}

func edges(q Query, set *seriesSet) []Edge {
	type ek struct{ sns, src, dns, dst string }
	accs := map[ek]*acc{}
	ids := map[ek]*Edge{}
	any := q.Resource
	any.Namespace, any.Name = "", ""
	set.each(func(k *Key, fill func(a *acc)) {
		if k.Family == Route || k.Dir != "outbound" || k.Pod != "" {
			return
		}
		sns, src, ok := any.owns(k)
		if !ok {
			return
		}
		dns, dst, ok := any.dst(k, set.svcName)
		if !ok {
			return
		}
		if q.Resource.Namespace != "" && sns != q.Resource.Namespace && dns != q.Resource.Namespace {
			return
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
		fill(a)
	})
	// Client identities from the servers' inbound series.
	set.each(func(k *Key, _ func(a *acc)) {
		if k.Dir != "inbound" || k.Pod != "" || k.ClientID == "" {
			return
		}
		for e, id := range ids {
			if e.dns == k.Namespace && e.dst == k.Name && kinds[q.Resource.Type] == k.Kind && sameServiceAccountNS(k.ClientID, e.sns) {
				id.ClientID = k.ClientID
			}
		}
	})
	out := make([]Edge, 0, len(accs))
	for e, a := range accs {
		if a.req+a.bytes+a.opened == 0 {
			continue
		}
		sig := a.signals(set.secs, set.interval)
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
