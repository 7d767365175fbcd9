package runtime

import (
	"context"
	"os"
	"strings"
	"testing"
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
