package watcher

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Informer transforms: keep only what the watcher reads, so a cluster with
// many large objects costs little memory. Unknown types pass through.

func trimMeta(m *metav1.ObjectMeta, keepAnnotations ...string) {
	m.ManagedFields = nil
	if len(m.Annotations) == 0 {
		return
	}
	kept := map[string]string{}
	for _, k := range keepAnnotations {
		if v, ok := m.Annotations[k]; ok {
			kept[k] = v
		}
	}
	m.Annotations = kept
}

func trimService(o any) (any, error) {
	svc, ok := o.(*corev1.Service)
	if !ok {
		return o, nil
	}
	trimMeta(&svc.ObjectMeta, OpaquePortsAnnotation)
	svc.Status = corev1.ServiceStatus{}
	return svc, nil
}

func trimSlice(o any) (any, error) {
	es, ok := o.(*discoveryv1.EndpointSlice)
	if !ok {
		return o, nil
	}
	trimMeta(&es.ObjectMeta)
	for i := range es.Endpoints {
		es.Endpoints[i].DeprecatedTopology = nil
		es.Endpoints[i].Hints = nil
	}
	return es, nil
}

func trimPod(o any) (any, error) {
	p, ok := o.(*corev1.Pod)
	if !ok {
		return o, nil
	}
	trimMeta(&p.ObjectMeta, ProxyVersionAnnotation, OpaquePortsAnnotation)
	keep := func(cs []corev1.Container) []corev1.Container {
		out := make([]corev1.Container, len(cs))
		for i, c := range cs {
			out[i] = corev1.Container{Name: c.Name}
		}
		return out
	}
	p.Spec = corev1.PodSpec{
		ServiceAccountName: p.Spec.ServiceAccountName,
		NodeName:           p.Spec.NodeName,
		InitContainers:     keep(p.Spec.InitContainers),
		Containers:         keep(p.Spec.Containers),
	}
	p.Status = corev1.PodStatus{PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs, Phase: p.Status.Phase}
	return p, nil
}
