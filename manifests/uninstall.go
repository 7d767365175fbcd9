package manifests

import (
	"bytes"
	"fmt"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
)

// CRDs renders every CustomResourceDefinition weft installs, as one YAML
// stream (`weft install --crds`).
func CRDs() ([]byte, error) {
	crd, err := ServiceProfileCRD()
	if err != nil {
		return nil, err
	}
	policy, err := PolicyCRDs()
	if err != nil {
		return nil, err
	}
	return append(append([]byte("---\n"), crd...), policy...), nil
}

// Uninstall lists, as YAML stubs for `kubectl delete -f -`, what removes an
// install in v.ControlPlaneNamespace: the webhook first (so no pod creation
// waits on a vanishing injector), the cluster-scoped RBAC, the namespace
// (which takes every namespaced object with it) and, with crds, the CRDs
// last — deleting them deletes every ServiceProfile.
func Uninstall(v Values, crds bool) ([]byte, error) {
	if err := (&v).validateNamespace(); err != nil {
		return nil, err
	}
	ns := v.ControlPlaneNamespace
	var buf bytes.Buffer
	stub := func(apiVersion, kind, name string) {
		fmt.Fprintf(&buf, "---\napiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n", apiVersion, kind, name)
	}
	stub("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", ClusterName(ns, InjectorName))
	for _, comp := range []string{IdentityName, DestinationName, InjectorName} {
		stub("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", ClusterName(ns, comp))
		stub("rbac.authorization.k8s.io/v1", "ClusterRole", ClusterName(ns, comp))
	}
	stub("v1", "Namespace", ns)
	if crds {
		stub("apiextensions.k8s.io/v1", "CustomResourceDefinition", sp.Resource+"."+sp.Group)
		for _, name := range PolicyCRDNames() {
			stub("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
		}
	}
	return buf.Bytes(), nil
}
