package healthcheck

import (
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/destination"
	"github.com/weftmesh/weft/identity"
	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/internal/ctlserver"
	"github.com/weftmesh/weft/internal/pki"
	"github.com/weftmesh/weft/manifests"
)

func TestChecks(t *testing.T) {
	waitingPod := func(reason string) func(*world) {
		return func(w *world) {
			p := find[*corev1.Pod](w, "web-abc-1")
			p.Status.Conditions[0].Status = corev1.ConditionFalse
			p.Status.ContainerStatuses = []corev1.ContainerStatus{
				{Name: "main", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "image weft/nope:1 not found"}}},
				{Name: annotations.ProxyContainer}}
		}
	}
	tests := []struct {
		id     string
		name   string
		mutate func(*world)
		want   Result
		// msg must occur in the message (or hint, for hint:).
		msg, hint string
	}{
		{id: "api-reachable", name: "ok", want: OK},
		{id: "api-reachable", name: "down", mutate: func(w *world) { w.apiDown = true }, want: Failure, msg: "connection refused", hint: "kubectl cluster-info"},
		{id: "api-credentials", name: "ok", want: OK},
		{id: "api-credentials", name: "expired", mutate: func(w *world) { w.unauthorized = true }, want: Failure, msg: "refused the credentials"},
		{id: "k8s-version", name: "ok", want: OK},
		{id: "k8s-version", name: "no native sidecars", mutate: func(w *world) { w.k8sMinor = "28" }, want: Warning, msg: "legacy sidecar mode"},
		{id: "k8s-version", name: "too old", mutate: func(w *world) { w.k8sMinor = "24" }, want: Failure, msg: "older than the oldest supported"},
		{id: "pre-rbac", name: "ok", want: OK},
		{id: "pre-rbac", name: "denied", mutate: func(w *world) { w.denied["mutatingwebhookconfigurations"] = true }, want: Failure,
			msg: "cannot create MutatingWebhookConfiguration cluster-wide", hint: "kubectl create clusterrolebinding"},
		{id: "pre-namespace", name: "absent", mutate: func(w *world) { drop[*corev1.Namespace](w, testNS) }, want: OK},
		{id: "pre-namespace", name: "empty", mutate: func(w *world) { drop[*corev1.ConfigMap](w, manifests.ConfigName) }, want: OK},
		{id: "pre-namespace", name: "installed", want: Failure, msg: "already holds a weft install"},
		{id: "pre-crds", name: "absent", mutate: func(w *world) { w.noCRDs = true }, want: OK},
		{id: "pre-crds", name: "compatible", want: OK},
		{id: "pre-crds", name: "incompatible", mutate: func(w *world) { w.crdVersion = "v9" }, want: Failure, msg: "serves v9, not v1alpha1"},
		{id: "pre-clock-skew", name: "ok", want: OK},
		{id: "pre-clock-skew", name: "skewed", mutate: func(w *world) { w.serverSkew = -2 * time.Minute }, want: Failure, msg: "differs from the API server's by 2m"},
		{id: "pre-pod-security", name: "ok", want: OK},
		{id: "pre-pod-security", name: "restricted", mutate: func(w *world) {
			find[*corev1.Namespace](w, "demo").Labels = map[string]string{podSecurityEnforce: "restricted"}
		}, want: Warning, msg: "namespace demo enforces restricted"},
		{id: "config-valid", name: "ok", want: OK},
		{id: "config-valid", name: "missing", mutate: func(w *world) { drop[*corev1.ConfigMap](w, manifests.ConfigName) }, want: Failure, hint: "weft install"},
		{id: "config-valid", name: "garbage", mutate: func(w *world) {
			find[*corev1.ConfigMap](w, manifests.ConfigName).Data[manifests.ConfigValuesKey] = "{nope"
		}, want: Failure, msg: "parse weft-config"},
		{id: "crds-served", name: "ok", want: OK},
		{id: "crds-served", name: "missing", mutate: func(w *world) { w.noCRDs = true }, want: Failure, hint: "weft install --crds"},
		{id: "cp-identity-ready", name: "ok", want: OK},
		{id: "cp-identity-ready", name: "scaled to 0", mutate: func(w *world) {
			d := find[*appsv1.Deployment](w, manifests.IdentityName)
			d.Spec.Replicas, d.Status.AvailableReplicas = ptr(int32(0)), 0
		}, want: Failure, msg: "weft-identity (identity) is scaled to 0", hint: "kubectl -n weft scale deployment weft-identity --replicas=1"},
		{id: "cp-identity-ready", name: "missing", mutate: func(w *world) { drop[*appsv1.Deployment](w, manifests.IdentityName) }, want: Failure, msg: "not found"},
		{id: "cp-destination-ready", name: "ok", want: OK},
		{id: "cp-injector-ready", name: "ok", want: OK},
		{id: "cp-destination-ready", name: "not ready times out", mutate: func(w *world) {
			find[*appsv1.Deployment](w, manifests.DestinationName).Status.AvailableReplicas = 0
		}, want: Failure, msg: "timed out after 1ms waiting for Deployment weft-destination to become available; last seen: 0/1 replicas"},
		{id: "cp-injector-ready", name: "image pull fails at once", mutate: func(w *world) {
			p := find[*corev1.Pod](w, manifests.InjectorName+"-abc-1")
			p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}
		}, want: Failure, msg: "container main: ErrImagePull"},
		{id: "cp-injector-ready", name: "unschedulable fails at once", mutate: func(w *world) {
			p := find[*corev1.Pod](w, manifests.InjectorName+"-abc-1")
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available"})
		}, want: Failure, msg: "cannot be scheduled: Unschedulable: 0/1 nodes are available"},
		{id: "cp-injector-ready", name: "unmeshed", mutate: func(w *world) {
			delete(find[*corev1.Pod](w, manifests.InjectorName+"-abc-1").Annotations, annotations.ProxyVersion)
		}, want: Failure, msg: "has no proxy"},
		{id: "cp-proxy-certs", name: "ok", want: OK},
		{id: "cp-proxy-certs", name: "no certificate", mutate: func(w *world) { delete(w.metrics, testNS+"/"+manifests.IdentityName+"-abc-1:4191") }, want: Failure, msg: "connection refused"},
		{id: "cp-proxy-certs", name: "near expiry", mutate: func(w *world) { w.now = w.now.Add(11*time.Hour + 30*time.Minute) }, want: Warning, msg: "was not renewed"},
		{id: "cp-proxy-certs", name: "expired", mutate: func(w *world) { w.now = w.now.Add(13 * time.Hour) }, want: Failure, msg: "certificate expired"},
		{id: "cp-version", name: "ok", want: OK},
		{id: "cp-version", name: "differs", mutate: func(w *world) {
			find[*appsv1.Deployment](w, manifests.IdentityName).Spec.Template.Spec.Containers[0].Image = "weft/controller:v0.9.0"
		}, want: Warning, msg: "Deployment weft-identity runs v0.9.0"},
		{id: "identity-anchors", name: "ok", want: OK},
		{id: "identity-anchors", name: "near expiry", mutate: func(w *world) { w.now = w.anchor.Cert.NotAfter.Add(-30 * 24 * time.Hour) }, want: Warning, msg: "within 60 days"},
		{id: "identity-anchors", name: "expired", mutate: func(w *world) { w.now = w.anchor.Cert.NotAfter.Add(time.Hour) }, want: Failure, msg: "is valid from"},
		{id: "identity-anchors", name: "not a CA", mutate: func(w *world) {
			find[*corev1.ConfigMap](w, manifests.TrustRootsName).Data[manifests.TrustRootsKey] = string(fixtures.webhookPEM)
		}, want: Failure, msg: "is not a CA"},
		{id: "identity-issuer", name: "ok", want: OK},
		{id: "identity-issuer", name: "near expiry", mutate: func(w *world) { w.now = w.issuer.Cert.NotAfter.Add(-24 * time.Hour) }, want: Warning, msg: "within 7 days"},
		{id: "identity-issuer", name: "expired", mutate: func(w *world) { w.now = w.issuer.Cert.NotAfter.Add(time.Hour) }, want: Failure,
			msg: "is valid from " + fixtures0().issuer.Cert.NotBefore.UTC().Format(time.RFC3339) + " until " + fixtures0().issuer.Cert.NotAfter.UTC().Format(time.RFC3339)},
		{id: "identity-issuer", name: "other anchors", mutate: func(w *world) {
			find[*corev1.ConfigMap](w, manifests.TrustRootsName).Data[manifests.TrustRootsKey] = string(pki.EncodeCerts(fixtures.webhookCA.Cert))
		}, want: Failure, msg: "does not chain to the trust anchors"},
		{id: "identity-issuer-loaded", name: "ok", want: OK},
		{id: "identity-issuer-loaded", name: "stale", mutate: func(w *world) {
			w.metrics[testNS+"/"+manifests.IdentityName+"-abc-1:9990/selftest"] = selfTestJSON("identity",
				ctlserver.Result{Name: identity.SelfTestIssuer, OK: true, Detail: string(pki.EncodeCerts(fixtures.webhookCA.Cert))})
		}, want: Failure, msg: `pod weft-identity-abc-1: serves the issuer "webhook-ca" valid from ` + fixtures0().webhookCA.Cert.NotBefore.UTC().Format(time.RFC3339)},
		{id: "identity-issuer-loaded", name: "none loaded", mutate: func(w *world) {
			w.metrics[testNS+"/"+manifests.IdentityName+"-abc-1:9990/selftest"] = selfTestJSON("identity",
				ctlserver.Result{Name: identity.SelfTestIssuer, Error: "no issuer loaded yet"})
		}, want: Failure, msg: "has no issuer loaded: no issuer loaded yet"},
		{id: "identity-issuer-loaded", name: "old identity", mutate: func(w *world) {
			w.metrics[testNS+"/"+manifests.IdentityName+"-abc-1:9990/selftest"] = selfTestJSON("identity")
		}, want: Failure, msg: `its /selftest has no "issuer-loaded"`},
		{id: "injector-webhook", name: "ok", want: OK},
		{id: "injector-webhook", name: "deleted", mutate: func(w *world) {
			drop[*admissionregistrationv1.MutatingWebhookConfiguration](w, manifests.ClusterName(testNS, manifests.InjectorName))
		}, want: Failure, msg: "MutatingWebhookConfiguration weft-weft-proxy-injector not found"},
		{id: "injector-tls", name: "ok", want: OK},
		{id: "injector-tls", name: "wrong bundle", mutate: func(w *world) {
			find[*admissionregistrationv1.MutatingWebhookConfiguration](w, manifests.ClusterName(testNS, manifests.InjectorName)).Webhooks[0].ClientConfig.CABundle = pki.EncodeCerts(w.anchor.Cert)
		}, want: Failure, msg: "does not verify the injector's certificate"},
		{id: "injector-tls", name: "serves another certificate than the Secret", mutate: func(w *world) {
			w.metrics[testNS+"/"+manifests.InjectorName+"-abc-1:9995/selftest"] = selfTestJSON("injector",
				ctlserver.Result{Name: injector.SelfTestServedCertificate, OK: true, Detail: string(pki.EncodeCerts(w.issuer.Cert))})
		}, want: Failure, msg: "pod weft-proxy-injector-abc-1: the caBundle of weft-weft-proxy-injector does not verify"},
		{id: "injector-tls", name: "listener down", mutate: func(w *world) {
			w.metrics[testNS+"/"+manifests.InjectorName+"-abc-1:9995/selftest"] = selfTestJSON("injector",
				ctlserver.Result{Name: injector.SelfTestServedCertificate, Error: "dial the webhook at 127.0.0.1:8443: connection refused"})
		}, want: Failure, msg: "its webhook listener cannot be reached: dial the webhook"},
		{id: "injector-dry-run", name: "ok", want: OK},
		{id: "injector-dry-run", name: "not injected", mutate: func(w *world) { w.noInject = true }, want: Failure, msg: "in namespace demo came back without the weft-proxy container"},
		{id: "destination-ready", name: "ok", want: OK},
		{id: "destination-ready", name: "unreachable", mutate: func(w *world) { delete(w.metrics, testNS+"/"+manifests.DestinationName+"-abc-1:9996/ready") }, want: Failure, msg: "connection refused"},
		{id: "destination-get", name: "ok", want: OK},
		{id: "destination-get", name: "no endpoints", mutate: func(w *world) {
			w.metrics[testNS+"/"+manifests.DestinationName+"-abc-1:9996/selftest"] = selfTestJSON("destination",
				ctlserver.Result{Name: destination.SelfTestGet, Error: "get kubernetes.default.svc.cluster.local:443 answered no endpoints"})
		}, want: Failure, msg: "pod weft-destination-abc-1: get kubernetes.default.svc.cluster.local:443 answered no endpoints", hint: "logs deploy/weft-destination"},
		{id: "destination-get", name: "unreachable", mutate: func(w *world) { delete(w.metrics, testNS+"/"+manifests.DestinationName+"-abc-1:9996/selftest") }, want: Failure, msg: "connection refused"},
		{id: "destination-get-profile", name: "ok", want: OK},
		{id: "destination-get-profile", name: "fails", mutate: func(w *world) {
			w.metrics[testNS+"/"+manifests.DestinationName+"-abc-1:9996/selftest"] = selfTestJSON("destination",
				ctlserver.Result{Name: destination.SelfTestGet, OK: true},
				ctlserver.Result{Name: destination.SelfTestGetProfile, Error: "get profile kubernetes.default.svc.cluster.local:443: rpc error: code = Unavailable"})
		}, want: Failure, msg: "code = Unavailable"},
		{id: "destination-get-profile", name: "no pod ready", mutate: func(w *world) {
			find[*corev1.Pod](w, manifests.DestinationName+"-abc-1").Status.Conditions[0].Status = corev1.ConditionFalse
		}, want: Failure, msg: "no destination pod is ready", hint: "get pods -l weft.io/control-plane-component=destination"},
		{id: "proxy-ready", name: "ok", want: OK},
		{id: "proxy-ready", name: "image pull fails at once", mutate: waitingPod("ErrImagePull"), want: Failure, msg: "pod demo/web-abc-1 container main: ErrImagePull: image weft/nope:1 not found"},
		{id: "proxy-ready", name: "starting times out", mutate: waitingPod("ContainerCreating"), want: Failure, msg: "timed out after 1ms waiting for meshed pods to become Ready; last seen: 1 proxies not ready: pod demo/web-abc-1 Running (main: ContainerCreating)"},
		{id: "proxy-version", name: "ok", want: OK},
		{id: "proxy-version", name: "old", mutate: func(w *world) { find[*corev1.Pod](w, "web-abc-2").Annotations[annotations.ProxyVersion] = "v0.9.0" }, want: Warning,
			msg: "pod demo/web-abc-2 runs proxy v0.9.0", hint: "kubectl -n demo rollout restart deployment/web"},
		{id: "proxy-certs", name: "ok", want: OK},
		{id: "proxy-certs", name: "earlier issuer", mutate: func(w *world) {
			w.metrics["demo/web-abc-2:4191"] = strings.Replace(w.metrics["demo/web-abc-2:4191"], `issuer_sha256="`, `issuer_sha256="0123456789abcdef`, 1)
		}, want: Warning, msg: "pod demo/web-abc-2: certificate was issued by an earlier issuer (SHA-256 0123456789ab"},
		{id: "proxy-certs", name: "no certificate", mutate: func(w *world) { w.metrics["demo/web-abc-1:4191"] = "other 1\n" }, want: Failure, msg: "pod demo/web-abc-1: holds no certificate"},
		{id: "proxy-trust-root", name: "ok", want: OK},
		{id: "proxy-trust-root", name: "rotated", mutate: func(w *world) { find[*corev1.Pod](w, "web-abc-1").Annotations[annotations.TrustRootSHA256] = "00" }, want: Warning,
			msg: "pod demo/web-abc-1 was given other trust anchors", hint: "rollout restart deployment/web"},
		{id: "proxy-discovery", name: "ok", want: OK},
		{id: "proxy-discovery", name: "failing streams", mutate: func(w *world) {
			w.metrics["demo/web-abc-1:4191"] = strings.Replace(w.metrics["demo/web-abc-1:4191"], discoveryFailingMetric+" 0", discoveryFailingMetric+" 2", 1)
		}, want: Warning, msg: "pod demo/web-abc-1: 2 destination streams failing"},
		{id: "proxy-discovery", name: "old proxy", mutate: func(w *world) {
			w.metrics["demo/web-abc-1:4191"] = strings.Replace(w.metrics["demo/web-abc-1:4191"], discoveryFailingMetric, "other", -1)
		}, want: Warning, msg: "exports no " + discoveryFailingMetric},
		{id: "proxy-uninjected", name: "ok", want: OK},
		{id: "proxy-uninjected", name: "predates injection", mutate: func(w *world) {
			p := w.pod("demo", "old-abc-1", "", "old")
			delete(p.Annotations, annotations.ProxyVersion)
			w.objs = append(w.objs, p, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "optout", Namespace: "demo", Annotations: map[string]string{annotations.Inject: annotations.Disabled}}})
		}, want: Warning, msg: "pod demo/old-abc-1 runs without a proxy", hint: "kubectl -n demo rollout restart deployment/old"},
	}
	seen := map[string]map[Result]bool{}
	for _, tc := range tests {
		t.Run(tc.id+"/"+tc.name, func(t *testing.T) {
			w := newWorld(t)
			if tc.mutate != nil {
				tc.mutate(w)
			}
			got := w.run(tc.id)
			if got.Result != tc.want || !strings.Contains(got.Message, tc.msg) || !strings.Contains(got.Hint, tc.hint) {
				t.Fatalf("%s = %s %q (hint %q), want %s with %q (hint %q)", tc.id, got.Result, got.Message, got.Hint, tc.want, tc.msg, tc.hint)
			}
			if got.Result != OK && got.Hint == "" && tc.id != "k8s-version" {
				t.Errorf("%s %s has no fix", tc.id, got.Result)
			}
		})
		if seen[tc.id] == nil {
			seen[tc.id] = map[Result]bool{}
		}
		seen[tc.id][tc.want] = true
	}
	for _, c := range registered() {
		if !seen[c.ID][OK] || (!seen[c.ID][Failure] && !seen[c.ID][Warning]) {
			t.Errorf("check %s lacks a passing or a failing case", c.ID)
		}
	}
}

// fixtures0 returns the generated certificates for use in the table.
func fixtures0() *struct {
	anchor, issuer, webhookCA *pki.CA
	webhookPEM, webhookKey    []byte
} {
	certs(nil)
	return &fixtures
}
