package healthcheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
	"github.com/weftmesh/weft/destination"
	"github.com/weftmesh/weft/identity"
	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/internal/ctlserver"
	"github.com/weftmesh/weft/internal/pki"
	"github.com/weftmesh/weft/manifests"
)

const (
	testNS      = "weft"
	testVersion = "v1.0.0"
)

// world is a fake cluster holding a healthy install and one meshed
// namespace "demo"; tests edit it before calling env.
type world struct {
	t      *testing.T
	now    time.Time
	anchor *pki.CA
	issuer *pki.CA
	values manifests.Values
	objs   []runtime.Object
	// metrics maps "ns/pod:port" to the body the admin port answers.
	metrics map[string]string
	// k8sMinor is the faked server minor version.
	k8sMinor string
	// denied resources fail their SelfSubjectAccessReview.
	denied map[string]bool
	// noInject makes the dry-run pod come back without a proxy.
	noInject bool
	// serverSkew shifts the API server's clock.
	serverSkew time.Duration
	// noCRDs drops the weft.io API group from discovery; crdVersion
	// replaces the served version.
	noCRDs     bool
	crdVersion string
	// apiDown fails discovery; unauthorized fails access reviews.
	apiDown, unauthorized bool
}

// fixtures are generated once: key generation dominates the tests.
var fixtures struct {
	anchor, issuer, webhookCA *pki.CA
	webhookPEM, webhookKey    []byte
}

func certs(t *testing.T) {
	if fixtures.anchor != nil {
		return
	}
	var err error
	must := func(e error) {
		if e != nil {
			t.Fatal(e)
		}
	}
	fixtures.anchor, err = pki.NewTrustAnchor("root.weft.test", 10*365*24*time.Hour)
	must(err)
	fixtures.issuer, err = fixtures.anchor.NewIssuer("issuer.weft.test", 365*24*time.Hour)
	must(err)
	fixtures.webhookCA, err = pki.NewTrustAnchor("webhook-ca", 365*24*time.Hour)
	must(err)
	c, k, err := fixtures.webhookCA.NewServingCert([]string{manifests.InjectorName + "." + testNS + ".svc"}, nil, 365*24*time.Hour)
	must(err)
	fixtures.webhookPEM = pki.EncodeCerts(c)
	fixtures.webhookKey, err = pki.EncodeKey(k)
	must(err)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	certs(t)
	w := &world{t: t, now: time.Now(), anchor: fixtures.anchor, issuer: fixtures.issuer,
		metrics: map[string]string{}, k8sMinor: "36", denied: map[string]bool{}}
	v := manifests.DefaultValues()
	v.ControlPlaneNamespace = testNS
	v.ControllerVersion, v.ProxyVersion = testVersion, testVersion
	v.TrustAnchorsPEM = string(pki.EncodeCerts(w.anchor.Cert))
	w.values = v
	cfg, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	issuerKey, err := pki.EncodeKey(w.issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	w.objs = append(w.objs,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Annotations: map[string]string{annotations.Inject: annotations.Enabled}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: manifests.ConfigName, Namespace: testNS}, Data: map[string]string{manifests.ConfigValuesKey: string(cfg)}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: manifests.TrustRootsName, Namespace: testNS}, Data: map[string]string{manifests.TrustRootsKey: v.TrustAnchorsPEM}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: manifests.IssuerSecretName, Namespace: testNS},
			Data: map[string][]byte{corev1.TLSCertKey: pki.EncodeCerts(w.issuer.Cert), corev1.TLSPrivateKeyKey: issuerKey}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: manifests.InjectorTLSName, Namespace: testNS},
			Data: map[string][]byte{corev1.TLSCertKey: fixtures.webhookPEM, corev1.TLSPrivateKeyKey: fixtures.webhookKey}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: manifests.ClusterName(testNS, manifests.InjectorName)},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "inject.weft.io", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: pki.EncodeCerts(fixtures.webhookCA.Cert)}}}},
	)
	for _, c := range components {
		w.objs = append(w.objs, deployment(c.name, 1, 1), w.pod(testNS, c.name+"-abc-1", c.short, c.name))
	}
	w.objs = append(w.objs, w.pod("demo", "web-abc-1", "", "web"), w.pod("demo", "web-abc-2", "", "web"))
	return w
}

func deployment(name string, replicas, available int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "main", Image: "weft/controller:" + testVersion}, {Name: annotations.ProxyContainer, Image: "weft/proxy:" + testVersion}}}}},
		Status: appsv1.DeploymentStatus{AvailableReplicas: available},
	}
}

// pod is a Ready meshed pod of Deployment dep, with healthy proxy metrics.
func (w *world) pod(ns, name, comp, dep string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:      map[string]string{"pod-template-hash": "abc"},
			Annotations: map[string]string{annotations.ProxyVersion: testVersion, annotations.TrustRootSHA256: w.values.TrustRootHash()},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: dep + "-abc",
				Controller: ptr(true)}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}, {Name: annotations.ProxyContainer}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "main", Ready: true}, {Name: annotations.ProxyContainer, Ready: true}}},
	}
	if comp != "" {
		p.Labels[manifests.LabelComponent] = comp
	}
	sum := sha256.Sum256(w.issuer.Cert.Raw)
	w.metrics[ns+"/"+name+":4191"] = fmt.Sprintf("# TYPE %s gauge\n%s %d\n# TYPE %s gauge\n%s{issuer_sha256=%q} 1\n# TYPE %s gauge\n%s 0\n",
		proxyCertMetric, proxyCertMetric, w.now.Add(12*time.Hour).Unix(),
		proxyIssuerMetric, proxyIssuerMetric, hex.EncodeToString(sum[:]),
		discoveryFailingMetric, discoveryFailingMetric)
	switch comp {
	case "identity":
		w.metrics[ns+"/"+name+":9990/selftest"] = selfTestJSON("identity", ctlserver.Result{Name: identity.SelfTestIssuer, OK: true, Detail: string(pki.EncodeCerts(w.issuer.Cert))})
	case "proxy-injector":
		w.metrics[ns+"/"+name+":9995/selftest"] = selfTestJSON("injector", ctlserver.Result{Name: injector.SelfTestServedCertificate, OK: true, Detail: string(fixtures.webhookPEM)})
	case "destination":
		w.metrics[ns+"/"+name+":9996/ready"] = "ready\n"
		w.metrics[ns+"/"+name+":9996/selftest"] = selfTestJSON("destination",
			ctlserver.Result{Name: destination.SelfTestGet, OK: true, Detail: "kubernetes.default.svc.cluster.local:443: 1 endpoints"},
			ctlserver.Result{Name: destination.SelfTestGetProfile, OK: true, Detail: "profile kubernetes.default.svc.cluster.local"})
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// find returns the object of type T named name.
func find[T runtime.Object](w *world, name string) T {
	for _, o := range w.objs {
		if t, ok := o.(T); ok && o.(metav1.Object).GetName() == name {
			return t
		}
	}
	w.t.Fatalf("no %T %s in the world", *new(T), name)
	return *new(T)
}

// drop removes the object named name of type T.
func drop[T runtime.Object](w *world, name string) {
	for i, o := range w.objs {
		if _, ok := o.(T); ok && o.(metav1.Object).GetName() == name {
			w.objs = append(w.objs[:i], w.objs[i+1:]...)
			return
		}
	}
	w.t.Fatalf("no %T %s to drop", *new(T), name)
}

type fakeAdmin struct{ w *world }

func (a fakeAdmin) Get(_ context.Context, p *corev1.Pod, port int, path string) (io.ReadCloser, error) {
	body, ok := a.w.metrics[fmt.Sprintf("%s/%s:%d%s", p.Namespace, p.Name, port, path)]
	if !ok && path == "/metrics" {
		body, ok = a.w.metrics[fmt.Sprintf("%s/%s:%d", p.Namespace, p.Name, port)]
	}
	if !ok {
		return nil, fmt.Errorf("get http:%d%s of %s/%s: connection refused", port, path, p.Namespace, p.Name)
	}
	return io.NopCloser(strings.NewReader(body)), nil
}

func (w *world) env() *Env {
	cs := fake.NewClientset(w.objs...)
	d := cs.Discovery().(*fakediscovery.FakeDiscovery)
	d.FakedServerVersion = &version.Info{Major: "1", Minor: w.k8sMinor, GitVersion: "v1." + w.k8sMinor + ".0"}
	if !w.noCRDs {
		v := sp.Version
		if w.crdVersion != "" {
			v = w.crdVersion
		}
		d.Resources = []*metav1.APIResourceList{{GroupVersion: sp.Group + "/" + v, APIResources: []metav1.APIResource{{Name: sp.Resource, Kind: "ServiceProfile"}}}}
	}
	cs.PrependReactor("get", "version", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if w.apiDown {
			return true, nil, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
		}
		return false, nil, nil
	})
	cs.PrependReactor("create", "selfsubjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if w.unauthorized {
			return true, nil, apierrors.NewUnauthorized("token expired")
		}
		r := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SelfSubjectAccessReview)
		attr := r.Spec.ResourceAttributes
		r.Status.Allowed = attr == nil || !w.denied[attr.Resource]
		return true, r, nil
	})
	cs.PrependReactor("create", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		cm := a.(k8stesting.CreateAction).GetObject().(*corev1.ConfigMap).DeepCopy()
		cm.CreationTimestamp = metav1.NewTime(w.now.Add(w.serverSkew).Truncate(time.Second))
		return true, cm, nil
	})
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		if !w.noInject {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: annotations.ProxyContainer})
		}
		return true, p, nil
	})
	return &Env{Client: cs, Admin: fakeAdmin{w}, ControlPlaneNS: testNS, Namespace: "demo",
		CLIVersion: testVersion, Now: func() time.Time { return w.now }, Values: w.values}
}

// run runs the check with id once (no waiting) and returns its outcome.
func (w *world) run(id string) Outcome {
	w.t.Helper()
	for _, c := range registered() {
		if c.ID == id {
			out := Run(context.Background(), w.env(), []Check{c}, Options{Wait: time.Millisecond, Poll: time.Millisecond})
			return out[0]
		}
	}
	w.t.Fatalf("no check %s", id)
	return Outcome{}
}

func registered() []Check {
	regMu.Lock()
	defer regMu.Unlock()
	return append([]Check(nil), registry...)
}

// selfTestJSON is a component's /selftest report holding results.
func selfTestJSON(comp string, results ...ctlserver.Result) string {
	rep := ctlserver.Report{Component: comp, OK: true, Results: results}
	for _, r := range results {
		rep.OK = rep.OK && r.OK
	}
	b, _ := json.Marshal(rep)
	return string(b)
}
