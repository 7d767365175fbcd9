package healthcheck

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/manifests"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", name, got)
	}
}

// TestOutputGoldens renders a control-plane run with one failure (identity
// scaled to 0) and one warning (an old controller image), and a clean
// data-plane run, in every format.
func TestOutputGoldens(t *testing.T) {
	w := newWorld(t)
	d := find[*appsv1.Deployment](w, manifests.IdentityName)
	d.Spec.Replicas, d.Status.AvailableReplicas = ptr(int32(0)), 0
	find[*appsv1.Deployment](w, manifests.DestinationName).Spec.Template.Spec.Containers[0].Image = "weft/controller:v0.9.0"
	find[*corev1.Pod](w, "web-abc-2").Annotations[annotations.ProxyVersion] = "v0.9.0"
	opts := Options{Wait: time.Millisecond, Poll: time.Millisecond}
	cp := Run(context.Background(), w.env(), Checks(ControlPlane), opts)
	dp := Run(context.Background(), w.env(), Checks(DataPlane), opts)
	for _, tc := range []struct {
		name  string
		out   []Outcome
		write func(*bytes.Buffer, []Outcome) error
	}{
		{"control-plane.txt", cp, func(b *bytes.Buffer, o []Outcome) error { return WriteTable(b, o) }},
		{"control-plane.json", cp, func(b *bytes.Buffer, o []Outcome) error { return WriteJSON(b, o, false) }},
		{"control-plane-short.txt", cp, func(b *bytes.Buffer, o []Outcome) error { return WriteShort(b, o) }},
		{"data-plane.txt", dp, func(b *bytes.Buffer, o []Outcome) error { return WriteTable(b, o) }},
		{"data-plane-strict.json", dp, func(b *bytes.Buffer, o []Outcome) error { return WriteJSON(b, o, true) }},
	} {
		var b bytes.Buffer
		if err := tc.write(&b, tc.out); err != nil {
			t.Fatal(err)
		}
		golden(t, tc.name, b.Bytes())
	}
	if got := Summary(cp); got != "× 1 failure, ‼ 1 warning" {
		t.Errorf("summary %q", got)
	}
	if !Failed(cp, false) || Failed(dp, false) || !Failed(dp, true) {
		t.Errorf("Failed: control plane %v, data plane %v, strict %v", Failed(cp, false), Failed(dp, false), Failed(dp, true))
	}
}

func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		results []Result
		want    string
	}{
		{nil, "Status check results are √"},
		{[]Result{OK, OK}, "Status check results are √"},
		{[]Result{Failure, Warning, Failure}, "× 2 failures, ‼ 1 warning"},
		{[]Result{Warning, Warning}, "‼ 2 warnings"},
	} {
		var o []Outcome
		for _, r := range tc.results {
			o = append(o, Outcome{Result: r})
		}
		if got := Summary(o); got != tc.want {
			t.Errorf("Summary(%v) = %q, want %q", tc.results, got, tc.want)
		}
	}
}

// TestFatalStopsRun: an unreachable API server ends the run after its line.
func TestFatalStopsRun(t *testing.T) {
	w := newWorld(t)
	w.apiDown = true
	out := Run(context.Background(), w.env(), Checks(ControlPlane), Options{Wait: time.Millisecond})
	if len(out) != 1 || out[0].ID != "api-reachable" || out[0].Result != Failure {
		t.Fatalf("got %+v, want only the failed api-reachable", out)
	}
}

// TestInstallKindsCoverRender: pre-rbac reviews every kind the install
// goldens of `weft install` hold.
func TestInstallKindsCoverRender(t *testing.T) {
	b, err := os.ReadFile("../command/testdata/install-ha.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crds, err := os.ReadFile("../command/testdata/install-crds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, k := range installKinds {
		have[k.Kind] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^kind: (\w+)$`).FindAllSubmatch(append(b, crds...), -1) {
		if !have[string(m[1])] {
			t.Errorf("weft install renders %s, which pre-rbac does not review", m[1])
		}
	}
}

// TestListsEachKindOnce: a data-plane run over many pods lists pods and
// namespaces once, never per object.
func TestListsEachKindOnce(t *testing.T) {
	w := bigWorld(t, 200)
	e := w.env()
	out := Run(context.Background(), e, Checks(DataPlane), Options{Wait: time.Millisecond})
	if Failed(out, true) {
		t.Fatalf("big world fails: %+v", out)
	}
	calls := map[string]int{}
	for _, a := range e.Client.(*fake.Clientset).Actions() {
		calls[a.GetVerb()+" "+a.GetResource().Resource]++
	}
	var keys []string
	for k, n := range calls {
		keys = append(keys, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(keys)
	if calls["list pods"] != 1 || calls["list namespaces"] > 1 || calls["get pods"] != 0 || calls["get version"] != 1 {
		t.Errorf("API calls %v, want one list of pods, at most one of namespaces, one version", keys)
	}
	if len(e.Client.(*fake.Clientset).Actions()) > 10 {
		t.Errorf("%d API calls (%v), want at most 10", len(e.Client.(*fake.Clientset).Actions()), keys)
	}
}

func bigWorld(t testing.TB, n int) *world {
	tt, ok := t.(*testing.T)
	if !ok {
		tt = &testing.T{}
	}
	w := newWorld(tt)
	for i := range n {
		w.objs = append(w.objs, w.pod("demo", fmt.Sprintf("app-abc-%d", i), "", "app"))
	}
	return w
}

// BenchmarkDataPlane1000: a --proxy run over 1 000 meshed pods (fake
// clientset and admin; no waits).
func BenchmarkDataPlane1000(b *testing.B) {
	w := bigWorld(b, 1000)
	checks := Checks(DataPlane)
	for b.Loop() {
		out := Run(context.Background(), w.env(), checks, Options{Wait: time.Millisecond})
		if Failed(out, true) {
			b.Fatalf("fails: %+v", out)
		}
	}
}
