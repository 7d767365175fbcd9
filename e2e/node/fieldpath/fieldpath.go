// Package fieldpath resolves the downward API's pod field paths
// (metadata.name, metadata.labels['app'], status.podIP, ...) the way the
// kubelet does, for environment variables and downwardAPI volumes alike.
package fieldpath

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Pod is what a field path can name: the pod object and the addresses the
// node assigned (which its status may not show yet).
type Pod struct {
	Pod    *corev1.Pod
	PodIPs []netip.Addr
	HostIP netip.Addr
}

// Resolve returns the value of path; an unknown path is an error naming it.
func Resolve(p Pod, path string) (string, error) {
	pod := p.Pod
	if sub, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[sub], nil
	}
	if sub, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[sub], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.hostIPs":
		if !p.HostIP.IsValid() {
			return "", nil
		}
		return p.HostIP.String(), nil
	case "status.podIP":
		if len(p.PodIPs) == 0 {
			return "", nil
		}
		return p.PodIPs[0].String(), nil
	case "status.podIPs":
		ips := make([]string, len(p.PodIPs))
		for i, ip := range p.PodIPs {
			ips[i] = ip.String()
		}
		return strings.Join(ips, ","), nil
	}
	return "", fmt.Errorf("unsupported fieldRef %q", path)
}

// subscript parses "<prefix>['key']".
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

// formatMap renders labels or annotations as the kubelet does: sorted
// key="value" lines.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k + "=" + strconv.Quote(m[k]))
	}
	return b.String()
}
