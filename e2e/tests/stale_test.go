//go:build e2e

package tests

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ownerLabel marks the cluster-scoped objects a test creates with the test's namespace, so that
// objects left by an interrupted run can be found and removed.
const ownerLabel = "weft-e2e/namespace"

// clusterScopedLabels labels a cluster-scoped object as belonging to namespace ns.
func clusterScopedLabels(ns string) map[string]string {
	return map[string]string{"weft-e2e": "true", ownerLabel: ns}
}

// removeStale deletes cluster-scoped objects of earlier runs whose namespace is gone (a run that
// is still going keeps its namespace, so concurrent suites are left alone).
func removeStale(ctx context.Context) error {
	orphan := func(labels map[string]string) bool {
		ns := labels[ownerLabel]
		if ns == "" {
			return false
		}
		_, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}
	sel := metav1.ListOptions{LabelSelector: ownerLabel}
	var firstErr error
	note := func(kind, name string, err error) {
		if err != nil && !apierrors.IsNotFound(err) && firstErr == nil {
			firstErr = fmt.Errorf("delete stale %s %s: %w", kind, name, err)
		}
	}
	if l, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, sel); err == nil {
		for _, o := range l.Items {
			if orphan(o.Labels) {
				note("mutatingwebhookconfiguration", o.Name, kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, o.Name, metav1.DeleteOptions{}))
			}
		}
	}
	if l, err := kube.RbacV1().ClusterRoleBindings().List(ctx, sel); err == nil {
		for _, o := range l.Items {
			if orphan(o.Labels) {
				note("clusterrolebinding", o.Name, kube.RbacV1().ClusterRoleBindings().Delete(ctx, o.Name, metav1.DeleteOptions{}))
			}
		}
	}
	if l, err := kube.RbacV1().ClusterRoles().List(ctx, sel); err == nil {
		for _, o := range l.Items {
			if orphan(o.Labels) {
				note("clusterrole", o.Name, kube.RbacV1().ClusterRoles().Delete(ctx, o.Name, metav1.DeleteOptions{}))
			}
		}
	}
	return firstErr
}
