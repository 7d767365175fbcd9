package svcproxy

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

var (
	testServiceCIDR = netip.MustParsePrefix("198.19.200.0/24")
	testPodCIDR     = netip.MustParsePrefix("198.18.112.0/24")
	testClusterDNS  = netip.MustParseAddr("198.19.200.10")
)

func svc(ns, name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, Ports: ports},
	}
}

func sport(name string, port int32, proto corev1.Protocol) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, Protocol: proto}
}

type cond struct{ ready, serving, terminating *bool }

var (
	readyC       = cond{ready: ptr.To(true)}
	notReadyC    = cond{ready: ptr.To(false)}
	terminatingC = cond{ready: ptr.To(false), serving: ptr.To(true), terminating: ptr.To(true)}
)

func eslice(ns, svcName, name string, ports []discoveryv1.EndpointPort, eps map[string]cond) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
	}
	keys := make([]string, 0, len(eps))
	for ip := range eps {
		keys = append(keys, ip)
	}
	slices.Sort(keys)
	for _, ip := range keys {
		c := eps[ip]
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: c.ready, Serving: c.serving, Terminating: c.terminating}})
	}
	return s
}

func eport(name string, port int32, proto corev1.Protocol) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Port: ptr.To(port), Protocol: ptr.To(proto)}
}

func TestBuildServicePorts(t *testing.T) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	headless := svc("default", "headless", corev1.ClusterIPNone, sport("http", 80, tcp))
	ext := svc("default", "ext", "", sport("http", 80, tcp))
	ext.Spec.Type = corev1.ServiceTypeExternalName
	svcs := []*corev1.Service{
		svc("default", "web", "198.19.200.20", sport("http", 80, tcp), sport("dns", 53, udp), sport("sctp", 9, corev1.ProtocolSCTP)),
		svc("default", "draining", "198.19.200.21", sport("", 80, tcp)),
		svc("default", "none", "198.19.200.22", sport("", 80, tcp)),
		svc("default", "outside", "10.0.0.1", sport("", 80, tcp)),
		svc("kube-system", "kube-dns", testClusterDNS.String(), sport("dns", 53, udp)),
		headless, ext,
	}
	slicesBySvc := map[string][]*discoveryv1.EndpointSlice{
		"default/web": {
			eslice("default", "web", "web-a", []discoveryv1.EndpointPort{eport("http", 8080, tcp), eport("dns", 5353, udp)},
				map[string]cond{"198.18.112.5": readyC, "198.18.112.6": notReadyC, "198.18.112.7": {}}),
			eslice("default", "web", "web-b", []discoveryv1.EndpointPort{eport("http", 8080, tcp)},
				map[string]cond{"198.18.112.5": readyC, "198.18.112.8": terminatingC}),
		},
		"default/draining": {
			eslice("default", "draining", "d", []discoveryv1.EndpointPort{eport("", 8080, tcp)},
				map[string]cond{"198.18.112.9": terminatingC, "198.18.112.10": notReadyC}),
		},
		"default/none": {eslice("default", "none", "n", []discoveryv1.EndpointPort{eport("", 8080, tcp)}, map[string]cond{"198.18.112.11": notReadyC})},
	}
	got, skipped := buildServicePorts(svcs, slicesBySvc, testServiceCIDR, testClusterDNS)
	var rendered []string
	for _, sp := range got {
		var eps []string
		for _, ep := range sp.endpoints {
			eps = append(eps, ep.String())
		}
		rendered = append(rendered, sp.name+" "+sp.clusterIP.String()+":"+strconv.Itoa(int(sp.port))+"/"+string(sp.protocol)+" -> "+strings.Join(eps, ","))
	}
	want := []string{
		"default/draining: 198.19.200.21:80/TCP -> 198.18.112.9:8080",
		"default/none: 198.19.200.22:80/TCP -> ",
		"default/web:dns 198.19.200.20:53/UDP -> 198.18.112.5:5353,198.18.112.7:5353",
		"default/web:http 198.19.200.20:80/TCP -> 198.18.112.5:8080,198.18.112.7:8080",
	}
	if !slices.Equal(rendered, want) {
		t.Errorf("service ports:\n%s\nwant:\n%s", strings.Join(rendered, "\n"), strings.Join(want, "\n"))
	}
	if len(skipped) != 3 {
		t.Errorf("skipped %q, want the SCTP port, the out-of-range IP and the cluster DNS IP", skipped)
	}
}

func TestRender(t *testing.T) {
	p, err := New(Config{Client: fake.NewClientset(), ServiceCIDR: testServiceCIDR, PodCIDR: testPodCIDR,
		ClusterDNS: testClusterDNS, DNSTarget: netip.MustParseAddrPort("198.18.112.1:53"), ChainPrefix: "ABCDEFGHIJK"})
	if err != nil {
		t.Fatal(err)
	}
	three := servicePort{name: "default/web:http", clusterIP: netip.MustParseAddr("198.19.200.20"), port: 80, protocol: corev1.ProtocolTCP,
		endpoints: []netip.AddrPort{netip.MustParseAddrPort("198.18.112.5:8080"), netip.MustParseAddrPort("198.18.112.6:8080"), netip.MustParseAddrPort("198.18.112.7:8080")}}
	empty := servicePort{name: "default/none:", clusterIP: netip.MustParseAddr("198.19.200.22"), port: 53, protocol: corev1.ProtocolUDP}
	rs := p.render([]servicePort{three, empty}, []string{"ABCDEFGHIJK-SVC-OLD"}, true)
	out := string(rs.payload)
	for _, line := range []string{
		"-A ABCDEFGHIJK-SERVICES -d 198.19.200.10/32 -p udp -m udp --dport 53 -m comment --comment \"cluster DNS\" -j DNAT --to-destination 198.18.112.1:53",
		"-A " + p.chains.svc(three) + " -s 198.18.112.0/24 -j ABCDEFGHIJK-MARK-MASQ",
		"-A " + p.chains.svc(three) + " -m statistic --mode random --probability 0.3333333333 -j " + p.chains.sep(three, three.endpoints[0]),
		"-A " + p.chains.svc(three) + " -m statistic --mode random --probability 0.5000000000 -j " + p.chains.sep(three, three.endpoints[1]),
		"-A " + p.chains.svc(three) + " -j " + p.chains.sep(three, three.endpoints[2]),
		"-A " + p.chains.sep(three, three.endpoints[2]) + " -p tcp -m tcp -j DNAT --to-destination 198.18.112.7:8080",
		"-A " + p.chains.sep(three, three.endpoints[2]) + " -s 198.18.112.7/32 -j ABCDEFGHIJK-MARK-MASQ",
		"-A ABCDEFGHIJK-SERVICES -d 198.19.200.22/32 -p udp -m udp --dport 53 -m comment --comment \"default/none:\" -j REJECT --reject-with icmp-port-unreachable",
		":ABCDEFGHIJK-SVC-OLD - [0:0]",
		"-X ABCDEFGHIJK-SVC-OLD",
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("payload lacks %q:\n%s", line, out)
		}
	}
	for _, ch := range rs.nat {
		if len(ch) > 28 {
			t.Errorf("chain %q is longer than iptables' 28 characters", ch)
		}
	}
	if len(rs.nat) != 3+1+3 {
		t.Errorf("nat chains %q, want the 3 fixed ones, one SVC and three SEP", rs.nat)
	}
}

func TestConfigErrors(t *testing.T) {
	ok := Config{Client: fake.NewClientset(), ServiceCIDR: testServiceCIDR, PodCIDR: testPodCIDR,
		ClusterDNS: testClusterDNS, DNSTarget: netip.MustParseAddrPort("198.18.112.1:53")}
	if _, err := New(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"no client", func(c *Config) { c.Client = nil }, "Client is required"},
		{"no service cidr", func(c *Config) { c.ServiceCIDR = netip.Prefix{} }, "ServiceCIDR"},
		{"v6 pod cidr", func(c *Config) { c.PodCIDR = netip.MustParsePrefix("fd00::/64") }, "PodCIDR"},
		{"dns outside", func(c *Config) { c.ClusterDNS = netip.MustParseAddr("10.0.0.10") }, "inside ServiceCIDR"},
		{"no dns target", func(c *Config) { c.DNSTarget = netip.AddrPort{} }, "DNSTarget"},
		{"long prefix", func(c *Config) { c.ChainPrefix = "ABCDEFGHIJKL" }, "ChainPrefix"},
		{"lower prefix", func(c *Config) { c.ChainPrefix = "weft" }, "ChainPrefix"},
	}
	for _, tt := range tests {
		c := ok
		tt.mut(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
		}
	}
}
