package discovery

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

const example = `
destinations:
  - authority: web.demo.svc.cluster.local:80
    addresses: ["198.19.0.20:80"]
    protocol: http1
    labels: {service: web, namespace: demo}
    endpoints:
      - addr: 198.18.0.5:8080
        identity: spiffe://cluster.local/ns/demo/sa/web
      - addr: 198.18.0.6:8080
        protocol: http2
    routes:
      - name: get-items
        method: GET
        pathRegex: /items/[^/]+
  - addresses: ["198.19.0.30:6379"]
    protocol: opaque
    endpoints: [{addr: "198.18.0.7:6379"}]
  - authority: empty.demo:8080
    endpoints: []
`

func TestStaticResolve(t *testing.T) {
	s, err := ParseStatic([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	orig := netip.MustParseAddrPort("198.18.9.9:1234")
	tests := []struct {
		name      string
		authority string
		orig      netip.AddrPort
		wantAddrs []string
		wantKind  proxyerr.Kind
		wantAuth  string
	}{
		{name: "authority", authority: "web.demo.svc.cluster.local:80", orig: orig,
			wantAddrs: []string{"198.18.0.6:8080", "198.18.0.5:8080"}, wantAuth: "web.demo.svc.cluster.local:80"},
		{name: "bare host means port 80", authority: "web.demo.svc.cluster.local", orig: orig,
			wantAddrs: []string{"198.18.0.5:8080", "198.18.0.6:8080"}, wantAuth: "web.demo.svc.cluster.local:80"},
		{name: "case-insensitive", authority: "WEB.demo.svc.cluster.local:80", orig: orig,
			wantAddrs: []string{"198.18.0.6:8080", "198.18.0.5:8080"}},
		{name: "by address", orig: netip.MustParseAddrPort("198.19.0.30:6379"), wantAddrs: []string{"198.18.0.7:6379"}, wantAuth: "198.19.0.30:6379"},
		{name: "unknown passes through", authority: "other:80", orig: orig, wantAddrs: []string{orig.String()}, wantAuth: "other:80"},
		{name: "no endpoints", authority: "empty.demo:8080", orig: orig, wantKind: proxyerr.NoEndpoints},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			for range 2 * len(tt.wantAddrs) {
				ep, err := s.Resolve(tt.authority, tt.orig)
				if err != nil {
					t.Fatal(err)
				}
				seen[ep.Addr.String()] = true
				if tt.wantAuth != "" && ep.Peer.Authority != tt.wantAuth {
					t.Fatalf("authority %q, want %q", ep.Peer.Authority, tt.wantAuth)
				}
			}
			for _, want := range tt.wantAddrs {
				if !seen[want] || len(seen) != len(tt.wantAddrs) {
					t.Fatalf("resolved to %v, want round-robin over %v", seen, tt.wantAddrs)
				}
			}
			if tt.wantKind != proxyerr.Unknown {
				_, err := s.Resolve(tt.authority, tt.orig)
				if proxyerr.KindOf(err) != tt.wantKind {
					t.Fatalf("err %v, want kind %v", err, tt.wantKind)
				}
			}
		})
	}
	ep, _ := s.Resolve("web.demo.svc.cluster.local:80", orig)
	if len(ep.Peer.Labels) != 2 || ep.Peer.Labels[0].Name != "dst_namespace" || ep.Peer.Labels[1].Value != "web" {
		t.Fatalf("labels %+v", ep.Peer.Labels)
	}
	if ep, _ := s.Resolve("", netip.MustParseAddrPort("198.19.0.30:6379")); ep.Protocol != target.Opaque {
		t.Fatalf("protocol hint %v", ep.Protocol)
	}
	if r := s.Route("web.demo.svc.cluster.local:80", orig, "GET", "/items/7"); r != "get-items" {
		t.Fatalf("route %q", r)
	}
	if r := s.Route("web.demo.svc.cluster.local:80", orig, "POST", "/items/7"); r != "" {
		t.Fatalf("route %q for POST", r)
	}
}

func TestParseStaticErrors(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"destinations: [{endpoints: []}]", "needs an authority or addresses"},
		{"destinations: [{authority: web, endpoints: []}]", "want host:port"},
		{"destinations: [{addresses: [nope], endpoints: []}]", `address "nope"`},
		{"destinations: [{authority: a:1, endpoints: [{addr: x}]}]", "endpoints[0].addr"},
		{"destinations: [{authority: a:1, protocol: h3, endpoints: []}]", `protocol "h3"`},
		{"destinations: [{authority: a:1, endpoints: [{addr: '1.2.3.4:5', identity: bob}]}]", "spiffe://"},
		{"destinations: [{authority: a:1, endpoints: []}, {authority: a:1, endpoints: []}]", "listed twice"},
		{"destinations: [{authority: a:1, labels: {'a-b': c}, endpoints: []}]", `label "a-b"`},
		{"destinations: [{authority: a:1, routes: [{name: r, pathRegex: '('}], endpoints: []}]", "routes[0].pathRegex"},
		{"destinations: [{authority: a:1, surprise: 1, endpoints: []}]", "surprise"},
		{"destinations: {", "parse"},
	}
	for _, tt := range tests {
		_, err := ParseStatic([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseStatic(%q) = %v, want error containing %q", tt.doc, err, tt.want)
		}
	}
}

func TestLoadStatic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.yaml")
	if err := os.WriteFile(p, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadStatic(p); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadStatic(p + ".missing"); err == nil || !strings.Contains(err.Error(), "static discovery") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestPassThrough(t *testing.T) {
	orig := netip.MustParseAddrPort("[fd00:198:18::5]:80")
	ep, err := (&PassThrough{}).Resolve("", orig)
	if err != nil || ep.Addr != orig || ep.Peer.Authority != orig.String() || ep.Peer.TargetAddr != orig.String() {
		t.Fatalf("%+v %v", ep, err)
	}
}

func FuzzParseStatic(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("destinations: []"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatic(b)
		if err != nil {
			return
		}
		// Whatever parsed must resolve without panicking.
		for a := range s.byAuthority {
			s.Resolve(a, netip.AddrPort{})
			s.Route(a, netip.AddrPort{}, "GET", "/")
		}
		for ap := range s.byAddr {
			s.Resolve("", ap)
		}
	})
}

func BenchmarkResolveAuthority(b *testing.B) {
	s, _ := ParseStatic([]byte(example))
	orig := netip.MustParseAddrPort("198.18.9.9:1234")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Resolve("web.demo.svc.cluster.local:80", orig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResolveAddress(b *testing.B) {
	s, _ := ParseStatic([]byte(example))
	orig := netip.MustParseAddrPort("198.19.0.30:6379")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Resolve("", orig); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResolvePassThrough(b *testing.B) {
	var p PassThrough
	orig := netip.MustParseAddrPort("198.18.9.9:1234")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Resolve("web.other:80", orig); err != nil {
			b.Fatal(err)
		}
	}
}
