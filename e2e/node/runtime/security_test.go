package runtime

import (
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestRunAsUser(t *testing.T) {
	rt := newTestRuntime(t, nil)
	sb := createSandbox(t, rt, testPod("user", func(p *corev1.Pod) {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{SupplementalGroups: []int64{3000}}
	}))
	c := testapp("app")
	c.Args = []string{"id"}
	c.SecurityContext = &corev1.SecurityContext{RunAsUser: ptr(int64(2102)), RunAsGroup: ptr(int64(2103))}
	p, err := sb.Start(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if p.ExitCode() != 0 {
		t.Fatalf("exit code %d", p.ExitCode())
	}
	log, err := os.ReadFile(sb.LogPath("app"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "uid=2102 gid=2103 groups=[3000]") {
		t.Fatalf("container log %q: want uid=2102 gid=2103 groups=[3000]", log)
	}

	root := testapp("root")
	root.SecurityContext = &corev1.SecurityContext{RunAsNonRoot: ptr(true)}
	if _, err := sb.Start(context.Background(), root); err == nil || !strings.Contains(err.Error(), "runAsNonRoot") {
		t.Fatalf("runAsNonRoot without runAsUser: err %v", err)
	}
}

func TestCapabilities(t *testing.T) {
	rt := newTestRuntime(t, nil)
	sb := createSandbox(t, rt, testPod("caps"))
	toolbox := func(sc *corev1.SecurityContext) ContainerSpec {
		return ContainerSpec{Name: "tb", Image: "weft/toolbox:latest", SecurityContext: sc}
	}
	nonRoot := func(add ...corev1.Capability) *corev1.SecurityContext {
		return &corev1.SecurityContext{RunAsUser: ptr(int64(2102)), RunAsGroup: ptr(int64(2102)),
			Capabilities: &corev1.Capabilities{Add: add}}
	}
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		sc   *corev1.SecurityContext
		ok   bool
	}{
		{"non-root with NET_ADMIN", nonRoot("NET_ADMIN"), true},
		{"non-root without caps", nonRoot(), false},
		{"root default set", nil, false},
		{"root with NET_ADMIN", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"CAP_NET_ADMIN"}}}, true},
		{"privileged", &corev1.SecurityContext{Privileged: ptr(true)}, true},
		{"root dropping ALL then adding NET_ADMIN", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, err := sb.Exec(ctx, toolbox(tc.sc), []string{"iptables", "-t", "nat", "-L", "-n"})
			if err != nil {
				t.Fatal(err)
			}
			if (code == 0) != tc.ok {
				t.Fatalf("iptables -t nat -L: exit %d, want success=%v; output %q", code, tc.ok, out)
			}
		})
	}

	out := execOK(t, sb, ContainerSpec{Name: "tb", Image: "weft/testapp", SecurityContext: nonRoot("NET_ADMIN")}, "weft-testapp", "caps")
	// NET_ADMIN is bit 12: 0x1000, effective and ambient.
	if !strings.Contains(out, "CapEff:\t0000000000001000") || !strings.Contains(out, "CapAmb:\t0000000000001000") {
		t.Fatalf("caps of non-root NET_ADMIN container: %q", out)
	}
	out = execOK(t, sb, ContainerSpec{Name: "tb", Image: "weft/testapp"}, "weft-testapp", "caps")
	if !strings.Contains(out, "CapEff:\t00000000a80425fb") {
		t.Fatalf("caps of root container: %q, want the default set a80425fb", out)
	}
}

func TestEffectiveCaps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sc      *corev1.SecurityContext
		uid     int64
		want    int // number of caps
		all     bool
		wantErr string
	}{
		{"root default", nil, 0, len(DefaultCapabilities), false, ""},
		{"nonroot default", nil, 1000, 0, false, ""},
		{"nonroot add", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}}}, 1000, 2, false, ""},
		{"root drop one", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"KILL"}}}, 0, len(DefaultCapabilities) - 1, false, ""},
		{"privileged", &corev1.SecurityContext{Privileged: ptr(true)}, 1000, 0, true, ""},
		{"unknown", &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"FLY"}}}, 0, 0, false, `unknown capability "FLY"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caps, all, err := effectiveCaps(tc.sc, tc.uid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || all != tc.all || len(caps) != tc.want {
				t.Fatalf("got %v all=%v err=%v, want %d caps all=%v", caps, all, err, tc.want, tc.all)
			}
		})
	}
}
