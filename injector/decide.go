package injector

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/internal/annotations"
)

// Decision says whether a pod is injected and why.
type Decision struct {
	Inject bool
	// Reason is a short human sentence for reports and logs.
	Reason string
}

// Decide applies weft's rules: a pod-level weft.io/inject wins over the
// namespace's; "enabled" injects; already-injected and hostNetwork pods are
// left alone.
func Decide(pod *corev1.Pod, nsAnnotations map[string]string) Decision {
	switch {
	case isInjected(pod):
		return Decision{false, "already injected"}
	case pod.Spec.HostNetwork:
		return Decision{false, "hostNetwork pods share the node's network namespace and cannot be meshed"}
	}
	podValue, podSet := pod.Annotations[annotations.Inject]
	switch {
	case podSet && podValue == annotations.Disabled:
		return Decision{false, "pod annotation weft.io/inject=disabled"}
	case podSet && podValue == annotations.Enabled:
		return Decision{true, "pod annotation weft.io/inject=enabled"}
	case podSet:
		return Decision{false, "pod annotation weft.io/inject=" + podValue + " is neither enabled nor disabled"}
	case nsAnnotations[annotations.Inject] == annotations.Enabled:
		return Decision{true, "namespace annotation weft.io/inject=enabled"}
	}
	return Decision{false, "neither the pod nor its namespace has weft.io/inject=enabled"}
}

func isInjected(pod *corev1.Pod) bool {
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.Name == annotations.ProxyContainer {
				return true
			}
		}
	}
	return false
}
