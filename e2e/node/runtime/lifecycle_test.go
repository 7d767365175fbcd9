package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/internal/mountinfo"
)

// assertGone checks that nothing of a sandbox is left on the host.
func assertGone(t *testing.T, rt *testRT, sb *Sandbox, pids []int) {
	t.Helper()
	if _, err := os.Stat(sb.NetnsPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns %s still exists: %v", sb.NetnsPath(), err)
	}
	if _, err := netlink.LinkByName(sb.hostVeth); err == nil {
		t.Errorf("veth %s still exists", sb.hostVeth)
	}
	points, err := mountinfo.Points()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range points {
		if underPath(p, sb.dir) || p == sb.NetnsPath() {
			t.Errorf("mount %s still exists", p)
		}
	}
	for _, pid := range pids {
		if unix.Kill(pid, 0) == nil && !isZombie(pid) {
			t.Errorf("process %d still runs", pid)
		}
	}
	// Only container logs may outlive the sandbox (RemovePodFiles takes them).
	ents, _ := os.ReadDir(sb.dir)
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".log") {
			t.Errorf("pod dir %s still holds %s", sb.dir, e.Name())
		}
	}
}

// startTree starts a container whose shell has a child in its own session (out of reach of
// the process-group kill), returning both pids.
func startTree(t *testing.T, sb *Sandbox) (*Process, []int) {
	t.Helper()
	p, err := sb.Start(context.Background(), ContainerSpec{Name: "tree", Image: "weft/toolbox",
		Command:      []string{"sh", "-c", "setsid sleep 3600 & echo child=$!; wait"},
		VolumeMounts: []corev1.VolumeMount{{Name: "mem", MountPath: "/tmp/wrt-tree-mem"}}})
	if err != nil {
		t.Fatal(err)
	}
	var child int
	waitFor(t, "child pid in log", func() bool {
		b, _ := os.ReadFile(sb.LogPath("tree"))
		s := string(b)
		if i := strings.Index(s, "child="); i >= 0 {
			_, err := fmtSscan(s[i+6:], &child)
			return err == nil
		}
		return false
	})
	for _, pid := range []int{p.Pid(), child} {
		if err := unix.Kill(pid, 0); err != nil {
			t.Fatalf("process %d is not running before the test: %v", pid, err)
		}
	}
	return p, []int{p.Pid(), child}
}

func memPod(name string) *corev1.Pod {
	return testPod(name, func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}}
	})
}

func TestDestroy(t *testing.T) {
	rt := newTestRuntime(t, nil)
	sb := createSandbox(t, rt, memPod("gone"))
	ip := sb.PodIPs()[0]
	p, pids := startTree(t, sb)
	if err := sb.Destroy(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	assertGone(t, rt, sb, pids)
	if err := rt.RemovePodFiles(sb.pod); err != nil {
		t.Errorf("RemovePodFiles: %v", err)
	}
	if _, err := os.Stat(sb.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod dir %s still exists after RemovePodFiles", sb.dir)
	}
	if _, used := rt.ipam.state.Allocated[ip]; used {
		t.Errorf("IP %s not released", ip)
	}
	if err := sb.Destroy(context.Background()); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if _, err := sb.Start(context.Background(), testapp("late")); err == nil {
		t.Errorf("Start on a destroyed sandbox succeeded")
	}
}

func TestLeftoversAfterCrash(t *testing.T) {
	rt := newTestRuntime(t, nil)
	sb := createSandbox(t, rt, memPod("crashed"))
	_, pids := startTree(t, sb)
	keep := createSandbox(t, rt, testPod("other"))
	_ = keep

	// A new node agent on the same state dir, as after a crash: its Init removes what the
	// first one left behind (the first Runtime's in-memory state is simply abandoned).
	rt2, err := New(rt.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt2.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, rt, sb, pids)
	assertGone(t, rt, keep, nil)
	if n := len(rt2.ipam.state.Allocated); n != 0 {
		t.Errorf("%d IPs still allocated after leftover cleanup", n)
	}
	// The restarted runtime works and does not hand out the crashed pods' addresses first.
	sb2, err := rt2.CreateSandbox(context.Background(), testPod("fresh"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sb2.PodIPs()[0]; got == sb.PodIPs()[0] || got == keep.PodIPs()[0] {
		t.Errorf("new pod reuses the address %s of a crashed pod", got)
	}
	if err := rt2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rt.cfg.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir survives Shutdown: %v", err)
	}
	// Re-init so the cleanup of newTestRuntime has something to shut down.
	if err := rt.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestIPAM(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ipam.json")
	a, err := newIPAM(path, netip.MustParsePrefix("198.18.111.0/29"))
	if err != nil {
		t.Fatal(err)
	}
	// .0 network, .1 gateway, .7 broadcast: .2 to .6 are usable.
	var got []string
	for _, uid := range []string{"a", "b", "c"} {
		ip, err := a.allocate(uid)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip.String())
	}
	if strings.Join(got, " ") != "198.18.111.2 198.18.111.3 198.18.111.4" {
		t.Fatalf("allocated %v", got)
	}
	if ip, _ := a.allocate("b"); ip.String() != "198.18.111.3" {
		t.Fatalf("allocate is not idempotent per UID: %s", ip)
	}
	if err := a.release("a"); err != nil {
		t.Fatal(err)
	}
	// A restarted allocator knows what is in use and continues after the last address.
	b, err := newIPAM(path, netip.MustParsePrefix("198.18.111.0/29"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"198.18.111.5", "198.18.111.6", "198.18.111.2"} {
		ip, err := b.allocate("new-" + want)
		if err != nil || ip.String() != want {
			t.Fatalf("allocate = %s %v, want %s", ip, err, want)
		}
	}
	if _, err := b.allocate("overflow"); err == nil || !strings.Contains(err.Error(), "exhausted") {
		t.Fatalf("allocate in a full range: %v", err)
	}
}

// TestExecRounds runs a bounded number of execs and reports their mean duration (not asserted).
func TestExecRounds(t *testing.T) {
	rt := newTestRuntime(t, nil)
	sb := createSandbox(t, rt, testPod("rounds"))
	const n = 20
	start := time.Now()
	for i := 0; i < n; i++ {
		if out := execOK(t, sb, testapp("c"), "weft-testapp", "id"); !strings.Contains(out, "uid=0") {
			t.Fatalf("exec %d: %q", i, out)
		}
	}
	t.Logf("%d execs, mean %v each (re-exec launcher + namespaces + execve + exit)", n, time.Since(start)/n)
	cstart := time.Now()
	for i := 0; i < 5; i++ {
		s := createSandbox(t, rt, testPod(fmt.Sprintf("many-%d", i)))
		if err := s.Destroy(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("5 sandbox create+destroy, mean %v each", time.Since(cstart)/5)
}

func TestExecTimeoutAndExitCode(t *testing.T) {
	rt := newTestRuntime(t, nil)
	sb := createSandbox(t, rt, testPod("probe"))
	tb := ContainerSpec{Name: "tb", Image: "weft/toolbox"}
	code, out, err := sb.Exec(context.Background(), tb, []string{"sh", "-c", "echo out; echo err >&2; exit 3"})
	if err != nil || code != 3 || string(out) != "out\nerr\n" {
		t.Fatalf("exec: code %d out %q err %v, want 3 and both streams", code, out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, _, err = sb.Exec(ctx, tb, []string{"sh", "-c", "echo started; sleep 3600"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exec past its deadline: %v", err)
	}
	dev, ino, err := netnsInode(sb.NetnsPath())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "timed-out exec to be killed", func() bool { return len(pidsInNetns(dev, ino)) == 0 })
}

func TestFSGroup(t *testing.T) {
	rt := newTestRuntime(t, nil)
	sb := createSandbox(t, rt, testPod("fsg", func(p *corev1.Pod) {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr(int64(4000))}
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	}))
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(sb.Dir(), "volumes/data"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Gid != 4000 || st.Mode&unix.S_ISGID == 0 {
		t.Fatalf("emptyDir gid %d mode %o, want gid 4000 with setgid", st.Gid, st.Mode)
	}
	out := execOK(t, sb, ContainerSpec{Name: "c", Image: "weft/testapp", SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(2102))}}, "weft-testapp", "id")
	if !strings.Contains(out, "groups=[4000]") {
		t.Fatalf("fsGroup is not a supplementary group: %q", out)
	}
}
