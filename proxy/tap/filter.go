package tap

import (
	"fmt"
	"net/netip"
	"strings"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/proxy/record"
)

// requestInfo is what a filter looks at.
type requestInfo struct {
	dir                     record.Direction
	method, authority, path string
	source                  string // ip:port
	peer                    *record.Peer
}

// filter is a compiled tapv1.Filter; empty fields match everything.
type filter struct {
	anyDir                        bool
	dir                           record.Direction
	authority, pathPrefix, method string
	clientID, serverID            string
	labels                        []record.Label // names with the dst_ prefix
	sources                       []netip.Addr
}

func compileFilter(f *tapv1.Filter) (filter, error) {
	c := filter{anyDir: true}
	if f == nil {
		return c, nil
	}
	switch f.GetDirection() {
	case "":
	case "inbound":
		c.anyDir, c.dir = false, record.Inbound
	case "outbound":
		c.anyDir, c.dir = false, record.Outbound
	default:
		return c, fmt.Errorf("tap filter: direction %q is not inbound or outbound", f.GetDirection())
	}
	if p := f.GetPathPrefix(); p != "" && !strings.HasPrefix(p, "/") {
		return c, fmt.Errorf("tap filter: path prefix %q must start with /", p)
	}
	c.authority, c.pathPrefix, c.method = f.GetAuthority(), f.GetPathPrefix(), f.GetMethod()
	c.clientID, c.serverID = f.GetClientId(), f.GetServerId()
	for _, s := range f.GetSourceIps() {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return c, fmt.Errorf("tap filter: source ip %q: %w", s, err)
		}
		c.sources = append(c.sources, a.Unmap())
	}
	for k, v := range f.GetDestinationLabels() {
		c.labels = append(c.labels, record.Label{Name: "dst_" + k, Value: v})
	}
	return c, nil
}

func (f *filter) matches(r *requestInfo) bool {
	if !f.anyDir && f.dir != r.dir {
		return false
	}
	if f.method != "" && f.method != r.method {
		return false
	}
	if f.authority != "" && !strings.EqualFold(f.authority, r.authority) {
		return false
	}
	if f.pathPrefix != "" && !strings.HasPrefix(r.path, f.pathPrefix) {
		return false
	}
	if len(f.sources) > 0 && !f.fromSource(r.source) {
		return false
	}
	if f.clientID == "" && f.serverID == "" && len(f.labels) == 0 {
		return true
	}
	p := r.peer
	if p == nil {
		return false
	}
	if (f.clientID != "" && f.clientID != p.ClientID) || (f.serverID != "" && f.serverID != p.ServerID) {
		return false
	}
	for _, want := range f.labels {
		if !hasLabel(p.Labels, want) {
			return false
		}
	}
	return true
}

func hasLabel(ls []record.Label, want record.Label) bool {
	for _, l := range ls {
		if l == want {
			return true
		}
	}
	return false
}

// fromSource reports whether the ip:port source is one of the filter's IPs.
func (f *filter) fromSource(source string) bool {
	ap, err := netip.ParseAddrPort(source)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, a := range f.sources {
		if a == ip {
			return true
		}
	}
	return false
}
