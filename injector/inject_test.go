package injector

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/weftmesh/weft/internal/annotations"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testValues() Values {
	v := DefaultValues()
	v.ProxyVersion = "v0.1.0"
	v.TrustAnchorsPEM = "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n"
	return v
}

func loadPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(raw, &pod); err != nil {
		t.Fatal(err)
	}
	return &pod
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from golden; run go test ./injector -update and review the diff:\n%s", name, got)
	}
}

func TestInjectGolden(t *testing.T) {
	for _, tc := range []string{"pod-basic", "pod-annotated", "pod-legacy"} {
		t.Run(tc, func(t *testing.T) {
			pod := loadPod(t, tc+".in.yaml")
			report, err := Inject(pod, testValues())
			if err != nil {
				t.Fatal(err)
			}
			out, err := yaml.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc+".golden.yaml", out)
			if report.NativeSidecar != (tc != "pod-legacy") {
				t.Errorf("NativeSidecar = %v", report.NativeSidecar)
			}
		})
	}
}

func TestInjectStructure(t *testing.T) {
	t.Parallel()
	pod := loadPod(t, "pod-basic.in.yaml")
	report, err := Inject(pod, testValues())
	if err != nil {
		t.Fatal(err)
	}
	ic := pod.Spec.InitContainers
	if len(ic) < 2 || ic[0].Name != annotations.InitContainer || ic[1].Name != annotations.ProxyContainer {
		t.Fatalf("init containers: want weft-init then weft-proxy first, got %v", names(ic))
	}
	proxy := ic[1]
	if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways || proxy.StartupProbe == nil {
		t.Fatal("proxy must be a native sidecar with a startup probe")
	}
	if *proxy.SecurityContext.RunAsUser != 2102 || !*proxy.SecurityContext.ReadOnlyRootFilesystem || proxy.SecurityContext.Capabilities.Drop[0] != "ALL" {
		t.Fatalf("proxy security context: %+v", proxy.SecurityContext)
	}
	caps := ic[0].SecurityContext.Capabilities
	if len(caps.Add) != 2 || caps.Add[0] != "NET_ADMIN" || caps.Add[1] != "NET_RAW" {
		t.Fatalf("init capabilities: %+v", caps)
	}
	// The pod exposes 3306 and 8080: only 3306 is on the default opaque list.
	if len(report.OpaquePorts) != 1 || report.OpaquePorts[0] != 3306 {
		t.Fatalf("opaque ports = %v, want [3306]", report.OpaquePorts)
	}
	if pod.Annotations[annotations.ProxyVersion] != "v0.1.0" || len(pod.Annotations[annotations.TrustRootSHA256]) != 64 {
		t.Fatalf("annotations: %v", pod.Annotations)
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestInjectRejectsBadAnnotations(t *testing.T) {
	t.Parallel()
	tests := []struct{ key, value string }{
		{annotations.SkipInboundPorts, "80,http"},
		{annotations.SkipOutboundPorts, "9-3"},
		{annotations.SkipSubnets, "10.0.0.0/33"},
		{annotations.OpaquePorts, "70000"},
		{annotations.ProxyCPURequest, "lots"},
		{annotations.ProxyLogLevel, "loud"},
		{annotations.DefaultInboundPolicy, "deny"},
		{annotations.ShutdownGracePeriod, "-5s"},
		{annotations.NativeSidecar, "maybe"},
	}
	for _, tt := range tests {
		pod := loadPod(t, "pod-basic.in.yaml")
		pod.Annotations = map[string]string{tt.key: tt.value}
		before := pod.DeepCopy()
		_, err := Inject(pod, testValues())
		if err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%s=%q: got %v, want an error naming the annotation", tt.key, tt.value, err)
		}
		if len(pod.Spec.InitContainers) != len(before.Spec.InitContainers) {
			t.Errorf("%s: pod changed despite the error", tt.key)
		}
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	injected := loadPod(t, "pod-basic.in.yaml")
	if _, err := Inject(injected, testValues()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		podAnn string
		nsAnn  string
		host   bool
		pod    *corev1.Pod
		want   bool
	}{
		{name: "namespace enabled", nsAnn: "enabled", want: true},
		{name: "pod enabled", podAnn: "enabled", want: true},
		{name: "pod disabled wins", podAnn: "disabled", nsAnn: "enabled", want: false},
		{name: "nothing", want: false},
		{name: "typo", podAnn: "enabeld", nsAnn: "enabled", want: false},
		{name: "hostNetwork", nsAnn: "enabled", host: true, want: false},
		{name: "already injected", nsAnn: "enabled", pod: injected, want: false},
	}
	for _, tt := range tests {
		pod := tt.pod
		if pod == nil {
			pod = loadPod(t, "pod-basic.in.yaml")
			pod.Spec.HostNetwork = tt.host
			if tt.podAnn != "" {
				pod.Annotations = map[string]string{annotations.Inject: tt.podAnn}
			}
		}
		d := Decide(pod, map[string]string{annotations.Inject: tt.nsAnn})
		if d.Inject != tt.want || d.Reason == "" {
			t.Errorf("%s: got %+v, want inject=%v with a reason", tt.name, d, tt.want)
		}
	}
}

type fakeNS map[string]map[string]string

func (f fakeNS) Annotations(_ context.Context, ns string) (map[string]string, error) {
	return f[ns], nil
}

type fixedValues Values

func (f fixedValues) Values() (Values, error) { return Values(f), nil }

func admit(t *testing.T, wh *Webhook, pod *corev1.Pod, ns string) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, _ := json.Marshal(pod)
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "uid-1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Namespace: ns, Operation: admissionv1.Create, Object: runtimeRaw(raw)},
	}
	body, _ := json.Marshal(review)
	rec := httptest.NewRecorder()
	wh.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/inject", bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Response.UID != "uid-1" {
		t.Fatalf("response UID %q", out.Response.UID)
	}
	return out.Response
}

func TestWebhookPatchEqualsManualInjection(t *testing.T) {
	t.Parallel()
	outcomes := map[string]int{}
	wh := &Webhook{
		Namespaces: fakeNS{"demo": {annotations.Inject: "enabled", annotations.ProxyLogLevel: "debug"}},
		Values:     fixedValues(testValues()),
		Logger:     discardLogger(),
		Observe:    func(o string) { outcomes[o]++ },
	}
	pod := loadPod(t, "pod-basic.in.yaml")
	resp := admit(t, wh, pod, "demo")
	if !resp.Allowed || resp.Patch == nil {
		t.Fatalf("want an allowed response with a patch, got %+v", resp)
	}
	raw, _ := json.Marshal(pod)
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := patch.Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(patched, &got); err != nil {
		t.Fatal(err)
	}
	// The same code path by hand: namespace config merged, then Inject.
	want := pod.DeepCopy()
	MergeNamespaceConfig(want, wh.Namespaces.(fakeNS)["demo"])
	if _, err := Inject(want, testValues()); err != nil {
		t.Fatal(err)
	}
	want.Annotations[annotations.InjectedBy] = "webhook"
	gotYAML, _ := yaml.Marshal(&got)
	wantYAML, _ := yaml.Marshal(want)
	if !bytes.Equal(gotYAML, wantYAML) {
		t.Fatalf("patched pod differs from manual injection:\n%s\n---\n%s", gotYAML, wantYAML)
	}
	if !strings.Contains(string(gotYAML), "value: debug") {
		t.Fatal("namespace-level log level not applied")
	}

	// Skipped and denied cases.
	if resp := admit(t, wh, loadPod(t, "pod-basic.in.yaml"), "other"); !resp.Allowed || resp.Patch != nil {
		t.Fatal("pod in a namespace without the annotation must pass unchanged")
	}
	bad := loadPod(t, "pod-basic.in.yaml")
	bad.Annotations = map[string]string{annotations.SkipInboundPorts: "http"}
	if resp := admit(t, wh, bad, "demo"); resp.Allowed || !strings.Contains(resp.Result.Message, annotations.SkipInboundPorts) {
		t.Fatalf("invalid annotation must be refused naming it, got %+v", resp)
	}
	if outcomes["injected"] != 1 || outcomes["skipped"] != 1 || outcomes["denied"] != 1 {
		t.Fatalf("outcomes %v", outcomes)
	}
}

// TestWebhookPatchGolden pins the JSON patch the webhook returns for a pod in
// an annotated namespace (ops sorted by path and indented for review).
func TestWebhookPatchGolden(t *testing.T) {
	patch, err := PodPatch(loadPod(t, "pod-basic.in.yaml"), map[string]string{annotations.Inject: "enabled"}, testValues(), "webhook")
	if err != nil {
		t.Fatal(err)
	}
	var ops []map[string]any
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatal(err)
	}
	sort.SliceStable(ops, func(i, j int) bool { return fmt.Sprint(ops[i]["path"]) < fmt.Sprint(ops[j]["path"]) })
	out, err := json.MarshalIndent(ops, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "webhook-patch.golden.json", append(out, '\n'))
}
