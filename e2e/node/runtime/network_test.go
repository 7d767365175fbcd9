package runtime

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestSandboxNetworking(t *testing.T) {
	rt := newTestRuntime(t, nil)
	a := createSandbox(t, rt, testPod("a"))
	b := createSandbox(t, rt, testPod("b"))
	for _, sb := range []*Sandbox{a, b} {
		ips := sb.PodIPs()
		if len(ips) != 1 || !rt.cidr.Contains(ips[0]) || ips[0] == rt.Gateway() {
			t.Fatalf("pod IPs %v: want one address in %s other than the gateway", ips, rt.cidr)
		}
	}
	if a.PodIPs()[0] == b.PodIPs()[0] {
		t.Fatalf("both pods got %s", a.PodIPs()[0])
	}
	// A pod reaching itself through its Service needs hairpin mode on its port.
	if mode, err := os.ReadFile("/sys/class/net/" + a.hostVeth + "/brport/hairpin_mode"); err != nil || strings.TrimSpace(string(mode)) != "1" {
		t.Fatalf("hairpin mode on %s = %q (%v), want 1", a.hostVeth, mode, err)
	}
	again, err := rt.CreateSandbox(context.Background(), a.pod)
	if err != nil || again != a {
		t.Fatalf("CreateSandbox is not idempotent: %v %v", again, err)
	}

	srv, err := b.Start(context.Background(), ContainerSpec{Name: "srv", Image: "weft/testapp:v1", Args: []string{"serve", "8080"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "server log", func() bool {
		l, _ := os.ReadFile(b.LogPath("srv"))
		return strings.Contains(string(l), "listening")
	})
	out := execOK(t, a, testapp("client"), "weft-testapp", "connect", b.PodIPs()[0].String()+":8080")
	if !strings.Contains(out, "hello from b") {
		t.Fatalf("TCP a->b got %q, want the hello of pod b", out)
	}
	out = execOK(t, b, testapp("pinger"), "weft-testapp", "ping", a.PodIPs()[0].String())
	if !strings.Contains(out, "reply from "+a.PodIPs()[0].String()) {
		t.Fatalf("ping b->a: %q", out)
	}
	execOK(t, a, testapp("pinger"), "weft-testapp", "ping", rt.Gateway().String())

	// Generated /etc files are bound in the container.
	out = execOK(t, a, testapp("c"), "/weft-testapp", "cat", "/etc/resolv.conf")
	want := "nameserver 198.19.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	if out != want {
		t.Fatalf("resolv.conf = %q, want %q", out, want)
	}
	out = execOK(t, a, testapp("c"), "weft-testapp", "cat", "/etc/hosts")
	if !strings.Contains(out, a.PodIPs()[0].String()+"\ta\n") {
		t.Fatalf("/etc/hosts lacks the pod entry: %q", out)
	}
	out = execOK(t, a, testapp("c"), "weft-testapp", "cat", "/etc/hostname")
	if out != "a\n" {
		t.Fatalf("/etc/hostname = %q, want the pod's hostname", out)
	}
	out = execOK(t, a, testapp("c"), "weft-testapp", "id")
	if !strings.Contains(out, "hostname=a") {
		t.Fatalf("hostname not set: %q", out)
	}

	if err := srv.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	<-srv.Done()
	if srv.ExitCode() != 137 {
		t.Fatalf("exit code after SIGKILL = %d, want 137", srv.ExitCode())
	}
}

func TestDualStack(t *testing.T) {
	rt := newTestRuntime(t, nil, true)
	a := createSandbox(t, rt, testPod("a6"))
	b := createSandbox(t, rt, testPod("b6"))
	ips := b.PodIPs()
	if len(ips) != 2 || !ips[0].Is4() || !ips[1].Is6() || !rt.cfg.PodCIDRv6.Contains(ips[1]) {
		t.Fatalf("pod IPs %v: want IPv4 then IPv6 in %s", ips, rt.cfg.PodCIDRv6)
	}
	if _, err := b.Start(context.Background(), ContainerSpec{Name: "srv", Image: "weft/testapp", Args: []string{"serve", "8080"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "server log", func() bool {
		l, _ := os.ReadFile(b.LogPath("srv"))
		return strings.Contains(string(l), "listening")
	})
	out := execOK(t, a, testapp("client"), "weft-testapp", "connect", "["+ips[1].String()+"]:8080")
	if !strings.Contains(out, "hello from b6") {
		t.Fatalf("TCP over IPv6 got %q", out)
	}
}

func TestHostNetworkPod(t *testing.T) {
	rt := newTestRuntime(t, nil)
	sb := createSandbox(t, rt, testPod("hostnet", func(p *corev1.Pod) { p.Spec.HostNetwork = true }))
	if ips := sb.PodIPs(); len(ips) != 1 || ips[0] != rt.Gateway() {
		t.Fatalf("hostNetwork pod IPs %v, want the gateway %s", ips, rt.Gateway())
	}
	if sb.NetnsPath() != "" {
		t.Fatalf("hostNetwork pod has netns %s", sb.NetnsPath())
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	p, err := sb.Start(context.Background(), ContainerSpec{Name: "c", Image: "weft/testapp", Args: []string{"sleep"}})
	if err != nil {
		t.Fatal(err)
	}
	if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", p.Pid())); ns != self {
		t.Fatalf("hostNetwork container in netns %s, want the host's %s", ns, self)
	}
	if err := sb.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
}
