package svcproxy

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// Test topology, all inside namespaces the test creates (never the host's tables):
//
//	node netns <id>n: bridge <id>b 198.18.112.1/24, a veth <id>u holding the default route
//	(like a real host's uplink), ip_forward on, and the proxier's iptables.
//	pod netns <id>p<i>: eth0 198.18.112.(10+i)/24, default via 198.18.112.1, veth <id>v<i> on the bridge.
//
// Names are "wsv" + the test process pid in base 36 + "-" + a counter, so concurrent runs never collide
// and leftovers of dead runs can be recognised and removed.

const (
	nsPrefix  = "wsv"
	gatewayIP = "198.18.112.1"
)

var netCounter atomic.Int32

type testNet struct {
	id     string
	node   string
	bridge string
	pods   []string // pod netns names
	podIPs []netip.Addr
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newTestNet builds a node namespace with a bridge and n pod namespaces on it.
func newTestNet(t *testing.T, n int) *testNet {
	t.Helper()
	removeStaleNetns(t)
	id := fmt.Sprintf("%s%s-%s", nsPrefix, strconv.FormatInt(int64(os.Getpid()), 36), strconv.FormatInt(int64(netCounter.Add(1)), 36))
	tn := &testNet{id: id, node: id + "n", bridge: id + "b"}
	t.Cleanup(func() {
		for _, p := range tn.pods {
			_ = exec.Command("ip", "netns", "del", p).Run()
		}
		_ = exec.Command("ip", "netns", "del", tn.node).Run()
	})
	ipCmd(t, "netns", "add", tn.node)
	ipCmd(t, "-n", tn.node, "link", "set", "lo", "up")
	ipCmd(t, "-n", tn.node, "link", "add", tn.bridge, "type", "bridge")
	ipCmd(t, "-n", tn.node, "addr", "add", gatewayIP+"/24", "dev", tn.bridge)
	ipCmd(t, "-n", tn.node, "link", "set", tn.bridge, "up")
	// An "uplink" (a veth pair whose far end goes nowhere) holds the default route, as a real
	// host's uplink does, so service traffic that is not DNATed is forwarded (and rejected).
	ipCmd(t, "-n", tn.node, "link", "add", id+"u", "type", "veth", "peer", "name", id+"w")
	ipCmd(t, "-n", tn.node, "link", "set", id+"u", "up")
	ipCmd(t, "-n", tn.node, "link", "set", id+"w", "up")
	ipCmd(t, "-n", tn.node, "route", "add", "default", "dev", id+"u")
	ipCmd(t, "netns", "exec", tn.node, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1")
	for i := range n {
		pod := fmt.Sprintf("%sp%d", id, i)
		veth := fmt.Sprintf("%sv%d", id, i)
		ip := netip.AddrFrom4([4]byte{198, 18, 112, byte(10 + i)})
		ipCmd(t, "netns", "add", pod)
		tn.pods = append(tn.pods, pod)
		tn.podIPs = append(tn.podIPs, ip)
		ipCmd(t, "-n", tn.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod)
		ipCmd(t, "-n", tn.node, "link", "set", veth, "master", tn.bridge, "up")
		// kubelet's hairpin-veth mode: with br_netfilter a pod's packet DNATed back to itself is
		// bridged out of the port it came in on, which a bridge port drops unless hairpin is on.
		ipCmd(t, "-n", tn.node, "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
		ipCmd(t, "-n", pod, "link", "set", "lo", "up")
		ipCmd(t, "-n", pod, "addr", "add", ip.String()+"/24", "dev", "eth0")
		ipCmd(t, "-n", pod, "link", "set", "eth0", "up")
		ipCmd(t, "-n", pod, "route", "add", "default", "via", gatewayIP)
	}
	return tn
}

// removeStaleNetns deletes namespaces of this test whose creating process is gone.
func removeStaleNetns(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		// wsv<pid base36>-<counter base36><kind...>
		pid36, _, ok := strings.Cut(f[0][len(nsPrefix):], "-")
		pid, err := strconv.ParseInt(pid36, 36, 64)
		if !ok || err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			_ = exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
}

// inNetns runs fn on an OS thread switched into the named network namespace. Sockets fn creates
// belong to that namespace for their whole life.
func inNetns(t testing.TB, name string, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlock: if switching back fails the thread must die with the goroutine.
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", name, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
