package healthcheck

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/internal/ctlserver"
	"github.com/weftmesh/weft/internal/pki"
	"github.com/weftmesh/weft/manifests"
)

// Injector checks: the webhook configuration, its TLS, and a real dry-run
// injection.
var catInjector = Category{Name: "injector", Order: 80}

func init() {
	Register(
		Check{ID: "injector-webhook", Category: catInjector, Modes: ControlPlane,
			Description: "the webhook configuration exists", Run: injectorWebhook},
		Check{ID: "injector-tls", Category: catInjector, Modes: ControlPlane,
			Description: "the webhook's caBundle verifies the injector's certificate", Run: injectorTLS},
		Check{ID: "injector-dry-run", Category: catInjector, Modes: ControlPlane,
			Description: "a dry-run pod in an injected namespace gets the proxy", Run: injectorDryRun},
	)
}

func webhookName(e *Env) string {
	return manifests.ClusterName(e.ControlPlaneNS, manifests.InjectorName)
}

func reinstallHint(e *Env) string {
	return "re-apply the install: `weft install --weft-namespace " + e.ControlPlaneNS + " | kubectl apply -f -`"
}

func injectorWebhook(ctx context.Context, e *Env) Finding {
	name := webhookName(e)
	w, err := e.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fail(fmt.Sprintf("MutatingWebhookConfiguration %s not found: new pods are not meshed", name), reinstallHint(e))
	}
	if err != nil {
		return errFinding(fmt.Errorf("get MutatingWebhookConfiguration %s: %w", name, err), "")
	}
	if len(w.Webhooks) == 0 {
		return fail(fmt.Sprintf("MutatingWebhookConfiguration %s has no webhooks", name), reinstallHint(e))
	}
	return ok("")
}

// injectorTLS verifies the certificate each injector pod really serves
// (its self-test dials its own webhook listener) with the caBundle the API
// server verifies it with.
func injectorTLS(ctx context.Context, e *Env) Finding {
	name := webhookName(e)
	w, err := e.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
	if err != nil || len(w.Webhooks) == 0 {
		return fail(fmt.Sprintf("MutatingWebhookConfiguration %s not available", name), reinstallHint(e))
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(w.Webhooks[0].ClientConfig.CABundle) {
		return fail(fmt.Sprintf("the caBundle of %s holds no certificate", name), reinstallHint(e))
	}
	now := e.Now()
	dns := manifests.InjectorName + "." + e.ControlPlaneNS + ".svc"
	problems, err := eachSelfTest(ctx, e, "proxy-injector", injectorAdminPort, injector.SelfTestServedCertificate, func(_ *corev1.Pod, r ctlserver.Result) string {
		if !r.OK {
			return "its webhook listener cannot be reached: " + r.Error
		}
		certs, err := pki.ParseCerts([]byte(r.Detail))
		if err != nil {
			return "serves no readable certificate: " + err.Error()
		}
		leaf := certs[0]
		if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
			return fmt.Sprintf("serves a certificate %s, not now (%s)", validity(leaf), now.UTC().Format(time.RFC3339))
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: dns, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return fmt.Sprintf("the caBundle of %s does not verify the injector's certificate for %s: %v", name, dns, err)
		}
		return ""
	})
	if err != nil {
		return fail(err.Error(), podsHint(e, "proxy-injector"))
	}
	if len(problems) > 0 {
		return fail(list(problems), reinstallHint(e))
	}
	return ok("")
}

// injectedNamespace returns a namespace annotated for injection, or
// "default" with the pod annotated instead.
func injectedNamespace(ctx context.Context, e *Env) (ns string, podAnnotated bool, err error) {
	nss, err := e.Namespaces(ctx)
	if err != nil {
		return "", false, err
	}
	for _, n := range nss {
		if n.Annotations[annotations.Inject] == annotations.Enabled && n.Labels[annotations.Inject] != annotations.Disabled && n.Name != e.ControlPlaneNS {
			return n.Name, false, nil
		}
	}
	return metav1.NamespaceDefault, true, nil
}

func injectorDryRun(ctx context.Context, e *Env) Finding {
	ns, podAnnotated, err := injectedNamespace(ctx, e)
	if err != nil {
		return errFinding(err, "")
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "weft-check-dry-run-"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "weft-check/dry-run:none"}}},
	}
	if podAnnotated {
		pod.Annotations = map[string]string{annotations.Inject: annotations.Enabled}
	}
	got, err := e.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return fail(fmt.Sprintf("dry-run create of a pod in namespace %s failed: %v", ns, err),
			"kubectl -n "+e.ControlPlaneNS+" logs deploy/"+manifests.InjectorName+" -c proxy-injector")
	}
	for _, c := range append(append([]corev1.Container{}, got.Spec.InitContainers...), got.Spec.Containers...) {
		if c.Name == annotations.ProxyContainer {
			return ok("")
		}
	}
	return fail(fmt.Sprintf("a dry-run pod in namespace %s came back without the %s container: the webhook did not inject it", ns, annotations.ProxyContainer),
		"check the injector is ready (`weft check`) and its log: `kubectl -n "+e.ControlPlaneNS+" logs deploy/"+manifests.InjectorName+" -c proxy-injector`")
}
