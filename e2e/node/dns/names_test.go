package dns

import (
	"net/netip"
	"testing"

	mdns "github.com/miekg/dns"
)

func TestParseClusterName(t *testing.T) {
	const zone = "cluster.local."
	tests := []struct {
		name   string
		inZone bool
		want   clusterName
	}{
		{"cluster.local.", true, clusterName{kind: kindApex}},
		{"dns-version.cluster.local.", true, clusterName{kind: kindVersion}},
		{"svc.cluster.local.", true, clusterName{kind: kindSvcRoot}},
		{"pod.cluster.local.", true, clusterName{kind: kindPodRoot}},
		{"default.svc.cluster.local.", true, clusterName{kind: kindNamespace, namespace: "default"}},
		{"web.default.svc.cluster.local.", true, clusterName{kind: kindService, namespace: "default", service: "web"}},
		{"db-0.db.data.svc.cluster.local.", true, clusterName{kind: kindEndpoint, namespace: "data", service: "db", endpoint: "db-0"}},
		{"_http._tcp.web.default.svc.cluster.local.", true, clusterName{kind: kindPort, namespace: "default", service: "web", port: "http", proto: "tcp"}},
		{"_http._icmp.web.default.svc.cluster.local.", true, clusterName{kind: kindUnknown}},
		{"_http.web.default.svc.cluster.local.", true, clusterName{kind: kindUnknown}},
		{"a.b.c.d.e.svc.cluster.local.", true, clusterName{kind: kindUnknown}},
		{"198-18-0-5.default.pod.cluster.local.", true, clusterName{kind: kindPod, namespace: "default", podIP: netip.MustParseAddr("198.18.0.5")}},
		{"fd00--5.default.pod.cluster.local.", true, clusterName{kind: kindPod, namespace: "default", podIP: netip.MustParseAddr("fd00::5")}},
		{"198-18-0.default.pod.cluster.local.", true, clusterName{kind: kindUnknown}},
		{"foo.cluster.local.", true, clusterName{kind: kindUnknown}},
		{"example.com.", false, clusterName{}},
		{"notcluster.local.", false, clusterName{}},
		{"local.", false, clusterName{}},
	}
	for _, tt := range tests {
		got, ok := parseClusterName(tt.name, zone)
		if ok != tt.inZone || got != tt.want {
			t.Errorf("parseClusterName(%q) = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.inZone)
		}
	}
}

func TestParseReverseName(t *testing.T) {
	v6, _ := mdns.ReverseAddr("fd00:198:19::14")
	tests := []struct {
		name string
		want string // "" means not a reverse name
	}{
		{"20.200.19.198.in-addr.arpa.", "198.19.200.20"},
		{"200.19.198.in-addr.arpa.", ""},
		{"256.200.19.198.in-addr.arpa.", ""},
		{"020.200.19.198.in-addr.arpa.", ""},
		{v6, "fd00:198:19::14"},
		{"1.ip6.arpa.", ""},
		{"example.com.", ""},
	}
	for _, tt := range tests {
		got, ok := parseReverseName(tt.name)
		if (tt.want == "") == ok || ok && got.String() != tt.want {
			t.Errorf("parseReverseName(%q) = %v, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}

// FuzzParseClusterName checks that parsing never panics and that what it parses round-trips.
func FuzzParseClusterName(f *testing.F) {
	for _, s := range []string{
		"web.default.svc.cluster.local.", "_http._tcp.web.default.svc.cluster.local.",
		"db-0.db.data.svc.cluster.local.", "1-2-3-4.ns.pod.cluster.local.", "fd00--1.ns.pod.cluster.local.",
		"4.3.2.1.in-addr.arpa.", `a\.b.svc.cluster.local.`, "..cluster.local.", "cluster.local.",
	} {
		f.Add(s)
	}
	const zone = "cluster.local."
	f.Fuzz(func(t *testing.T, name string) {
		name = mdns.CanonicalName(name)
		if _, ok := mdns.IsDomainName(name); !ok {
			return
		}
		cn, ok := parseClusterName(name, zone)
		if ok {
			var rebuilt string
			switch cn.kind {
			case kindService:
				rebuilt = cn.service + "." + cn.namespace + ".svc." + zone
			case kindEndpoint:
				rebuilt = cn.endpoint + "." + cn.service + "." + cn.namespace + ".svc." + zone
			case kindPort:
				rebuilt = "_" + cn.port + "._" + cn.proto + "." + cn.service + "." + cn.namespace + ".svc." + zone
			case kindPod:
				back, ok := parseDashedIP(dashedIP(cn.podIP))
				if !ok || back != cn.podIP {
					t.Fatalf("pod ip %v does not round-trip", cn.podIP)
				}
			}
			if rebuilt != "" && rebuilt != name {
				t.Fatalf("parse(%q) = %+v rebuilds as %q", name, cn, rebuilt)
			}
		}
		if ip, ok := parseReverseName(name); ok {
			arpa, err := mdns.ReverseAddr(ip.String())
			if err != nil || arpa != name {
				t.Fatalf("reverse %q -> %v -> %q (%v)", name, ip, arpa, err)
			}
		}
	})
}
