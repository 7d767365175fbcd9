package discovery

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync/atomic"

	"sigs.k8s.io/yaml"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// File is the STATIC_DISCOVERY document.
type File struct {
	// Destinations lists the known targets; order does not matter.
	Destinations []Destination `json:"destinations"`
}

// Destination maps an authority and/or addresses to endpoints.
type Destination struct {
	// Authority is host:port as clients address it (Host / :authority).
	// A port of 80 also matches the bare host. Empty: addresses only.
	Authority string `json:"authority,omitempty"`
	// Addresses are ip:port original destinations (e.g. a ClusterIP) that
	// resolve here when no authority matched (opaque TCP, unknown Host).
	Addresses []string `json:"addresses,omitempty"`
	// Protocol is the default hint for endpoints: http1, http2 or opaque;
	// empty means detect.
	Protocol string `json:"protocol,omitempty"`
	// Labels become dst_<name> metric labels.
	Labels map[string]string `json:"labels,omitempty"`
	// Endpoints receive the traffic, round-robin. An empty list means the
	// target has no endpoints: requests fail with 503.
	Endpoints []EndpointSpec `json:"endpoints"`
	// Routes is an optional route profile: the first match names the route
	// (rt_route in metrics).
	Routes []RouteSpec `json:"routes,omitempty"`
}

// EndpointSpec is one endpoint.
type EndpointSpec struct {
	Addr     string `json:"addr"`               // ip:port
	Identity string `json:"identity,omitempty"` // SPIFFE ID; empty = not meshed
	Protocol string `json:"protocol,omitempty"` // overrides the destination's hint
}

// RouteSpec names a class of requests.
type RouteSpec struct {
	Name      string `json:"name"`
	Method    string `json:"method,omitempty"`    // empty matches any
	PathRegex string `json:"pathRegex,omitempty"` // anchored; empty matches any
}

// Static is a Resolver over a parsed File. It is immutable and safe for
// concurrent use.
type Static struct {
	names       names
	byAuthority map[string]*dest
	byAddr      map[netip.AddrPort]*dest
}

type dest struct {
	authority string
	endpoints []target.Endpoint
	routes    []route
	next      atomic.Uint32
}

type route struct {
	name   string
	method string
	path   *regexp.Regexp
}

// LoadStatic reads and parses a STATIC_DISCOVERY file.
func LoadStatic(path string) (*Static, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("static discovery: %w", err)
	}
	s, err := ParseStatic(b)
	if err != nil {
		return nil, fmt.Errorf("static discovery %s: %w", path, err)
	}
	return s, nil
}

// ParseStatic parses a STATIC_DISCOVERY document; unknown fields are errors.
func ParseStatic(b []byte) (*Static, error) {
	var f File
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	s := &Static{byAuthority: map[string]*dest{}, byAddr: map[netip.AddrPort]*dest{}}
	for i, d := range f.Destinations {
		if err := s.add(d); err != nil {
			return nil, fmt.Errorf("destinations[%d]: %w", i, err)
		}
	}
	return s, nil
}

func (s *Static) add(d Destination) error {
	if d.Authority == "" && len(d.Addresses) == 0 {
		return errors.New("needs an authority or addresses")
	}
	def, err := parseProtocol(d.Protocol)
	if err != nil {
		return err
	}
	ds := &dest{}
	var labels []record.Label
	for k, v := range d.Labels {
		if !validLabelName(k) {
			return fmt.Errorf("label %q: want [a-zA-Z_][a-zA-Z0-9_]*", k)
		}
		labels = append(labels, record.Label{Name: "dst_" + k, Value: v})
	}
	sortLabels(labels)
	auth := strings.ToLower(d.Authority)
	if auth != "" {
		host, port, ok := strings.Cut(auth, ":")
		if !ok || host == "" || port == "" {
			return fmt.Errorf("authority %q: want host:port", d.Authority)
		}
		if _, dup := s.byAuthority[auth]; dup {
			return fmt.Errorf("authority %q listed twice", d.Authority)
		}
		s.byAuthority[auth] = ds
		if port == "80" {
			s.byAuthority[host] = ds
		}
	}
	ds.authority = auth
	for _, a := range d.Addresses {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return fmt.Errorf("address %q: %w", a, err)
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if _, dup := s.byAddr[ap]; dup {
			return fmt.Errorf("address %q listed twice", a)
		}
		s.byAddr[ap] = ds
		if ds.authority == "" {
			ds.authority = ap.String()
		}
	}
	for j, e := range d.Endpoints {
		ap, err := netip.ParseAddrPort(e.Addr)
		if err != nil {
			return fmt.Errorf("endpoints[%d].addr %q: %w", j, e.Addr, err)
		}
		p := def
		if e.Protocol != "" {
			if p, err = parseProtocol(e.Protocol); err != nil {
				return fmt.Errorf("endpoints[%d]: %w", j, err)
			}
		}
		if e.Identity != "" && !strings.HasPrefix(e.Identity, "spiffe://") {
			return fmt.Errorf("endpoints[%d].identity %q: want a spiffe:// ID", j, e.Identity)
		}
		peer := peerOf(ds.authority, ap.String())
		peer.ServerID = e.Identity
		peer.Labels = labels
		ds.endpoints = append(ds.endpoints, target.Endpoint{Addr: ap, Identity: e.Identity, Protocol: p, Peer: peer})
	}
	for j, r := range d.Routes {
		if r.Name == "" {
			return fmt.Errorf("routes[%d]: needs a name", j)
		}
		rt := route{name: r.Name, method: strings.ToUpper(r.Method)}
		if r.PathRegex != "" {
			re, err := regexp.Compile("^(?:" + r.PathRegex + ")$")
			if err != nil {
				return fmt.Errorf("routes[%d].pathRegex: %w", j, err)
			}
			rt.path = re
		}
		ds.routes = append(ds.routes, rt)
	}
	return nil
}

// Resolve implements Resolver: the authority first, then the original
// destination, else pass-through. It does not allocate for known targets.
func (s *Static) Resolve(authority string, orig netip.AddrPort) (target.Endpoint, error) {
	d := s.lookup(authority, orig)
	if d == nil {
		return s.names.passThrough(authority, orig), nil
	}
	if len(d.endpoints) == 0 {
		return target.Endpoint{}, proxyerr.New(proxyerr.NoEndpoints, errNoEndpoints)
	}
	i := d.next.Add(1) % uint32(len(d.endpoints))
	return d.endpoints[i], nil
}

var errNoEndpoints = errors.New("destination has no endpoints")

func (s *Static) lookup(authority string, orig netip.AddrPort) *dest {
	if authority != "" {
		if d, ok := s.byAuthority[authority]; ok {
			return d
		}
		if hasUpper(authority) {
			var buf [256]byte
			if len(authority) <= len(buf) {
				b := bytes.ToLower(append(buf[:0], authority...))
				if d, ok := s.byAuthority[string(b)]; ok {
					return d
				}
			}
		}
	}
	return s.byAddr[netip.AddrPortFrom(orig.Addr().Unmap(), orig.Port())]
}

// Route names the first route of the destination matching method and path;
// "" when none matches or the target is unknown.
func (s *Static) Route(authority string, orig netip.AddrPort, method, path string) string {
	d := s.lookup(authority, orig)
	if d == nil {
		return ""
	}
	for i := range d.routes {
		r := &d.routes[i]
		if r.method != "" && r.method != method {
			continue
		}
		if r.path != nil && !r.path.MatchString(path) {
			continue
		}
		return r.name
	}
	return ""
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func parseProtocol(s string) (target.Protocol, error) {
	switch s {
	case "":
		return target.Unknown, nil
	case "http1":
		return target.HTTP1, nil
	case "http2":
		return target.HTTP2, nil
	case "opaque":
		return target.Opaque, nil
	}
	return 0, fmt.Errorf("protocol %q: want http1, http2 or opaque", s)
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

func sortLabels(ls []record.Label) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].Name < ls[j-1].Name; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

func peerOf(authority, addr string) record.Peer {
	return record.Peer{Authority: authority, TargetAddr: addr}
}
