package authz

import (
	"net/netip"
	"strings"
)

// Source yields the policy the control plane sent for a port; ok is false
// while none has arrived. proxy/policyclient implements it.
type Source interface {
	PortPolicy(port uint16) (p *PortPolicy, ok bool)
}

// Headers is the request's header view the pipeline passes in.
type Headers interface {
	Range(func(name, value string) bool)
}

// Request is what the authorize hook knows about one inbound request.
type Request struct {
	Port       uint16
	ClientID   string // the verified client SPIFFE ID, "" without mTLS
	ClientAddr netip.Addr
	Method     string
	Host       string // :authority or Host, as received
	Path       string // request target path, as received (query allowed)
	Headers    Headers
}

// Labels are the metric labels of a decision (Linkerd's names).
type Labels struct {
	SrvKind, SrvName, RouteName, AuthzKind, AuthzName string
}

// Decision is the answer for a connection or a request.
type Decision struct {
	// Allow: serve it. When false the pipeline answers 403 with
	// weft-proxy-error: unauthorized (gRPC PERMISSION_DENIED) or closes the
	// connection.
	Allow bool
	// Audited: allowed only because the fallback is audit; deny would have
	// refused it.
	Audited bool
	// NoRoute: denied because the port has routes and none matched (Linkerd
	// answers 404 for this; the pipeline may too).
	NoRoute bool
	Labels  Labels
}

// Probe is one of the pod's own HTTP probe endpoints (port and path,
// WEFT_PROXY_APP_PROBES).
type Probe struct {
	Port uint16
	Path string
}

// Config configures an Authorizer.
type Config struct {
	// Source gives the streamed per-port policies; nil means none ever
	// arrive and every port uses Default.
	Source Source
	// Default is the workload's default inbound policy.
	Default DefaultPolicy
	// ClusterNetworks for cluster-* defaults; nil uses DefaultClusterNetworks.
	ClusterNetworks []Network
	// Probes are allowed (GET/HEAD, exact normalised path) whatever the
	// policy, so the kubelet keeps the pod Ready under deny.
	Probes []Probe
	// Metrics, when set, counts every decision.
	Metrics *Metrics
}

// Authorizer decides connections and requests. It is safe for concurrent
// use.
type Authorizer struct {
	cfg    Config
	probes map[Probe]struct{}
}

// New returns an Authorizer.
func New(cfg Config) *Authorizer {
	a := &Authorizer{cfg: cfg, probes: map[Probe]struct{}{}}
	for _, p := range cfg.Probes {
		if n, err := NormalizePath(p.Path); err == nil {
			a.probes[Probe{Port: p.Port, Path: n}] = struct{}{}
		}
	}
	return a
}

// Policy returns the effective policy of port. A port whose policy never
// arrived uses the local default; under deny that fails closed.
func (a *Authorizer) Policy(port uint16) *PortPolicy {
	if a.cfg.Source != nil {
		if p, ok := a.cfg.Source.PortPolicy(port); ok && p != nil {
			return p
		}
	}
	return DefaultPortPolicy(port, a.cfg.Default, a.cfg.ClusterNetworks)
}

// AuthorizeConn decides a connection after mTLS, before detection. On an
// HTTP (or not yet known) port it allows a client that any authorization of
// the port, server- or route-level, could allow, and leaves the final answer
// to AuthorizeRequest; on opaque and TLS ports its answer is final.
func (a *Authorizer) AuthorizeConn(port uint16, clientID string, addr netip.Addr) Decision {
	p := a.Policy(port)
	d := Decision{Labels: Labels{SrvKind: p.ServerKind, SrvName: p.ServerName}}
	if az, ok := allowing(p.Authorizations, clientID, addr); ok {
		d.Allow, d.Labels.AuthzKind, d.Labels.AuthzName = true, az.Kind, az.Name
	} else if p.Protocol != ProtocolOpaque && p.Protocol != ProtocolTLS && a.anyRouteAllows(port, p, clientID, addr) {
		d.Allow, d.Labels.AuthzKind, d.Labels.AuthzName = true, "route", ""
	} else {
		a.fallback(p, &d, clientID, addr)
	}
	a.cfg.Metrics.recordTCP(d, clientID)
	return d
}

func (a *Authorizer) anyRouteAllows(port uint16, p *PortPolicy, clientID string, addr netip.Addr) bool {
	if a.hasProbe(port) {
		return true
	}
	for i := range p.Routes {
		if _, ok := allowing(p.Routes[i].Authorizations, clientID, addr); ok {
			return true
		}
	}
	return false
}

func (a *Authorizer) hasProbe(port uint16) bool {
	for pr := range a.probes {
		if pr.Port == port {
			return true
		}
	}
	return false
}

// AuthorizeRequest decides one HTTP or gRPC request after routing.
func (a *Authorizer) AuthorizeRequest(r *Request) Decision {
	d := a.authorizeRequest(r)
	a.cfg.Metrics.recordHTTP(d, r.ClientID)
	return d
}

func (a *Authorizer) authorizeRequest(r *Request) Decision {
	p := a.Policy(r.Port)
	d := Decision{Labels: Labels{SrvKind: p.ServerKind, SrvName: p.ServerName, RouteName: "default"}}
	path, err := NormalizePath(r.Path)
	if err != nil {
		// Nothing can be matched safely; only a port that allows everyone
		// without rules keeps serving (unchanged behaviour of unconfigured
		// all-unauthenticated ports).
		if p.ServerKind == "default" && p.Fallback == AllUnauthenticated {
			d.Allow, d.Labels.AuthzKind, d.Labels.AuthzName = true, "default", p.Fallback.String()
			return d
		}
		d.Labels.RouteName = "invalid"
		return d
	}
	if (r.Method == "GET" || r.Method == "HEAD") && len(a.probes) > 0 {
		if _, ok := a.probes[Probe{Port: r.Port, Path: path}]; ok {
			d.Allow, d.Labels.RouteName, d.Labels.AuthzKind, d.Labels.AuthzName = true, "probe", "default", "probe"
			return d
		}
	}
	var route *Route
	if len(p.Routes) > 0 {
		host := NormalizeHost(r.Host)
		for i := range p.Routes {
			if p.Routes[i].matches(r, host, path) {
				route = &p.Routes[i]
				break
			}
		}
		if route == nil {
			d.NoRoute, d.Labels.RouteName = true, ""
			return d
		}
		d.Labels.RouteName = route.Name
		if az, ok := allowing(route.Authorizations, r.ClientID, r.ClientAddr); ok {
			d.Allow, d.Labels.AuthzKind, d.Labels.AuthzName = true, az.Kind, az.Name
			return d
		}
	}
	if az, ok := allowing(p.Authorizations, r.ClientID, r.ClientAddr); ok {
		d.Allow, d.Labels.AuthzKind, d.Labels.AuthzName = true, az.Kind, az.Name
		return d
	}
	a.fallback(p, &d, r.ClientID, r.ClientAddr)
	return d
}

func (a *Authorizer) fallback(p *PortPolicy, d *Decision, clientID string, addr netip.Addr) {
	if p.Fallback == Audit {
		d.Allow, d.Audited, d.Labels.AuthzKind, d.Labels.AuthzName = true, true, "default", "audit"
		return
	}
	cluster := p.ClusterNetworks
	if cluster == nil {
		cluster = a.cfg.ClusterNetworks
	}
	if az, ok := p.Fallback.authorization(cluster); ok && az.Allows(clientID, addr) {
		d.Allow, d.Labels.AuthzKind, d.Labels.AuthzName = true, az.Kind, az.Name
	}
}

func allowing(azs []Authorization, clientID string, addr netip.Addr) (*Authorization, bool) {
	for i := range azs {
		if azs[i].Allows(clientID, addr) {
			return &azs[i], true
		}
	}
	return nil, false
}

func (rt *Route) matches(r *Request, host, path string) bool {
	if len(rt.Hostnames) > 0 {
		ok := false
		for _, h := range rt.Hostnames {
			if MatchHostname(h, host) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(rt.Matches) == 0 {
		return true
	}
	for i := range rt.Matches {
		if rt.Matches[i].matches(r, path) {
			return true
		}
	}
	return false
}

func (m *RouteMatch) matches(r *Request, path string) bool {
	if m.Method != "" && !strings.EqualFold(m.Method, r.Method) {
		return false
	}
	if m.Path != nil && !m.Path.matches(path) {
		return false
	}
	for _, h := range m.Headers {
		if !h.matches(r.Headers) {
			return false
		}
	}
	return true
}

func (m *PathMatch) matches(path string) bool {
	switch m.Kind {
	case PathExact:
		return path == m.Value
	case PathRegex:
		return m.Regex != nil && m.Regex.MatchString(path)
	}
	prefix := strings.TrimSuffix(m.Value, "/")
	if prefix == "" {
		return true
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func (h *HeaderMatch) matches(hs Headers) bool {
	if hs == nil {
		return false
	}
	found := false
	hs.Range(func(name, value string) bool {
		if !strings.EqualFold(name, h.Name) {
			return true
		}
		if h.Regex != nil {
			found = h.Regex.MatchString(value)
		} else {
			found = value == h.Value
		}
		return !found
	})
	return found
}
