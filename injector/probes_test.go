package injector

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/internal/annotations"
)

func probePod(policy string) *corev1.Pod {
	httpProbe := func(port intstr.IntOrString, path string, scheme corev1.URIScheme) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: port, Path: path, Scheme: scheme}}}
	}
	p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name:           "app",
		Image:          "weft/testapp:dev",
		Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		ReadinessProbe: httpProbe(intstr.FromString("http"), "/healthz", ""),
		LivenessProbe:  httpProbe(intstr.FromInt32(8081), "live?deep=1", corev1.URISchemeHTTP),
		StartupProbe:   httpProbe(intstr.FromInt32(8443), "/tls", corev1.URISchemeHTTPS),
	}}}}
	if policy != "" {
		p.Annotations = map[string]string{annotations.DefaultInboundPolicy: policy}
	}
	return p
}

func proxyEnvValue(p *corev1.Pod, name string) string {
	for _, c := range p.Spec.InitContainers {
		if c.Name == annotations.ProxyContainer {
			for _, e := range c.Env {
				if e.Name == name {
					return e.Value
				}
			}
		}
	}
	return ""
}

func TestProbesRewrittenUnderAllAuthenticated(t *testing.T) {
	t.Parallel()
	original := probePod("all-authenticated")
	pod := original.DeepCopy()
	if _, err := Inject(pod, testValues()); err != nil {
		t.Fatal(err)
	}
	app := pod.Spec.Containers[0]
	if hg := app.ReadinessProbe.HTTPGet; hg.Port.IntVal != AdminPort || hg.Path != "/app-probe/8080/healthz" {
		t.Errorf("readiness probe = %+v", hg)
	}
	if hg := app.LivenessProbe.HTTPGet; hg.Port.IntVal != AdminPort || hg.Path != "/app-probe/8081/live?deep=1" {
		t.Errorf("liveness probe = %+v", hg)
	}
	if hg := app.StartupProbe.HTTPGet; hg.Port.IntVal != 8443 {
		t.Errorf("an HTTPS probe (not refused by the policy) must stay: %+v", hg)
	}
	if got := proxyEnvValue(pod, "WEFT_PROXY_APP_PROBES"); got != "8081:/live,8080:/healthz" {
		t.Errorf("WEFT_PROXY_APP_PROBES = %q", got)
	}
	// Uninject restores the probes exactly.
	if !RemoveProxy(pod) {
		t.Fatal("nothing removed")
	}
	if !reflect.DeepEqual(pod.Spec.Containers[0], original.Spec.Containers[0]) {
		t.Errorf("probes not restored:\n%+v\nwant\n%+v", pod.Spec.Containers[0], original.Spec.Containers[0])
	}
	if _, ok := pod.Annotations[annotations.OriginalProbes]; ok {
		t.Error("original-probes annotation left behind")
	}
}

func TestProbesKeptUnderPermissivePolicy(t *testing.T) {
	t.Parallel()
	pod := probePod("")
	if _, err := Inject(pod, testValues()); err != nil {
		t.Fatal(err)
	}
	if pod.Spec.Containers[0].ReadinessProbe.HTTPGet.Port.StrVal != "http" || proxyEnvValue(pod, "WEFT_PROXY_APP_PROBES") != "" {
		t.Fatal("probes must stay as they are when plaintext is allowed")
	}
}

func TestProbeRewriteErrorLeavesPodUnchanged(t *testing.T) {
	t.Parallel()
	pod := probePod("all-authenticated")
	pod.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromString("nope")
	before := pod.DeepCopy()
	_, err := Inject(pod, testValues())
	if err == nil || !strings.Contains(err.Error(), `container app readiness probe: no container port named "nope"`) {
		t.Fatalf("got %v", err)
	}
	if !reflect.DeepEqual(pod, before) {
		t.Fatal("pod changed despite the error")
	}
}
