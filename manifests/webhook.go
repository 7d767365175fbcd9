package manifests

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/internal/annotations"
)

// webhookMatchConditions narrow what the apiserver sends: admission
// selectors see labels only, so the opt-in annotation of a namespace cannot
// be selected on; these CEL conditions drop every pod the injector would
// skip anyway (opted out, hostNetwork, already injected).
func webhookMatchConditions() []admissionregistrationv1.MatchCondition {
	return []admissionregistrationv1.MatchCondition{
		{Name: "not-opted-out", Expression: `!has(object.metadata.annotations) || !('` + annotations.Inject + `' in object.metadata.annotations) || object.metadata.annotations['` + annotations.Inject + `'] != '` + annotations.Disabled + `'`},
		{Name: "not-host-network", Expression: `!has(object.spec.hostNetwork) || !object.spec.hostNetwork`},
		{Name: "not-injected", Expression: `!object.spec.containers.exists(c, c.name == '` + annotations.ProxyContainer + `') && (!has(object.spec.initContainers) || !object.spec.initContainers.exists(c, c.name == '` + annotations.ProxyContainer + `'))`},
	}
}

// webhook is the MutatingWebhookConfiguration. Namespaces kube-system and the
// control plane's, namespaces labelled weft.io/inject=disabled and pods of
// the control plane are never sent.
func webhook(v *Values, c *Certs) *admissionregistrationv1.MutatingWebhookConfiguration {
	failure := admissionregistrationv1.FailurePolicyType(v.WebhookFailurePolicy)
	none := admissionregistrationv1.SideEffectClassNone
	never := admissionregistrationv1.NeverReinvocationPolicy
	equivalent := admissionregistrationv1.Equivalent
	scope := admissionregistrationv1.NamespacedScope
	path := injectorPath
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   ClusterName(v.ControlPlaneNamespace, InjectorName),
			Labels: labels(v, "proxy-injector"),
		},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "proxy-injector.weft.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{
					Namespace: v.ControlPlaneNamespace, Name: InjectorName, Path: &path, Port: ptr(int32(injectorServicePort)),
				},
				CABundle: c.WebhookCAPEM,
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: &scope,
				},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", v.ControlPlaneNamespace}},
				{Key: annotations.Inject, Operator: metav1.LabelSelectorOpNotIn, Values: []string{annotations.Disabled}},
			}},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: LabelComponent, Operator: metav1.LabelSelectorOpDoesNotExist},
			}},
			MatchConditions:         webhookMatchConditions(),
			FailurePolicy:           &failure,
			MatchPolicy:             &equivalent,
			SideEffects:             &none,
			ReinvocationPolicy:      &never,
			TimeoutSeconds:          ptr(int32(10)),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}
