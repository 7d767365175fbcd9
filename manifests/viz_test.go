package manifests

import (
	"fmt"
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

func testVizCerts(t *testing.T) *VizCerts {
	t.Helper()
	c, err := NewVizCerts(fixedGenerator{t})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRenderVizGolden(t *testing.T) {
	custom := testVizValues()
	custom.ControllerImage = "registry.example/weft/controller"
	custom.ScrapeInterval = 5 * time.Second
	custom.Window = 30 * time.Minute
	custom.MemoryLimit = "1Gi"
	custom.ControlPlaneNamespace = "mesh"
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
			out, err := RenderViz(tc.v, testVizCerts(t))
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
	out, err := RenderViz(testVizValues(), testVizCerts(t))
	if err != nil {
		t.Fatal(err)
	}
	objs := docs(t, out)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o["kind"].(string))
	}
	if got := strings.Join(kinds, ","); got != "Namespace,ServiceAccount,ClusterRole,ClusterRoleBinding,ClusterRole,ClusterRoleBinding,RoleBinding,Secret,Service,Deployment,APIService" {
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
		{"no weft namespace", func(v *VizValues) { v.ControlPlaneNamespace = "" }, "--weft-namespace is empty"},
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
			_, err := RenderViz(v, testVizCerts(t))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRenderVizTap: the APIService trusts the serving certificate's CA and
// points at the Service's tap port; users get only watch on */tap; the
// component reads only the front-proxy ConfigMap and ConfigMaps named
// weft-config.
func TestRenderVizTap(t *testing.T) {
	c := testVizCerts(t)
	v := testVizValues()
	v.ControlPlaneNamespace = "mesh"
	out, err := RenderViz(v, c)
	if err != nil {
		t.Fatal(err)
	}
	objs := docs(t, out)
	apisvc := find(t, objs, "APIService", "v1alpha1.tap.weft.io")
	if dig(t, apisvc, "spec", "service", "name") != VizName || dig(t, apisvc, "spec", "service", "port") != float64(443) {
		t.Errorf("APIService service = %v", dig(t, apisvc, "spec", "service"))
	}
	if dig(t, apisvc, "spec", "caBundle") == "" {
		t.Errorf("APIService has no caBundle")
	}
	secret := find(t, objs, "Secret", VizTapTLSName)
	if dig(t, secret, "stringData", "tls.crt") != string(c.CertPEM) {
		t.Errorf("tap Secret does not hold the serving certificate")
	}
	role := find(t, objs, "ClusterRole", TapClusterRole)
	rules := dig(t, role, "rules").([]any)
	if len(rules) != 1 || fmt.Sprint(rules[0].(map[string]any)["verbs"]) != "[watch]" || fmt.Sprint(rules[0].(map[string]any)["apiGroups"]) != "[tap.weft.io]" {
		t.Errorf("%s rules = %v, want only watch in tap.weft.io", TapClusterRole, rules)
	}
	reader := findNS(t, objs, "RoleBinding", "kube-system", VizName+"-auth-reader")
	if dig(t, reader, "roleRef", "name") != "extension-apiserver-authentication-reader" {
		t.Errorf("kube-system RoleBinding = %v", reader)
	}
	viz := find(t, objs, "ClusterRole", VizName)
	cfgRule := false
	for _, r := range dig(t, viz, "rules").([]any) {
		r := r.(map[string]any)
		if fmt.Sprint(r["resources"]) == "[configmaps]" {
			cfgRule = fmt.Sprint(r["resourceNames"]) == "[weft-config]" && fmt.Sprint(r["verbs"]) == "[get]"
		}
	}
	if !cfgRule {
		t.Errorf("%s may not get weft-config (and nothing else among ConfigMaps): %v", VizName, dig(t, viz, "rules"))
	}
	dep := find(t, objs, "Deployment", VizName)
	ann := dig(t, dep, "spec", "template", "metadata", "annotations").(map[string]any)
	if ann[annotations.SkipOutboundPorts] != "4190,4191,8080" || ann[annotations.SkipInboundPorts] != "8089" || len(fmt.Sprint(ann[TapCertHashAnnotation])) != 64 {
		t.Errorf("pod annotations = %v", ann)
	}
	args := fmt.Sprint(dig(t, dep, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)["args"])
	for _, want := range []string{"--tap-addr=:8089", "--weft-namespace=mesh", "--identity-token-file="} {
		if !strings.Contains(args, want) {
			t.Errorf("viz args %s lack %s", args, want)
		}
	}
}

func findNS(t *testing.T, objs []map[string]any, kind, ns, name string) map[string]any {
	t.Helper()
	for _, o := range objs {
		m := o["metadata"].(map[string]any)
		if o["kind"] == kind && m["name"] == name && m["namespace"] == ns {
			return o
		}
	}
	t.Fatalf("no %s %s/%s", kind, ns, name)
	return nil
}
