package command

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes"
	clienttesting "k8s.io/client-go/testing"

	"github.com/weftmesh/weft/internal/kubeclient"
	"github.com/weftmesh/weft/manifests"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: weft/demo-web:dev}]
`

const configMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {a: b}
`

// runIO executes weft with stdin and returns stdout and stderr.
func runIO(t *testing.T, cs kubernetes.Interface, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(Config{
		Out: &out, Err: &errOut,
		NewClient: func(kubeclient.Options) (kubernetes.Interface, error) {
			if cs == nil {
				return nil, errFakeUnreachable
			}
			return cs, nil
		},
		Generator: fixedGenerator{t},
		CRDWait:   200 * time.Millisecond,
		Now:       time.Now,
	})
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

func TestInjectInputs(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(deployment), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "b.yml"), []byte(configMap), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not yaml"), 0o644)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(deployment)) }))
	defer srv.Close()

	tests := []struct {
		name       string
		args       []string
		stdin      string
		annotated  int // workloads annotated
		untouched  string
		reportLine string
	}{
		{"stdin", []string{"inject", "-"}, deployment + "---\n" + configMap, 1, "data: {a: b}", "stdin: deployment/web changed"},
		{"file", []string{"inject", filepath.Join(dir, "a.yaml")}, "", 1, "", "a.yaml: deployment/web changed"},
		{"directory", []string{"inject", dir}, "", 1, "data: {a: b}", "b.yml: configmap/settings skipped: not a workload"},
		{"url", []string{"inject", srv.URL}, "", 1, "", srv.URL + ": deployment/web changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, report, err := runIO(t, nil, tt.stdin, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(out, "weft.io/inject: enabled"); n != tt.annotated {
				t.Errorf("%d annotations, want %d:\n%s", n, tt.annotated, out)
			}
			if tt.untouched != "" && !strings.Contains(out, tt.untouched) {
				t.Errorf("an untouched document was rewritten:\n%s", out)
			}
			if !strings.Contains(report, tt.reportLine) {
				t.Errorf("report lacks %q:\n%s", tt.reportLine, report)
			}
		})
	}
}

func TestInjectManualUsesClusterValues(t *testing.T) {
	v := manifests.DefaultValues()
	v.ProxyVersion = "v9.9.9"
	v.TrustAnchorsPEM = "CLUSTER-ANCHORS"
	raw, _ := json.Marshal(v)
	cs := cluster(true, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "weft", Name: manifests.ConfigName},
		Data:       map[string]string{manifests.ConfigValuesKey: string(raw)},
	})
	out, _, err := runIO(t, cs, deployment, "inject", "--manual", "-")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"image: weft/proxy:v9.9.9", "CLUSTER-ANCHORS", "name: weft-init", "weft.io/injected-by: cli"} {
		if !strings.Contains(out, want) {
			t.Errorf("manual injection lacks %q", want)
		}
	}
	// And uninject gives the workload back.
	back, report, err := runIO(t, nil, out, "uninject", "-")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(back, "weft-proxy") || strings.Contains(back, "weft-init") || strings.Contains(back, "weft.io/") ||
		!strings.Contains(report, "deployment/web changed: weft removed") {
		t.Fatalf("uninject left weft behind:\n%s\n%s", back, report)
	}
}

func TestInjectErrors(t *testing.T) {
	empty := t.TempDir()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"inject", "/nonexistent.yaml"}, "no such file"},
		{"empty directory", []string{"inject", empty}, "holds no .yaml"},
		{"manual without cluster", []string{"inject", "--manual", "-"}, "--ignore-cluster"},
		{"no arguments", []string{"inject"}, "requires at least 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runIO(t, nil, deployment, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// Not installed: the message says so.
	_, _, err := runIO(t, cluster(true), deployment, "inject", "--manual", "-")
	if err == nil || !strings.Contains(err.Error(), "is weft installed?") {
		t.Fatalf("cluster without weft-config: %v", err)
	}
	// --ignore-cluster renders with the defaults.
	out, _, err := runIO(t, nil, deployment, "inject", "--manual", "--ignore-cluster", "-")
	if err != nil || !strings.Contains(out, "name: weft-proxy") {
		t.Fatalf("--ignore-cluster: %v\n%s", err, out)
	}
}

func TestVizStatErrors(t *testing.T) {
	_, _, err := runIO(t, nil, "", "viz", "stat", "--window", "1ms")
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("bad window: %v", err)
	}
	_, _, err = runIO(t, cluster(true), "", "viz", "stat", "-n", "empty", "--window", "1s")
	if err == nil || !strings.Contains(err.Error(), "no running pods in namespace empty") {
		t.Fatalf("empty namespace: %v", err)
	}
}

// TestInstallWaitsForJustAppliedCRDs: `weft install --crds | kubectl apply`
// directly followed by `weft install` works while discovery catches up.
func TestInstallWaitsForJustAppliedCRDs(t *testing.T) {
	cs := cluster(false)
	calls := 0
	cs.Fake.PrependReactor("get", "resource", func(clienttesting.Action) (bool, apiruntime.Object, error) {
		calls++
		if calls == 3 { // served from the third discovery call on
			cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
				GroupVersion: "weft.io/v1alpha1",
				APIResources: []metav1.APIResource{{Name: "serviceprofiles", Namespaced: true, Kind: "ServiceProfile"}},
			}}
		}
		return false, nil, nil
	})
	var out, errOut bytes.Buffer
	root := NewRoot(Config{Out: &out, Err: &errOut, Generator: fixedGenerator{t}, CRDWait: 10 * time.Second,
		NewClient: func(kubeclient.Options) (kubernetes.Interface, error) { return cs, nil }})
	root.SetArgs([]string{"install"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("install after the CRD appeared: %v", err)
	}
	if calls < 3 || !strings.Contains(out.String(), "kind: Deployment") {
		t.Fatalf("discovery calls %d, output %d bytes", calls, out.Len())
	}
}

func TestInstallCRDWaitFlag(t *testing.T) {
	cs := cluster(false)
	calls := 0
	cs.Fake.PrependReactor("get", "resource", func(clienttesting.Action) (bool, apiruntime.Object, error) {
		calls++
		if calls == 3 { // the CRD would be served from the third call on
			cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
				GroupVersion: "weft.io/v1alpha1",
				APIResources: []metav1.APIResource{{Name: "serviceprofiles", Namespaced: true, Kind: "ServiceProfile"}},
			}}
		}
		return false, nil, nil
	})
	_, _, err := runIO(t, cs, "", "install", "--crd-wait", "0s")
	if err == nil || !strings.Contains(err.Error(), "the weft CRDs are not installed") {
		t.Fatalf("got %v", err)
	}
	if calls != 1 {
		t.Fatalf("--crd-wait 0s asked discovery %d times, want once", calls)
	}
}
