package window

import (
	"fmt"
	"strings"
)

// Resource names what a query is about: a resource type (canonical short
// form), an optional name and a namespace ("" for all namespaces).
type Resource struct {
	Type      string `json:"type"`
	Name      string `json:"name,omitempty"`
	Namespace string `json:"namespace,omitempty"`
}

// Resource types, by their canonical short names.
var typeAliases = map[string]string{
	"deploy": "deploy", "deployment": "deploy", "deployments": "deploy",
	"sts": "sts", "statefulset": "sts", "statefulsets": "sts",
	"ds": "ds", "daemonset": "ds", "daemonsets": "ds",
	"job": "job", "jobs": "job",
	"po": "po", "pod": "po", "pods": "po",
	"svc": "svc", "service": "svc", "services": "svc",
	"ns": "ns", "namespace": "ns", "namespaces": "ns",
	"au": "authority", "authority": "authority", "authorities": "authority",
}

// kinds maps workload types to the Kind a pod's owner has.
var kinds = map[string]string{"deploy": "Deployment", "sts": "StatefulSet", "ds": "DaemonSet", "job": "Job"}

// ShortType returns the canonical type of a workload Kind ("Deployment" →
// "deploy"); the Kind itself when it has none.
func ShortType(kind string) string {
	for t, k := range kinds {
		if k == kind {
			return t
		}
	}
	if kind == "Pod" {
		return "po"
	}
	return strings.ToLower(kind)
}

// ParseResource reads TYPE or TYPE/NAME (e.g. "deploy", "deploy/web",
// "svc/books") in namespace ns.
func ParseResource(s, ns string) (Resource, error) {
	t, name, _ := strings.Cut(s, "/")
	canon, ok := typeAliases[strings.ToLower(t)]
	if !ok {
		return Resource{}, fmt.Errorf("unknown resource type %q: use one of deploy, sts, ds, job, po, svc, ns, authority (optionally TYPE/NAME)", t)
	}
	if strings.Contains(name, "/") {
		return Resource{}, fmt.Errorf("resource %q has more than one '/': write TYPE/NAME", s)
	}
	r := Resource{Type: canon, Name: name, Namespace: ns}
	if canon == "ns" {
		r.Namespace = ""
	}
	return r, nil
}

// String renders TYPE[/NAME].
func (r Resource) String() string {
	if r.Name == "" {
		return r.Type
	}
	return r.Type + "/" + r.Name
}

// owns reports whether a series' own workload (the scraped pod's) belongs
// to r, and the row name it has under r.
func (r Resource) owns(k *Key) (ns, name string, ok bool) {
	switch r.Type {
	case "po":
		if k.Pod == "" {
			return "", "", false
		}
		ns, name = k.Namespace, k.Pod
	case "ns":
		ns, name = "", k.Namespace
	case "authority":
		ns, name = "", k.Authority
	default:
		if kinds[r.Type] != k.Kind || k.Pod != "" {
			return "", "", false
		}
		ns, name = k.Namespace, k.Name
	}
	if r.Type != "po" && k.Pod != "" {
		return "", "", false
	}
	if r.Namespace != "" && k.Namespace != r.Namespace {
		return "", "", false
	}
	if r.Name != "" && name != r.Name {
		return "", "", false
	}
	return ns, name, true
}

// dst reports whether an outbound series' destination belongs to r, and
// the row name it has under r. svcIP maps ClusterIP:port authorities to
// "ns/name" of their Service.
func (r Resource) dst(k *Key, svcName func(authority string) (ns, name string)) (ns, name string, ok bool) {
	switch r.Type {
	case "ns":
		ns, name = "", k.DstNamespace
	case "authority":
		ns, name = "", k.Authority
	case "svc":
		ns, name = k.DstNamespace, k.DstService
		if name == "" {
			ns, name = svcName(k.Authority)
		}
	case "po":
		if k.DstKind != "Pod" {
			return "", "", false
		}
		ns, name = k.DstNamespace, k.DstName
	default:
		if kinds[r.Type] != k.DstKind {
			return "", "", false
		}
		ns, name = k.DstNamespace, k.DstName
	}
	if name == "" {
		return "", "", false
	}
	if r.Namespace != "" && ns != "" && ns != r.Namespace {
		return "", "", false
	}
	if r.Name != "" && name != r.Name {
		return "", "", false
	}
	return ns, name, true
}

// serviceOfAuthority reads "name.ns.svc.cluster.local:port" or
// "name.ns:port" forms.
func serviceOfAuthority(a string) (ns, name string) {
	host := a
	if i := strings.LastIndexByte(a, ':'); i >= 0 {
		host = a[:i]
	}
	parts := strings.Split(host, ".")
	if len(parts) >= 2 && (len(parts) == 2 || parts[2] == "svc") {
		return parts[1], parts[0]
	}
	return "", ""
}
