package dns

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

func service(ns, name string, mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	mut(s)
	return s
}

func slice(ns, svc, name string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
		Endpoints:   eps,
	}
}

func ep(ip string, ready bool, hostname string) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}}
	if hostname != "" {
		e.Hostname = ptr.To(hostname)
	}
	return e
}

func port(name string, p int32, proto corev1.Protocol) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: ptr.To(name), Port: ptr.To(p), Protocol: ptr.To(proto)}
}

// fixture is the cluster every DNS test answers from.
func fixture() []runtime.Object {
	objs := []runtime.Object{
		service("default", "web", func(s *corev1.Service) {
			s.Spec.ClusterIP = "198.19.200.20"
			s.Spec.ClusterIPs = []string{"198.19.200.20", "fd00:198:19::14"}
			s.Spec.Ports = []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			}
		}),
		slice("default", "web", "web-1", []discoveryv1.EndpointPort{port("http", 8080, corev1.ProtocolTCP)},
			ep("198.18.112.5", true, ""), ep("198.18.112.6", false, "")),
		service("data", "db", func(s *corev1.Service) {
			s.Spec.ClusterIP = corev1.ClusterIPNone
			s.Spec.Ports = []corev1.ServicePort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}}
		}),
		slice("data", "db", "db-1", []discoveryv1.EndpointPort{port("pg", 5432, corev1.ProtocolTCP)},
			ep("198.18.112.10", true, "db-0"), ep("198.18.112.11", true, "db-1"), ep("198.18.112.12", false, "db-2")),
		service("data", "empty", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }),
		service("default", "ext", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "Example.COM"
		}),
		service("load", "big", func(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }),
	}
	var many []discoveryv1.Endpoint
	for i := range 100 {
		many = append(many, ep(fmt.Sprintf("198.18.113.%d", i+1), true, ""))
	}
	return append(objs, slice("load", "big", "big-1", nil, many...))
}

// startServer runs a Server on a free loopback port and returns its address once it is synced.
func startServer(t testing.TB, objs ...runtime.Object) (*Server, string) {
	t.Helper()
	return startServerWith(t, fake.NewClientset(objs...))
}

func startServerWith(t testing.TB, client kubernetes.Interface) (*Server, string) {
	t.Helper()
	s, err := New(Config{Client: client, ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	pc, ln, err := s.listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, pc, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !s.synced() {
		if time.Now().After(deadline) {
			t.Fatal("dns caches did not sync")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s, pc.LocalAddr().String()
}

func query(t *testing.T, addr, network, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	c := &mdns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, mdns.TypeToString[qtype], err)
	}
	return r
}

// rrStrings renders records as "<type> <data>" (owner name and TTL are checked separately).
func rrStrings(t *testing.T, owner string, rrs []mdns.RR) []string {
	t.Helper()
	var out []string
	for _, rr := range rrs {
		h := rr.Header()
		if h.Ttl != ttl {
			t.Errorf("%s: ttl %d, want %d", rr, h.Ttl, ttl)
		}
		if owner != "" && h.Name != owner {
			t.Errorf("%s: owner %q, want %q", rr, h.Name, owner)
		}
		f := strings.Fields(rr.String())
		out = append(out, strings.Join(f[3:], " "))
	}
	slices.Sort(out)
	return out
}

func TestAnswers(t *testing.T) {
	_, addr := startServer(t, fixture()...)
	v6rev, _ := mdns.ReverseAddr("fd00:198:19::14")
	tests := []struct {
		name   string
		qtype  uint16
		rcode  int
		answer []string
		extra  []string
	}{
		{"web.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 198.19.200.20"}, nil},
		{"WEB.Default.SVC.cluster.LOCAL.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 198.19.200.20"}, nil},
		{"web.default.svc.cluster.local.", mdns.TypeAAAA, mdns.RcodeSuccess, []string{"AAAA fd00:198:19::14"}, nil},
		{"web.default.svc.cluster.local.", mdns.TypeTXT, mdns.RcodeSuccess, nil, nil},
		{"_http._tcp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess,
			[]string{"SRV 0 100 80 web.default.svc.cluster.local."},
			[]string{"A 198.19.200.20", "AAAA fd00:198:19::14"}},
		{"_dns._udp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess, []string{"SRV 0 100 53 web.default.svc.cluster.local."}, []string{"A 198.19.200.20", "AAAA fd00:198:19::14"}},
		{"_http._udp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeNameError, nil, nil},
		{"_nope._tcp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeNameError, nil, nil},
		{"db.data.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 198.18.112.10", "A 198.18.112.11"}, nil},
		{"db-1.db.data.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 198.18.112.11"}, nil},
		{"db-2.db.data.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"198-18-112-5.web.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 198.18.112.5"}, nil},
		{"_pg._tcp.db.data.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess,
			[]string{"SRV 0 50 5432 db-0.db.data.svc.cluster.local.", "SRV 0 50 5432 db-1.db.data.svc.cluster.local."},
			[]string{"A 198.18.112.10", "A 198.18.112.11"}},
		{"empty.data.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, nil, nil},
		{"ext.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"CNAME example.com."}, nil},
		{"198-18-0-7.default.pod.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{"A 198.18.0.7"}, nil},
		{"20.200.19.198.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR web.default.svc.cluster.local."}, nil},
		{v6rev, mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR web.default.svc.cluster.local."}, nil},
		{"10.112.18.198.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR db-0.db.data.svc.cluster.local."}, nil},
		{"5.112.18.198.in-addr.arpa.", mdns.TypePTR, mdns.RcodeSuccess, []string{"PTR 198-18-112-5.web.default.svc.cluster.local."}, nil},
		{"99.112.18.198.in-addr.arpa.", mdns.TypePTR, mdns.RcodeNameError, nil, nil},
		{"dns-version.cluster.local.", mdns.TypeTXT, mdns.RcodeSuccess, []string{`TXT "1.1.0"`}, nil},
		{"default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, nil, nil},
		{"nons.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"missing.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"foo.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
		{"example.com.", mdns.TypeA, mdns.RcodeRefused, nil, nil},
		{"example.com.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, nil},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name+"/"+mdns.TypeToString[tt.qtype], func(t *testing.T) {
				r := query(t, addr, network, tt.name, tt.qtype)
				if r.Rcode != tt.rcode {
					t.Fatalf("rcode %s, want %s", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tt.rcode])
				}
				if got := rrStrings(t, tt.name, r.Answer); !slices.Equal(got, tt.answer) {
					t.Errorf("answer %q, want %q", got, tt.answer)
				}
				if got := rrStrings(t, "", r.Extra); !slices.Equal(got, tt.extra) {
					t.Errorf("extra %q, want %q", got, tt.extra)
				}
				authoritative := tt.rcode != mdns.RcodeRefused
				if r.Authoritative != authoritative {
					t.Errorf("aa = %v, want %v", r.Authoritative, authoritative)
				}
				if authoritative && len(tt.answer) == 0 {
					if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != mdns.TypeSOA || r.Ns[0].(*mdns.SOA).Minttl != ttl {
						t.Errorf("negative answer authority %v, want one SOA with minimum %d", r.Ns, ttl)
					}
				}
			})
		}
	}
}

func TestTruncation(t *testing.T) {
	_, addr := startServer(t, fixture()...)
	const name = "big.load.svc.cluster.local."
	udp := query(t, addr, "udp", name, mdns.TypeA)
	if !udp.Truncated || len(udp.Answer) >= 100 {
		t.Errorf("udp: truncated=%v with %d answers; want TC and fewer than 100", udp.Truncated, len(udp.Answer))
	}
	udp.Compress = true // as it was sent
	if l := udp.Len(); l > mdns.MinMsgSize {
		t.Errorf("udp answer is %d bytes, want <= %d", l, mdns.MinMsgSize)
	}
	tcp := query(t, addr, "tcp", name, mdns.TypeA)
	if tcp.Truncated || len(tcp.Answer) != 100 {
		t.Errorf("tcp: truncated=%v with %d answers; want all 100", tcp.Truncated, len(tcp.Answer))
	}
	// A client announcing a 4096-byte EDNS0 buffer gets everything over UDP.
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	m.SetEdns0(4096, false)
	r, _, err := (&mdns.Client{Net: "udp", UDPSize: 4096, Timeout: 5 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 100 || r.IsEdns0() == nil {
		t.Errorf("edns udp: truncated=%v answers=%d opt=%v; want all 100 with OPT", r.Truncated, len(r.Answer), r.IsEdns0())
	}
}

// TestFollowsInformers checks that Service and EndpointSlice changes reach answers.
func TestFollowsInformers(t *testing.T) {
	client := fake.NewClientset()
	_, addr := startServerWith(t, client)
	ctx := context.Background()
	svc := service("late", "api", func(s *corev1.Service) { s.Spec.ClusterIP = "198.19.200.30" })
	if _, err := client.CoreV1().Services("late").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, addr, "api.late.svc.cluster.local.", "A 198.19.200.30")
	if err := client.CoreV1().Services("late").Delete(ctx, "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRcode(t, addr, "api.late.svc.cluster.local.", mdns.RcodeNameError)
}

func TestNotSyncedIsServfail(t *testing.T) {
	s, err := New(Config{Client: fake.NewClientset(), ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	m := new(mdns.Msg)
	m.SetQuestion("web.default.svc.cluster.local.", mdns.TypeA)
	if r := s.answer(m); r.Rcode != mdns.RcodeServerFailure {
		t.Errorf("rcode %s before sync, want SERVFAIL", mdns.RcodeToString[r.Rcode])
	}
	m.SetQuestion("example.com.", mdns.TypeA)
	if r := s.answer(m); r.Rcode != mdns.RcodeRefused {
		t.Errorf("rcode %s for outside name, want REFUSED", mdns.RcodeToString[r.Rcode])
	}
}

func TestConfigErrors(t *testing.T) {
	client := fake.NewClientset()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no client", Config{ListenAddr: "127.0.0.1:53"}, "Client is required"},
		{"bad addr", Config{Client: client, ListenAddr: "127.0.0.1"}, "listen address"},
		{"bad domain", Config{Client: client, ListenAddr: "127.0.0.1:53", ClusterDomain: "a..b"}, "invalid cluster domain"},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
		}
	}
}

// FuzzAnswer feeds arbitrary names and types to the handler: it must never panic and every
// answer must be packable.
func FuzzAnswer(f *testing.F) {
	s, _ := startServer(f, fixture()...)
	f.Add("_pg._tcp.db.data.svc.cluster.local.", uint16(mdns.TypeSRV))
	f.Add("db.data.svc.cluster.local.", uint16(mdns.TypeANY))
	f.Add("10.112.18.198.in-addr.arpa.", uint16(mdns.TypePTR))
	f.Add("x.y.pod.cluster.local.", uint16(mdns.TypeAAAA))
	f.Fuzz(func(t *testing.T, name string, qtype uint16) {
		if _, ok := mdns.IsDomainName(name); !ok {
			return
		}
		m := new(mdns.Msg)
		m.SetQuestion(mdns.Fqdn(name), qtype)
		if _, err := m.Pack(); err != nil {
			return // not a query that could arrive over the wire
		}
		r := s.answer(m)
		fit(r, m, true)
		if _, err := r.Pack(); err != nil {
			t.Fatalf("pack answer for %q: %v", name, err)
		}
	})
}

func waitAnswer(t *testing.T, addr, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := query(t, addr, "udp", name, mdns.TypeA)
		if got := rrStrings(t, "", r.Answer); slices.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %q", name, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitRcode(t *testing.T, addr, name string, rcode int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for query(t, addr, "udp", name, mdns.TypeA).Rcode != rcode {
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %s", name, mdns.RcodeToString[rcode])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkQueryUDP measures sequential A queries over loopback UDP (one exchange per op).
func BenchmarkQueryUDP(b *testing.B) {
	_, addr := startServer(b, fixture()...)
	c := &mdns.Client{Net: "udp", Timeout: 5 * time.Second}
	conn, err := c.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	m := new(mdns.Msg)
	m.SetQuestion("web.default.svc.cluster.local.", mdns.TypeA)
	for b.Loop() {
		r, _, err := c.ExchangeWithConn(m, conn)
		if err != nil || len(r.Answer) != 1 {
			b.Fatalf("%v %v", r, err)
		}
	}
}
