package manifests

import (
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/annotations"
)

func testVizValues() VizValues {
	v := DefaultVizValues()
	v.ControllerVersion = "v0.0.0-test"
	return v
}

func TestRenderVizGolden(t *testing.T) {
	custom := testVizValues()
	custom.ControllerImage = "registry.example/weft/controller"
	custom.ScrapeInterval = 5 * time.Second
	custom.Window = 30 * time.Minute
	custom.MemoryLimit = "1Gi"
	for _, tc := range []struct {
		golden string
		v      VizValues
	}{
		{"viz.yaml", testVizValues()},
		{"viz-custom.yaml", custom},
		{"viz-prometheus.yaml", func() VizValues {
			v := testVizValues()
			v.PrometheusURL = "http://prometheus.monitoring.svc.cluster.local:9090"
			return v
		}()},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, err := RenderViz(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, out)
		})
	}
	golden(t, "viz-uninstall.yaml", UninstallViz())
}

// TestRenderVizObjects: the names the injector authorises for tap, a pod the
// webhook meshes (no control-plane component label, which its object
// selector excludes), read-only RBAC.
func TestRenderVizObjects(t *testing.T) {
	out, err := RenderViz(testVizValues())
	if err != nil {
		t.Fatal(err)
	}
	objs := docs(t, out)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o["kind"].(string))
	}
	if got := strings.Join(kinds, ","); got != "Namespace,ServiceAccount,ClusterRole,ClusterRoleBinding,Service,Deployment" {
		t.Errorf("kinds in order = %s", got)
	}
	ns := find(t, objs, "Namespace", injector.VizNamespace)
	if dig(t, ns, "metadata", "annotations", annotations.Inject) != annotations.Enabled {
		t.Errorf("namespace is not annotated for injection")
	}
	find(t, objs, "ServiceAccount", injector.VizServiceAccount)
	dep := find(t, objs, "Deployment", VizName)
	if dig(t, dep, "metadata", "namespace") != injector.VizNamespace {
		t.Errorf("deployment outside %s", injector.VizNamespace)
	}
	if sa := dig(t, dep, "spec", "template", "spec", "serviceAccountName"); sa != injector.VizServiceAccount {
		t.Errorf("serviceAccountName = %v", sa)
	}
	tmpl := dig(t, dep, "spec", "template", "metadata", "labels").(map[string]any)
	if _, ok := tmpl[LabelComponent]; ok {
		t.Errorf("pod template has %s: the webhook would skip it", LabelComponent)
	}
	if dig(t, dep, "spec", "template", "metadata", "annotations", annotations.Inject) != annotations.Enabled {
		t.Errorf("pod template is not annotated for injection")
	}
	role := find(t, objs, "ClusterRole", VizName)
	for _, r := range dig(t, role, "rules").([]any) {
		for _, v := range r.(map[string]any)["verbs"].([]any) {
			if v != "get" && v != "list" && v != "watch" {
				t.Errorf("viz ClusterRole grants %v: it must be read-only", v)
			}
		}
	}
	svc := find(t, objs, "Service", VizName)
	if p := dig(t, svc, "spec", "ports").([]any)[0].(map[string]any)["port"]; p != float64(8084) {
		t.Errorf("service port = %v, want 8084", p)
	}
}

func TestVizValuesValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*VizValues)
		want string
	}{
		{"defaults", func(*VizValues) {}, ""},
		{"no image", func(v *VizValues) { v.ControllerImage = "" }, "--controller-image is empty"},
		{"no version", func(v *VizValues) { v.ControllerVersion = "" }, "--controller-version is empty"},
		{"fast scrape", func(v *VizValues) { v.ScrapeInterval = 500 * time.Millisecond }, "--scrape-interval 500ms is below 1s"},
		{"short window", func(v *VizValues) { v.Window = 5 * time.Second }, "--window 5s is shorter than --scrape-interval 10s"},
		{"huge window", func(v *VizValues) { v.ScrapeInterval, v.Window = time.Second, 1000*time.Hour }, "more than 100000 scrape intervals"},
		{"bad memory", func(v *VizValues) { v.MemoryLimit = "lots" }, `--memory-limit "lots" is not a Kubernetes quantity`},
		{"prometheus", func(v *VizValues) { v.PrometheusURL = "https://prom.example:9090/prefix/" }, ""},
		{"prometheus without scheme", func(v *VizValues) { v.PrometheusURL = "prometheus:9090" }, "--prometheus-url: prometheus url \"prometheus:9090\": want http:// or https://"},
		{"prometheus without host", func(v *VizValues) { v.PrometheusURL = "http:///api" }, "has no host"},
		{"prometheus with query", func(v *VizValues) { v.PrometheusURL = "http://p:9090/?x=1" }, "give the base URL only"},
		{"prometheus bad port", func(v *VizValues) { v.PrometheusURL = "http://p:99999" }, "port \"99999\" is not 1-65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := testVizValues()
			tc.edit(&v)
			_, err := RenderViz(v)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}
