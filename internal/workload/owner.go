// Package workload names the workload a pod belongs to.
package workload

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Owner names the pod's workload: its controller, except that a ReplicaSet
// created by a Deployment is reported as the Deployment (its name minus the
// pod-template-hash). A pod without a controller is its own workload.
func Owner(p *corev1.Pod) (kind, name string) {
	ref := metav1.GetControllerOf(p)
	if ref == nil {
		return "Pod", p.Name
	}
	if ref.Kind == "ReplicaSet" {
		if hash := p.Labels["pod-template-hash"]; hash != "" {
			if dep, ok := strings.CutSuffix(ref.Name, "-"+hash); ok {
				return "Deployment", dep
			}
		}
	}
	return ref.Kind, ref.Name
}
