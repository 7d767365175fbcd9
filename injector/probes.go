package injector

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/internal/annotations"
)

// appProbePrefix matches proxy/admin.ProbePrefix.
const appProbePrefix = "/app-probe/"

// rewrittenProbe remembers an httpGet probe the injector pointed at the
// proxy, so uninject can restore it.
type rewrittenProbe struct {
	Container string                `json:"container"`
	Kind      string                `json:"kind"` // liveness, readiness, startup
	Original  *corev1.HTTPGetAction `json:"original"`
}

// rewriteProbes points the application's plaintext httpGet probes at the
// proxy's admin port, which forwards them to the application: the kubelet
// probes in plaintext, which an all-authenticated inbound policy refuses.
// It returns the proxy's WEFT_PROXY_APP_PROBES value ("" when none).
func rewriteProbes(pod *corev1.Pod) (string, error) {
	var (
		allowed []string
		saved   []rewrittenProbe
	)
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			c := &cs[i]
			for _, pr := range []struct {
				kind  string
				probe *corev1.Probe
			}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}, {"startup", c.StartupProbe}} {
				if pr.probe == nil || pr.probe.HTTPGet == nil || pr.probe.HTTPGet.Scheme == corev1.URISchemeHTTPS {
					continue
				}
				hg := pr.probe.HTTPGet
				port, err := probePort(c, hg.Port)
				if err != nil {
					return "", fmt.Errorf("container %s %s probe: %w", c.Name, pr.kind, err)
				}
				path, query, _ := strings.Cut(hg.Path, "?")
				if !strings.HasPrefix(path, "/") {
					path = "/" + path
				}
				saved = append(saved, rewrittenProbe{Container: c.Name, Kind: pr.kind, Original: hg.DeepCopy()})
				allowed = append(allowed, strconv.Itoa(port)+":"+path)
				newPath := appProbePrefix + strconv.Itoa(port) + path
				if query != "" {
					newPath += "?" + query
				}
				hg.Port, hg.Path, hg.Scheme = intstr.FromInt32(AdminPort), newPath, corev1.URISchemeHTTP
			}
		}
	}
	if len(saved) == 0 {
		return "", nil
	}
	raw, err := json.Marshal(saved)
	if err != nil {
		return "", err
	}
	pod.Annotations[annotations.OriginalProbes] = string(raw)
	return strings.Join(allowed, ","), nil
}

func probePort(c *corev1.Container, p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("port %d out of range", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("no container port named %q", p.StrVal)
}

// restoreProbes undoes rewriteProbes; it reports whether anything changed.
func restoreProbes(pod *corev1.Pod) bool {
	raw, ok := pod.Annotations[annotations.OriginalProbes]
	if !ok {
		return false
	}
	delete(pod.Annotations, annotations.OriginalProbes)
	var saved []rewrittenProbe
	if json.Unmarshal([]byte(raw), &saved) != nil {
		return true
	}
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			c := &cs[i]
			for _, s := range saved {
				if s.Container != c.Name || s.Original == nil {
					continue
				}
				probe := map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe}[s.Kind]
				if probe != nil {
					probe.HTTPGet = s.Original
				}
			}
		}
	}
	return true
}
