package watcher

import (
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/internal/workload"
)

// Annotations and names read from pods. The injector writes them.
const (
	ProxyVersionAnnotation = annotations.ProxyVersion
	OpaquePortsAnnotation  = annotations.OpaquePorts
	ProxyContainerName     = annotations.ProxyContainer
)

// podFromObject extracts what the destination service uses from a pod.
func podFromObject(p *corev1.Pod) *Pod {
	out := &Pod{
		Name:           p.Name,
		Namespace:      p.Namespace,
		ServiceAccount: p.Spec.ServiceAccountName,
		Meshed:         isMeshed(p),
		OpaquePorts:    ParsePorts(p.Annotations[OpaquePortsAnnotation]),
	}
	if out.ServiceAccount == "" {
		out.ServiceAccount = "default"
	}
	if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil {
		out.IP = ip
	}
	out.OwnerKind, out.OwnerName = workload.Owner(p)
	return out
}

func isMeshed(p *corev1.Pod) bool {
	if _, ok := p.Annotations[ProxyVersionAnnotation]; ok {
		return true
	}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			if c.Name == ProxyContainerName {
				return true
			}
		}
	}
	return false
}

// ParsePorts parses a comma-separated list of ports and ranges ("25,3306,
// 8000-8002"); malformed items are ignored. nil for an empty list.
func ParsePorts(s string) map[uint32]bool {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	out := map[uint32]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		lo, hi, isRange := strings.Cut(item, "-")
		a, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
				continue
			}
		}
		for p := a; p <= b; p++ {
			out[uint32(p)] = true
		}
	}
	return out
}
