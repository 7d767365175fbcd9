// Package tap is the viz side of live traffic inspection: an aggregated
// API server for tap.weft.io/v1alpha1 that authorizes each request with a
// SubjectAccessReview, resolves the tapped resource to its meshed pods,
// opens Observe (api/tap/v1) on each pod's proxy over mTLS with the viz
// component's own SVID, and streams the merged events as JSON lines.
package tap

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/internal/annotations"
)

// Resources maps the names a user types to the API resource (plural) that
// RBAC checks as <resource>/tap.
var Resources = map[string]string{
	"deploy": "deployments", "deployment": "deployments", "deployments": "deployments",
	"sts": "statefulsets", "statefulset": "statefulsets", "statefulsets": "statefulsets",
	"ds": "daemonsets", "daemonset": "daemonsets", "daemonsets": "daemonsets",
	"job": "jobs", "jobs": "jobs",
	"po": "pods", "pod": "pods", "pods": "pods",
	"ns": "namespaces", "namespace": "namespaces", "namespaces": "namespaces",
	"svc": "services", "service": "services", "services": "services",
}

// Target is a tapped resource.
type Target struct {
	Namespace string
	Resource  string // plural, e.g. deployments
	Name      string
}

// ParseTarget reads "deploy/web" (or "ns/demo"); ns is the namespace flag.
func ParseTarget(s, ns string) (Target, error) {
	kind, name, ok := strings.Cut(s, "/")
	res := Resources[strings.ToLower(kind)]
	if !ok || name == "" || res == "" {
		return Target{}, fmt.Errorf("resource %q: want TYPE/NAME with TYPE one of deploy, sts, ds, job, pod, ns, svc (e.g. deploy/web)", s)
	}
	if res == "namespaces" {
		ns = name
	}
	return Target{Namespace: ns, Resource: res, Name: name}, nil
}

// PodSelector is how a target's pods are found.
type PodSelector struct {
	Namespace string
	Selector  labels.Selector // nil with PodName set, or Everything
	PodName   string
}

// Selector returns t's pod selector.
func Selector(ctx context.Context, cs kubernetes.Interface, t Target) (PodSelector, error) {
	ps := PodSelector{Namespace: t.Namespace}
	get := metav1.GetOptions{}
	var sel *metav1.LabelSelector
	switch t.Resource {
	case "pods":
		ps.PodName = t.Name
		return ps, nil
	case "namespaces":
		ps.Selector = labels.Everything()
		return ps, nil
	case "services":
		svc, err := cs.CoreV1().Services(t.Namespace).Get(ctx, t.Name, get)
		if err != nil {
			return ps, fmt.Errorf("service %s/%s: %w", t.Namespace, t.Name, err)
		}
		if len(svc.Spec.Selector) == 0 {
			return ps, fmt.Errorf("service %s/%s has no selector: no pods to tap", t.Namespace, t.Name)
		}
		ps.Selector = labels.SelectorFromSet(svc.Spec.Selector)
		return ps, nil
	case "deployments":
		d, err := cs.AppsV1().Deployments(t.Namespace).Get(ctx, t.Name, get)
		if err != nil {
			return ps, fmt.Errorf("deployment %s/%s: %w", t.Namespace, t.Name, err)
		}
		sel = d.Spec.Selector
	case "statefulsets":
		s, err := cs.AppsV1().StatefulSets(t.Namespace).Get(ctx, t.Name, get)
		if err != nil {
			return ps, fmt.Errorf("statefulset %s/%s: %w", t.Namespace, t.Name, err)
		}
		sel = s.Spec.Selector
	case "daemonsets":
		d, err := cs.AppsV1().DaemonSets(t.Namespace).Get(ctx, t.Name, get)
		if err != nil {
			return ps, fmt.Errorf("daemonset %s/%s: %w", t.Namespace, t.Name, err)
		}
		sel = d.Spec.Selector
	case "jobs":
		j, err := cs.BatchV1().Jobs(t.Namespace).Get(ctx, t.Name, get)
		if err != nil {
			return ps, fmt.Errorf("job %s/%s: %w", t.Namespace, t.Name, err)
		}
		sel = j.Spec.Selector
	default:
		return ps, fmt.Errorf("resource %q cannot be tapped", t.Resource)
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return ps, fmt.Errorf("%s %s/%s selector: %w", t.Resource, t.Namespace, t.Name, err)
	}
	ps.Selector = s
	return ps, nil
}

// MeshedPods lists the running pods of ps that carry a proxy.
func MeshedPods(ctx context.Context, cs kubernetes.Interface, ps PodSelector) ([]corev1.Pod, error) {
	opts := metav1.ListOptions{}
	if ps.PodName != "" {
		opts.FieldSelector = "metadata.name=" + ps.PodName
	} else if ps.Selector != nil {
		opts.LabelSelector = ps.Selector.String()
	}
	list, err := cs.CoreV1().Pods(ps.Namespace).List(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", ps.Namespace, err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && meshed(&p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func meshed(p *corev1.Pod) bool {
	for _, list := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range list {
			if c.Name == annotations.ProxyContainer {
				return true
			}
		}
	}
	return false
}
