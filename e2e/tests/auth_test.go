//go:build e2e

package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/e2e/testapp"
)

// TestProjectedTokenReview: a projected ServiceAccount token with the identity audience
// authenticates as the pod's ServiceAccount in a TokenReview made from inside the pod.
func TestProjectedTokenReview(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := ctxFor(t, time.Minute)
	const sa = "reviewer"
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create serviceaccount: %v", err)
	}
	role := "e2e-tokenreview-" + ns
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role, Labels: clusterScopedLabels(ns)},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create clusterrole: %v", err)
	}
	t.Cleanup(func() { deleteClusterScoped(t, "clusterrole", role, kube.RbacV1().ClusterRoles().Delete) })
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role, Labels: clusterScopedLabels(ns)},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create clusterrolebinding: %v", err)
	}
	t.Cleanup(func() { deleteClusterScoped(t, "clusterrolebinding", role, kube.RbacV1().ClusterRoleBindings().Delete) })

	p := testappPod("token-review", "token-review", "--token-file", "/var/run/secrets/tokens/token", "--audience", "identity.weft.io")
	p.Spec.ServiceAccountName = sa
	p.Spec.Volumes = []corev1.Volume{{Name: "identity-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience: "identity.weft.io", ExpirationSeconds: ptr[int64](3600), Path: "token",
		}}},
	}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "identity-token", MountPath: "/var/run/secrets/tokens", ReadOnly: true}}
	p = createPod(t, ns, p)
	logs := followLogs(t, p, "app")
	waitSucceeded(t, ns, p.Name, logs)
	want := fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa)
	if log := logs.text(t, "app"); !strings.Contains(log, want) {
		t.Errorf("token-review printed:\n%s\nwant %s", log, want)
	}
}

func deleteClusterScoped(t *testing.T, kind, name string, del func(context.Context, string, metav1.DeleteOptions) error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := del(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete %s %s: %v", kind, name, err)
	}
}

// TestMutatingWebhook: the apiserver calls a mutating webhook served by a pod (through its
// Service, TLS verified against the configured caBundle); only pods matching the objectSelector
// are mutated.
func TestMutatingWebhook(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := ctxFor(t, time.Minute)
	caPEM, certPEM, keyPEM := servingCert(t, "webhook."+ns+".svc", "webhook."+ns+".svc.cluster.local")
	if _, err := kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret: %v", err)
	}
	srv := testappPod("webhook", "webhook", "--addr", ":8443", "--cert", "/etc/webhook/tls.crt", "--key", "/etc/webhook/tls.key")
	srv.Spec.RestartPolicy = corev1.RestartPolicyAlways
	srv.Spec.Volumes = []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "webhook-tls"}}}}
	c := &srv.Spec.Containers[0]
	c.VolumeMounts = []corev1.VolumeMount{{Name: "tls", MountPath: "/etc/webhook", ReadOnly: true}}
	c.Ports = []corev1.ContainerPort{{Name: "https", ContainerPort: 8443}}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("https"), Scheme: corev1.URISchemeHTTPS}},
		PeriodSeconds: 1,
	}
	createPod(t, ns, srv)
	if _, err := kube.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "webhook"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "webhook"},
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, TargetPort: intstr.FromString("https")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	waitPod(t, ns, "webhook", "to be ready", podReady)

	const selectLabel = "weft-e2e/mutate"
	name := "e2e-mutate-" + ns
	mwc := &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: clusterScopedLabels(ns)},
		Webhooks: []admissionregv1.MutatingWebhook{{
			Name: "mutate.e2e.weft.io",
			ClientConfig: admissionregv1.WebhookClientConfig{
				Service:  &admissionregv1.ServiceReference{Namespace: ns, Name: "webhook", Path: ptr("/mutate"), Port: ptr[int32](443)},
				CABundle: caPEM,
			},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{selectLabel: "true"}},
			SideEffects:             ptr(admissionregv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			FailurePolicy:           ptr(admissionregv1.Fail),
			TimeoutSeconds:          ptr[int32](10),
		}},
	}
	if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create mutatingwebhookconfiguration: %v", err)
	}
	t.Cleanup(func() {
		deleteClusterScoped(t, "mutatingwebhookconfiguration", name, kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete)
	})

	labelled := func(n string) *corev1.Pod {
		p := testappPod(n, "sleep", "1s")
		p.Labels[selectLabel] = "true"
		return p
	}
	// The apiserver picks up a new webhook configuration asynchronously: dry-run creates (the
	// webhook declares no side effects) until one comes back mutated.
	waitFor(t, podTimeout, "the apiserver to call the webhook", func(ctx context.Context) (bool, string, error) {
		p, err := kube.CoreV1().Pods(ns).Create(ctx, labelled("probe"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, "dry-run create: " + err.Error(), nil
		}
		return p.Labels[testapp.MutatedByLabel] == testapp.MutatedByValue, fmt.Sprintf("labels %v", p.Labels), nil
	})

	got := createPod(t, ns, labelled("mutated"))
	if v := got.Labels[testapp.MutatedByLabel]; v != testapp.MutatedByValue {
		t.Errorf("labelled pod has %s=%q, want %q (labels %v)", testapp.MutatedByLabel, v, testapp.MutatedByValue, got.Labels)
	}
	plain := createPod(t, ns, testappPod("plain", "sleep", "1s"))
	if v, ok := plain.Labels[testapp.MutatedByLabel]; ok {
		t.Errorf("pod outside the objectSelector was mutated: %s=%q", testapp.MutatedByLabel, v)
	}
}

// servingCert makes a throwaway CA and a serving certificate for dnsNames signed by it.
func servingCert(t *testing.T, dnsNames ...string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "weft e2e webhook CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsNames[0]}, DNSNames: dnsNames,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}
