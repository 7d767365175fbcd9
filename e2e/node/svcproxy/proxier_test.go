package svcproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftmesh/weft/e2e/node/dns"
)

const backendPort = 8080

// startBackend serves on <pod>:8080 a line "<name> <client address>" per connection.
func startBackend(t *testing.T, netns, name string) {
	t.Helper()
	var ln net.Listener
	var err error
	inNetns(t, netns, func() { ln, err = net.Listen("tcp", fmt.Sprintf(":%d", backendPort)) })
	if err != nil {
		t.Fatalf("listen in %s: %v", netns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			fmt.Fprintf(c, "%s %s\n", name, host)
			c.Close()
		}
	}()
}

// dialMany makes n sequential connections from netns to addr and returns the lines the backends
// wrote, keyed by backend name, plus the client addresses backends saw.
func dialMany(t *testing.T, netns, addr string, n int) (byBackend map[string]int, peers map[string]int, err error) {
	t.Helper()
	byBackend, peers = map[string]int{}, map[string]int{}
	inNetns(t, netns, func() {
		for range n {
			var c net.Conn
			c, err = net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			var line string
			line, err = bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) != 2 {
				err = fmt.Errorf("bad backend line %q", line)
				return
			}
			byBackend[f[0]]++
			peers[f[1]]++
		}
	})
	return byBackend, peers, err
}

func webSlice(ips ...netip.Addr) *discoveryv1.EndpointSlice {
	eps := map[string]cond{}
	for _, ip := range ips {
		eps[ip.String()] = readyC
	}
	return eslice("default", "web", "web-1", []discoveryv1.EndpointPort{eport("http", backendPort, corev1.ProtocolTCP)}, eps)
}

type testProxier struct {
	*Proxier
	net    *testNet
	client kubernetes.Interface
	stop   func() // stops Run and waits for it; idempotent
}

// startProxier runs a Proxier programming the node namespace of tn.
func startProxier(t *testing.T, tn *testNet, masqAll bool, objs ...any) *testProxier {
	t.Helper()
	client := fake.NewClientset()
	ctx := context.Background()
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *corev1.Service:
			_, err = client.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *discoveryv1.EndpointSlice:
			_, err = client.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	prefix := "WSV" + strings.ToUpper(strconv.FormatInt(int64(os.Getpid()), 36)) + strconv.Itoa(int(netCounter.Load()%10))
	p, err := New(Config{
		Client:        client,
		ServiceCIDR:   testServiceCIDR,
		PodCIDR:       testPodCIDR,
		ClusterDNS:    testClusterDNS,
		DNSTarget:     netip.AddrPortFrom(netip.MustParseAddr(gatewayIP), 53),
		ChainPrefix:   prefix,
		NetNS:         tn.node,
		MasqueradeAll: masqAll,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() {
		stop()
		if err := p.Cleanup(); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return &testProxier{Proxier: p, net: tn, client: client, stop: stop}
}

// waitRules waits until the applied rules contain (or, with present false, lack) s.
func (tp *testProxier) waitRules(t *testing.T, s string, present bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Contains(string(tp.appliedRules()), s) != present {
		if time.Now().After(deadline) {
			t.Fatalf("rules never had %q present=%v:\n%s", s, present, tp.appliedRules())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// saveNode returns iptables-save of the node namespace.
func saveNode(t *testing.T, tn *testNet) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", tn.node, "iptables-save").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v: %s", err, out)
	}
	return string(out)
}

func TestProxier(t *testing.T) {
	tn := newTestNet(t, 3) // pods 0 and 1 are backends, pod 2 a client
	startBackend(t, tn.pods[0], "pod0")
	startBackend(t, tn.pods[1], "pod1")
	web := svc("default", "web", "198.19.200.20", sport("http", 80, corev1.ProtocolTCP))
	self := svc("default", "self", "198.19.200.21", sport("", 80, corev1.ProtocolTCP))
	selfSlice := eslice("default", "self", "self-1", []discoveryv1.EndpointPort{eport("", backendPort, corev1.ProtocolTCP)},
		map[string]cond{tn.podIPs[0].String(): readyC})
	empty := svc("default", "empty", "198.19.200.22", sport("", 80, corev1.ProtocolTCP))
	tp := startProxier(t, tn, false, web, webSlice(tn.podIPs[0], tn.podIPs[1]), self, selfSlice, empty)
	tp.waitRules(t, "198.19.200.20/32", true)
	tp.waitRules(t, "198.19.200.21/32", true)
	tp.waitRules(t, "198.19.200.22/32", true)
	const webAddr = "198.19.200.20:80"

	t.Run("jumps installed once", func(t *testing.T) {
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(saveNode(t, tn), "-j "+tp.chains.services()) != 4 {
			if time.Now().After(deadline) {
				t.Fatalf("want 4 jumps to %s:\n%s", tp.chains.services(), saveNode(t, tn))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("both backends receive connections", func(t *testing.T) {
		got, peers, err := dialMany(t, tn.pods[2], webAddr, 200)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if got["pod0"]+got["pod1"] != 200 || got["pod0"] == 0 || got["pod1"] == 0 {
			t.Errorf("backends got %v, want 200 connections spread over pod0 and pod1", got)
		}
		// br_netfilter is on: the client address is preserved for pod-to-pod service traffic.
		if peers[tn.podIPs[2].String()] != 200 {
			t.Errorf("backends saw clients %v, want all from %s", peers, tn.podIPs[2])
		}
		t.Logf("distribution over 200 connections: %v", got)
	})

	t.Run("hairpin", func(t *testing.T) {
		got, peers, err := dialMany(t, tn.pods[0], "198.19.200.21:80", 20)
		if err != nil || got["pod0"] != 20 {
			t.Fatalf("pod0 to its own service: %v, %v", got, err)
		}
		if peers[gatewayIP] != 20 {
			t.Errorf("hairpin clients %v, want masqueraded to %s", peers, gatewayIP)
		}
		// pod1 through the service that includes itself and pod0.
		got, _, err = dialMany(t, tn.pods[1], webAddr, 50)
		if err != nil || got["pod0"]+got["pod1"] != 50 {
			t.Fatalf("pod1 to web: %v, %v", got, err)
		}
	})

	t.Run("no endpoints is refused", func(t *testing.T) {
		_, _, err := dialMany(t, tn.pods[2], "198.19.200.22:80", 1)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial service without endpoints: %v, want connection refused", err)
		}
	})

	t.Run("endpoints appearing replace the reject", func(t *testing.T) {
		sl := eslice("default", "empty", "empty-1", []discoveryv1.EndpointPort{eport("", backendPort, corev1.ProtocolTCP)},
			map[string]cond{tn.podIPs[1].String(): readyC})
		if _, err := tp.client.DiscoveryV1().EndpointSlices("default").Create(context.Background(), sl, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tp.waitRules(t, "--comment \"default/empty:\" -j REJECT", false)
		got, _, err := dialMany(t, tn.pods[2], "198.19.200.22:80", 5)
		if err != nil || got["pod1"] != 5 {
			t.Fatalf("after adding an endpoint: %v, %v", got, err)
		}
		if err := tp.client.CoreV1().Services("default").Delete(context.Background(), "empty", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		tp.waitRules(t, "198.19.200.22/32", false)
	})

	t.Run("removed endpoint leaves rotation", func(t *testing.T) {
		sp := servicePort{name: "default/web:http", protocol: corev1.ProtocolTCP}
		gone := tp.chains.sep(sp, netip.AddrPortFrom(tn.podIPs[0], backendPort))
		tp.waitRules(t, "-j "+gone+"\n", true)
		if _, err := tp.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(),
			webSlice(tn.podIPs[1]), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		tp.waitRules(t, "-j "+gone+"\n", false)
		got, _, err := dialMany(t, tn.pods[2], webAddr, 50)
		if err != nil || got["pod1"] != 50 {
			t.Fatalf("after removing pod0: %v, %v; want all 50 on pod1", got, err)
		}
		if strings.Contains(saveNode(t, tn), gone) {
			t.Errorf("chain %s still exists", gone)
		}
	})

	t.Run("cluster DNS rule", func(t *testing.T) {
		startDNSInNetns(t, tn.node, web)
		for _, network := range []string{"udp", "tcp"} {
			r := queryWithRetry(t, tn.pods[2], network, testClusterDNS.String()+":53", "web.default.svc.cluster.local.")
			if len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != "198.19.200.20" {
				t.Errorf("%s: answer %v, want A 198.19.200.20", network, r.Answer)
			}
		}
	})

	t.Run("cleanup removes everything", func(t *testing.T) {
		tp.stop()
		if err := tp.Cleanup(); err != nil {
			t.Fatal(err)
		}
		if out := saveNode(t, tn); strings.Contains(out, tp.chains.prefix) {
			t.Errorf("rules with %s left after Cleanup:\n%s", tp.chains.prefix, out)
		}
		if err := tp.Cleanup(); err != nil {
			t.Errorf("second Cleanup: %v", err)
		}
	})
}

// TestMasqueradeWithoutBrNetfilter checks that with bridged traffic bypassing iptables the
// proxier masquerades pod-to-service traffic, so replies between pods on one bridge still work.
func TestMasqueradeWithoutBrNetfilter(t *testing.T) {
	tn := newTestNet(t, 2)
	ipCmd(t, "netns", "exec", tn.node, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")
	startBackend(t, tn.pods[0], "pod0")
	web := svc("default", "web", "198.19.200.20", sport("http", 80, corev1.ProtocolTCP))
	tp := startProxier(t, tn, false, web, webSlice(tn.podIPs[0]))
	tp.waitRules(t, "-s "+testPodCIDR.String()+" -j "+tp.chains.markMasq(), true)
	got, peers, err := dialMany(t, tn.pods[1], "198.19.200.20:80", 20)
	if err != nil || got["pod0"] != 20 {
		t.Fatalf("pod1 to web: %v, %v", got, err)
	}
	if peers[gatewayIP] != 20 {
		t.Errorf("clients %v, want all masqueraded to %s", peers, gatewayIP)
	}
}

// startDNSInNetns runs a dns.Server from the dns package on the node's bridge address.
func startDNSInNetns(t *testing.T, netns string, objs ...*corev1.Service) {
	t.Helper()
	client := fake.NewClientset()
	for _, o := range objs {
		if _, err := client.CoreV1().Services(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := dns.New(dns.Config{Client: client, ListenAddr: gatewayIP + ":53"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// The thread stays in the namespace; it exits with this goroutine.
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		if err != nil {
			done <- err
			return
		}
		done <- s.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dns: %v", err)
		}
	})
}

// queryWithRetry asks addr from netns until the DNS server is up and synced.
func queryWithRetry(t *testing.T, netns, network, addr, name string) *mdns.Msg {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var r *mdns.Msg
		var err error
		inNetns(t, netns, func() {
			m := new(mdns.Msg)
			m.SetQuestion(name, mdns.TypeA)
			r, _, err = (&mdns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, addr)
		})
		if err == nil && r.Rcode == mdns.RcodeSuccess {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s via %s: %v %v", network, name, addr, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

const udpBackendPort = 9090

// startUDPBackend answers every datagram on <pod>:9090 with name.
func startUDPBackend(t *testing.T, netns, name string) {
	t.Helper()
	var pc net.PacketConn
	var err error
	inNetns(t, netns, func() { pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", udpBackendPort)) })
	if err != nil {
		t.Fatalf("listen udp in %s: %v", netns, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name), from)
		}
	}()
}

// TestUDPEndpointChange checks UDP services and that a "connection" pinned by conntrack to a
// removed endpoint moves to the new one (the proxier deletes the stale conntrack entries).
func TestUDPEndpointChange(t *testing.T) {
	tn := newTestNet(t, 3)
	startUDPBackend(t, tn.pods[0], "pod0")
	startUDPBackend(t, tn.pods[1], "pod1")
	udpSlice := func(ip netip.Addr) *discoveryv1.EndpointSlice {
		return eslice("default", "echo", "echo-1", []discoveryv1.EndpointPort{eport("echo", udpBackendPort, corev1.ProtocolUDP)},
			map[string]cond{ip.String(): readyC})
	}
	echo := svc("default", "echo", "198.19.200.23", sport("echo", 90, corev1.ProtocolUDP))
	tp := startProxier(t, tn, false, echo, udpSlice(tn.podIPs[0]))
	tp.waitRules(t, "--to-destination "+tn.podIPs[0].String(), true)

	// One client socket, so every datagram has the same 5-tuple and conntrack entry.
	var conn net.Conn
	var err error
	inNetns(t, tn.pods[2], func() { conn, err = net.Dial("udp", "198.19.200.23:90") })
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func() string {
		buf := make([]byte, 64)
		for range 20 { // datagrams may be lost; bounded retries
			_ = conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := conn.Write([]byte("who")); err != nil {
				continue
			}
			if n, err := conn.Read(buf); err == nil {
				return string(buf[:n])
			}
		}
		return ""
	}
	if got := ask(); got != "pod0" {
		t.Fatalf("first answer from %q, want pod0", got)
	}
	if _, err := tp.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(), udpSlice(tn.podIPs[1]), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	tp.waitRules(t, "--to-destination "+tn.podIPs[0].String(), false)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := ask()
		if got == "pod1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("same socket still answered by %q after the endpoint moved to pod1", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBatchedSync checks that a burst of changes is applied in far fewer restores than changes,
// and reports how long syncs of a few hundred service ports take.
func TestBatchedSync(t *testing.T) {
	tn := newTestNet(t, 0)
	tp := startProxier(t, tn, false)
	tp.waitRules(t, "cluster DNS", true)
	before := tp.restores.Load()
	const n = 150
	ctx := context.Background()
	start := time.Now()
	for i := range n {
		ip := netip.AddrFrom4([4]byte{198, 19, 200, byte(50 + i)})
		s := svc("burst", fmt.Sprintf("s%d", i), ip.String(), sport("http", 80, corev1.ProtocolTCP))
		if _, err := tp.client.CoreV1().Services("burst").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eps := map[string]cond{}
		for j := range 3 {
			eps[fmt.Sprintf("198.18.113.%d", 3*i%240+j+1)] = readyC
		}
		sl := eslice("burst", s.Name, s.Name+"-1", []discoveryv1.EndpointPort{eport("http", 8080, corev1.ProtocolTCP)}, eps)
		if _, err := tp.client.DiscoveryV1().EndpointSlices("burst").Create(ctx, sl, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	last := fmt.Sprintf("198.19.200.%d/32", 50+n-1)
	tp.waitRules(t, last, true)
	restores := tp.restores.Load() - before
	if restores < 1 || restores >= n {
		t.Errorf("%d changes took %d restores, want batching (fewer than %d)", 2*n, restores, n)
	}
	t.Logf("%d services × 3 endpoints (%d objects) applied in %d restores, %v after the first create; payload %d bytes",
		n, 2*n, restores, time.Since(start).Round(time.Millisecond), len(tp.appliedRules()))
	if got := strings.Count(saveNode(t, tn), "-j DNAT --to-destination 198.18.113."); got != 3*n {
		t.Errorf("node has %d endpoint DNAT rules, want %d", got, 3*n)
	}
	tp.stop()
	start = time.Now()
	if err := tp.ipt.restore(ctx, tp.appliedRules()); err != nil {
		t.Fatal(err)
	}
	t.Logf("one full restore of %d service ports: %v", n, time.Since(start).Round(time.Millisecond))
}

// TestRunnerOwnNamespace checks the production path (NetNS ""): commands run in the namespace of
// the calling thread, here a test node namespace, and not in the host's.
func TestRunnerOwnNamespace(t *testing.T) {
	tn := newTestNet(t, 0)
	chain := "WSV" + strings.ToUpper(strconv.FormatInt(int64(os.Getpid()), 36)) + "-SVC-RUNNER"
	var err error
	inNetns(t, tn.node, func() {
		err = runner{}.restore(context.Background(), []byte("*nat\n:"+chain+" - [0:0]\nCOMMIT\n"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(saveNode(t, tn), ":"+chain) {
		t.Errorf("chain %s not created in the node namespace", chain)
	}
	host, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(host), chain) {
		t.Errorf("chain %s leaked into the host namespace", chain)
		_ = exec.Command("iptables", "-w", "5", "-t", "nat", "-X", chain).Run() // ours alone, by its unique name
	}
}
