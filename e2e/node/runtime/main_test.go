package runtime

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Tests use their own bridges (wrt<pid>-<n>), netns/veth prefix "wrt-" and one /24 of
// 198.18.96.0/20 per runtime, never the cluster's weft0 / 198.18.0.0/20.
const testPrefix = "wrt-"

var (
	testBinDir string
	testSeq    atomic.Int32
)

func TestMain(m *testing.M) {
	MaybeReexec()
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	removeStale()
	dir, err := os.MkdirTemp("", "wrt-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Non-root containers must be able to reach the binaries.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "weft-testapp"), "./testdata/testapp").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build testapp: %v\n%s", err, out)
		return 1
	}
	testBinDir = dir
	return m.Run()
}

// removeStale deletes netns and links with the test prefix left by an earlier, killed run.
func removeStale() {
	ents, _ := os.ReadDir(netnsDir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), testPrefix) {
			_, _ = killNetnsProcesses(filepath.Join(netnsDir, e.Name()))
			_ = deleteNetns(e.Name())
		}
	}
	links, _ := netlink.LinkList()
	for _, l := range links {
		if n := l.Attrs().Name; strings.HasPrefix(n, "wrt") {
			_ = netlink.LinkDel(l)
		}
	}
}

type testRT struct {
	*Runtime
	cidr netip.Prefix
}

// newTestRuntime creates and initialises a runtime with its own bridge and /24.
// With ipv6 the runtime also gets fd00:198:18:<9600+n>::/64.
func newTestRuntime(t *testing.T, client kubernetes.Interface, ipv6 ...bool) *testRT {
	t.Helper()
	n := int(testSeq.Add(1)) - 1
	if n > 15 {
		t.Fatalf("too many test runtimes")
	}
	cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(96 + n), 0}), 24)
	state := t.TempDir()
	var cidr6 netip.Prefix
	if len(ipv6) > 0 && ipv6[0] {
		cidr6 = netip.MustParsePrefix(fmt.Sprintf("fd00:198:18:%x::/64", 0x9600+n))
	}
	rt, err := New(Config{
		StateDir:      state,
		BinDir:        testBinDir,
		Bridge:        fmt.Sprintf("wrt%d-%d", os.Getpid(), n),
		PodCIDR:       cidr,
		ClusterDNS:    netip.MustParseAddr("198.19.0.10"),
		ClusterDomain: "cluster.local",
		Client:        client,
		NetnsPrefix:   testPrefix,
		PodCIDRv6:     cidr6,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rt.Init(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if _, err := netlink.LinkByName(rt.cfg.Bridge); err == nil {
			t.Errorf("bridge %s still exists after Shutdown", rt.cfg.Bridge)
		}
	})
	return &testRT{Runtime: rt, cidr: cidr}
}

var podSeq atomic.Int32

func testPod(name string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	n := podSeq.Add(1)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "default",
			UID:         types.UID(fmt.Sprintf("uid-%d-%d-%s", os.Getpid(), n, name)),
			Labels:      map[string]string{"app": name},
			Annotations: map[string]string{"note": "x"},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func createSandbox(t *testing.T, rt *testRT, pod *corev1.Pod) *Sandbox {
	t.Helper()
	sb, err := rt.CreateSandbox(context.Background(), pod)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// execOK runs a command in the sandbox and fails the test unless it exits 0.
func execOK(t *testing.T, sb *Sandbox, c ContainerSpec, cmd ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, out, err := sb.Exec(ctx, c, cmd)
	if err != nil || code != 0 {
		t.Fatalf("exec %v: code %d err %v output %q", cmd, code, err, out)
	}
	return string(out)
}

// waitFor polls cond until it is true or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testapp(name string) ContainerSpec {
	return ContainerSpec{Name: name, Image: "weft/testapp:latest"}
}

func ptr[T any](v T) *T { return &v }

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(s, v) }
