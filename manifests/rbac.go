package manifests

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var read = []string{"get", "list", "watch"}

// rbac grants each component exactly the verbs it uses: cluster-wide rules in
// ClusterRoles named per install namespace, rules on its own objects in
// namespaced Roles pinned with resourceNames.
func rbac(v *Values) []object {
	ns := v.ControlPlaneNamespace
	cluster := []struct {
		comp  string
		short string
		rules []rbacv1.PolicyRule
	}{
		{IdentityName, "identity", []rbacv1.PolicyRule{
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
		}},
		{DestinationName, "destination", []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
			{APIGroups: []string{"weft.io"}, Resources: []string{"serviceprofiles"}, Verbs: read},
		}},
		{InjectorName, "proxy-injector", []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get"}},
		}},
	}
	local := []struct {
		comp  string
		short string
		rules []rbacv1.PolicyRule
	}{
		{IdentityName, "identity", []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{IssuerSecretName}, Verbs: read},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{TrustRootsName}, Verbs: read},
		}},
		{InjectorName, "proxy-injector", []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{ConfigName}, Verbs: []string{"get"}},
		}},
	}
	var out []object
	for _, r := range cluster {
		name := ClusterName(ns, r.comp)
		m := metav1.ObjectMeta{Name: name, Labels: labels(v, r.short)}
		out = append(out,
			&rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}, ObjectMeta: m, Rules: r.rules},
			&rbacv1.ClusterRoleBinding{
				TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
				ObjectMeta: m,
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: name},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: r.comp, Namespace: ns}},
			})
	}
	for _, r := range local {
		m := meta(v, r.comp, r.short)
		out = append(out,
			&rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"}, ObjectMeta: m, Rules: r.rules},
			&rbacv1.RoleBinding{
				TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
				ObjectMeta: m,
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: r.comp},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: r.comp, Namespace: ns}},
			})
	}
	return out
}
