//go:build e2e

package tests

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/e2e/testapp"
	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/internal/pki"
)

// Names of the identity fixture (the defaults of weft-controller identity).
const (
	identIssuerSecret = "weft-identity-issuer"
	identRootsCM      = "weft-identity-trust-roots"
	identName         = "weft-identity"
	identDiscoveryDir = "/var/run/weft-e2e/discovery"
	identAnchorsDir   = "/var/run/weft-e2e/anchors"
)

// identEnv is an identity service running unmeshed in a pod of its own namespace, with
// real RBAC, an issuer and trust anchors made with internal/pki; meshed pods of the same
// namespace get their certificates from it.
type identEnv struct {
	ns         string
	anchor     *pki.CA
	issuer     *pki.CA
	anchorsPEM string
	pod        *corev1.Pod // the identity service's pod
	// anchorsFromFile makes mesh give proxies the trust-roots ConfigMap as a file
	// (WEFT_PROXY_IDENTITY_TRUST_ANCHORS_FILE, polled) instead of the injector's PEM variable.
	anchorsFromFile bool
}

// newIdentEnv starts the identity service in a new namespace; lifetime is its
// --issuance-lifetime; extraAnchors join the generated anchor in the trust bundle (identity
// service and proxies).
func newIdentEnv(t *testing.T, lifetime time.Duration, extraAnchors ...*x509.Certificate) *identEnv {
	t.Helper()
	e := &identEnv{ns: newNamespace(t)}
	ctx := ctxFor(t, 2*time.Minute)
	var err error
	if e.anchor, err = pki.NewTrustAnchor("root.e2e."+e.ns, 0); err != nil {
		t.Fatalf("trust anchor: %v", err)
	}
	if e.issuer, err = e.anchor.NewIssuer("issuer-1.e2e."+e.ns, 0); err != nil {
		t.Fatalf("issuer: %v", err)
	}
	e.anchorsPEM = string(pki.EncodeCerts(append([]*x509.Certificate{e.anchor.Cert}, extraAnchors...)...))
	if _, err := kube.CoreV1().Secrets(e.ns).Create(ctx, identIssuerSecretObj(t, e.issuer), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create issuer secret: %v", err)
	}
	if _, err := kube.CoreV1().ConfigMaps(e.ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: identRootsCM},
		Data:       map[string]string{"ca-bundle.crt": e.anchorsPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create trust roots: %v", err)
	}

	// RBAC: tokenreviews cluster-wide, and just the two objects in the namespace.
	identServiceAccount(t, e.ns, identName)
	crName := "weft-e2e-identity-" + e.ns
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: crName, Labels: clusterScopedLabels(e.ns)},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create clusterrole: %v", err)
	}
	t.Cleanup(func() { deleteClusterScoped(t, "clusterrole", crName, kube.RbacV1().ClusterRoles().Delete) })
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: crName, Labels: clusterScopedLabels(e.ns)},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: crName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: identName, Namespace: e.ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create clusterrolebinding: %v", err)
	}
	t.Cleanup(func() {
		deleteClusterScoped(t, "clusterrolebinding", crName, kube.RbacV1().ClusterRoleBindings().Delete)
	})
	if _, err := kube.RbacV1().Roles(e.ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: identName},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{identIssuerSecret}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{identRootsCM}, Verbs: []string{"get", "list", "watch"}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create role: %v", err)
	}
	if _, err := kube.RbacV1().RoleBindings(e.ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: identName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: identName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: identName, Namespace: e.ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create rolebinding: %v", err)
	}

	if _, err := kube.CoreV1().Services(e.ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: identName},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": identName},
			Ports:    []corev1.ServicePort{{Name: "grpc", Port: 8080, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
	createPod(t, e.ns, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: identName, Labels: map[string]string{"app": identName}},
		Spec: corev1.PodSpec{
			ServiceAccountName:            identName,
			TerminationGracePeriodSeconds: ptr[int64](5),
			Containers: []corev1.Container{{
				Name: "identity", Image: "weft/controller:latest",
				Args:  []string{"identity", "--namespace", e.ns, "--issuance-lifetime", lifetime.String()},
				Ports: []corev1.ContainerPort{{Name: "grpc", ContainerPort: 8080}, {Name: "admin", ContainerPort: 9990}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(9990)}},
					PeriodSeconds: 1},
			}},
		},
	})
	e.pod = waitPod(t, e.ns, identName, "to be ready", podReady)
	return e
}

// identIssuerSecretObj is the issuer Secret for ca (certificate chain and key).
func identIssuerSecretObj(t *testing.T, ca *pki.CA) *corev1.Secret {
	t.Helper()
	key, err := pki.EncodeKey(ca.Key)
	if err != nil {
		t.Fatalf("encode issuer key: %v", err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: identIssuerSecret},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       pki.EncodeCerts(append([]*x509.Certificate{ca.Cert}, ca.Chain...)...),
			corev1.TLSPrivateKeyKey: key,
		},
	}
}

// identServiceAccount creates a ServiceAccount.
func identServiceAccount(t *testing.T, ns, name string) {
	t.Helper()
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctxFor(t, time.Minute), &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create serviceaccount %s/%s: %v", ns, name, err)
	}
}

// id is the SPIFFE ID of a ServiceAccount of the fixture's namespace.
func (e *identEnv) id(sa string) string { return "spiffe://cluster.local/ns/" + e.ns + "/sa/" + sa }

// mesh injects the proxy into p (running as ServiceAccount sa) with the injector's own code and
// values whose control plane is the fixture's namespace, without a destination service;
// a non-empty discovery names the ConfigMap (writeDiscovery) mounted as the proxy's
// STATIC_DISCOVERY; env
// replaces or adds proxy variables.
func (e *identEnv) mesh(t *testing.T, p *corev1.Pod, sa, discovery string, env ...corev1.EnvVar) *corev1.Pod {
	t.Helper()
	p.Spec.ServiceAccountName = sa
	v := injector.DefaultValues()
	v.ProxyVersion = "latest"
	v.ControlPlaneNamespace = e.ns
	v.TrustAnchorsPEM = e.anchorsPEM
	if _, err := injector.Inject(p, v); err != nil {
		t.Fatalf("inject %s: %v", p.Name, err)
	}
	var proxy *corev1.Container
	for i := range p.Spec.InitContainers {
		if p.Spec.InitContainers[i].Name == annotations.ProxyContainer {
			proxy = &p.Spec.InitContainers[i]
		}
	}
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == annotations.ProxyContainer {
			proxy = &p.Spec.Containers[i]
		}
	}
	if proxy == nil {
		t.Fatalf("inject %s: no %s container", p.Name, annotations.ProxyContainer)
	}
	want := map[string]string{
		"WEFT_PROXY_IDENTITY_SVC_ADDR":      identName + "." + e.ns + ".svc.cluster.local:8080",
		"WEFT_PROXY_IDENTITY_SVC_NAME":      e.id(identName),
		"WEFT_PROXY_IDENTITY_TRUST_ANCHORS": e.anchorsPEM,
	}
	var kept []corev1.EnvVar
	for _, ev := range proxy.Env {
		if w, ok := want[ev.Name]; ok && ev.Value != w {
			t.Fatalf("inject %s: %s = %q, want %q", p.Name, ev.Name, ev.Value, w)
		}
		delete(want, ev.Name)
		if ev.Name == "WEFT_PROXY_DESTINATION_SVC_ADDR" || ev.Name == "WEFT_PROXY_DESTINATION_SVC_NAME" {
			continue // no destination service in these tests
		}
		if ev.Name == "WEFT_PROXY_IDENTITY_TRUST_ANCHORS" && e.anchorsFromFile {
			continue
		}
		kept = append(kept, ev)
	}
	if len(want) != 0 {
		t.Fatalf("inject %s: proxy lacks %v", p.Name, want)
	}
	if discovery != "" {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "ident-discovery", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: discovery}},
		}})
		proxy.VolumeMounts = append(proxy.VolumeMounts, corev1.VolumeMount{Name: "ident-discovery", MountPath: identDiscoveryDir, ReadOnly: true})
		env = append(env, corev1.EnvVar{Name: "WEFT_PROXY_STATIC_DISCOVERY", Value: identDiscoveryDir + "/discovery.yaml"})
	}
	if e.anchorsFromFile {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "ident-anchors", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: identRootsCM}},
		}})
		proxy.VolumeMounts = append(proxy.VolumeMounts, corev1.VolumeMount{Name: "ident-anchors", MountPath: identAnchorsDir, ReadOnly: true})
		env = append(env, corev1.EnvVar{Name: "WEFT_PROXY_IDENTITY_TRUST_ANCHORS_FILE", Value: identAnchorsDir + "/ca-bundle.crt"})
	}
	for _, ev := range env {
		replaced := false
		for i := range kept {
			if kept[i].Name == ev.Name {
				kept[i], replaced = ev, true
			}
		}
		if !replaced {
			kept = append(kept, ev)
		}
	}
	proxy.Env = kept
	return p
}

// writeDiscovery creates the ConfigMap name holding a STATIC_DISCOVERY document: the server
// pod's HTTP (8080), gRPC (8081) and TCP (9000) ports, each with the server's identity.
func (e *identEnv) writeDiscovery(t *testing.T, name, serverIP, serverID string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("destinations:\n")
	for _, d := range []struct {
		port  int
		proto string
	}{{8080, "http1"}, {8081, "http2"}, {9000, "opaque"}} {
		addr := fmt.Sprintf("%s:%d", serverIP, d.port)
		fmt.Fprintf(&b, "- addresses: [%q]\n  protocol: %s\n  endpoints:\n  - addr: %q\n    identity: %q\n", addr, d.proto, addr, serverID)
	}
	if _, err := kube.CoreV1().ConfigMaps(e.ns).Create(ctxFor(t, time.Minute), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Data:       map[string]string{"discovery.yaml": b.String()},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create discovery configmap: %v", err)
	}
	return name
}

// identServerPod serves HTTP echo on 8080, gRPC health on 8081 and TCP echo on 9000.
func identServerPod(name string, annots map[string]string) *corev1.Pod {
	backend := testappContainer("grpc", "backend", "--addr", ":8082", "--grpc-addr", ":8081")
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}, Annotations: annots},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr[int64](5),
			Containers:                    []corev1.Container{httpServerContainer(), backend, testappContainer("echo", "tcp-echo", "--addr", ":9000")},
		},
	}
}

// identLoadPod runs weft-testapp load on :9100.
func identLoadPod(name string) *corev1.Pod {
	c := testappContainer("load", "load", "--addr", ":9100")
	c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(9100)}}, PeriodSeconds: 1}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec:       corev1.PodSpec{TerminationGracePeriodSeconds: ptr[int64](5), Containers: []corev1.Container{c}},
	}
}

// identLoad runs one bounded load run in the load pod at ip and returns its result.
func identLoad(t *testing.T, ip string, spec testapp.LoadSpec) testapp.LoadResult {
	t.Helper()
	body, _ := json.Marshal(spec)
	timeout := time.Duration(spec.Count)*time.Second/time.Duration(spec.Rate) + time.Minute
	ctx := ctxFor(t, timeout)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ip+":9100/run", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("load run %s: %v", spec.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("load run %s: %s %s", spec.URL, resp.Status, b)
	}
	var res testapp.LoadResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("load run %s: %v: %s", spec.URL, err, b)
	}
	return res
}

// identMetrics scrapes the identity service's admin port.
func (e *identEnv) metrics(t *testing.T) string {
	t.Helper()
	m, err := scrapeURL(ctxFor(t, time.Minute), "http://"+e.pod.Status.PodIP+":9990/metrics")
	if err != nil {
		t.Fatalf("identity metrics: %v", err)
	}
	return m
}

func scrapeURL(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// TestIdentityMTLS: the identity service runs in the cluster with real RBAC; two meshed pods
// (ServiceAccounts client and server) get SVIDs from it and talk HTTP/1.1, gRPC and opaque TCP
// over mTLS, with each proxy naming the other's identity in its metrics.
func TestIdentityMTLS(t *testing.T) {
	t.Parallel()
	e := newIdentEnv(t, 24*time.Hour)
	identServiceAccount(t, e.ns, "server")
	identServiceAccount(t, e.ns, "client")

	createPod(t, e.ns, e.mesh(t, identServerPod("server", nil), "server", ""))
	srv := waitPod(t, e.ns, "server", "to be ready", podReady)
	toServer := e.writeDiscovery(t, "to-server", srv.Status.PodIP, e.id("server"))
	createPod(t, e.ns, e.mesh(t, identLoadPod("load"), "client", toServer))
	load := waitPod(t, e.ns, "load", "to be ready", podReady)
	ip := srv.Status.PodIP

	t.Run("http-grpc-tcp", func(t *testing.T) {
		for _, spec := range []testapp.LoadSpec{
			{URL: "http://" + ip + ":8080/", Count: 20, Rate: 10},
			{URL: ip + ":8081", Count: 20, Rate: 10, GRPC: true},
		} {
			res := identLoad(t, load.Status.PodIP, spec)
			t.Logf("load %s: %+v", spec.URL, res)
			if res.OK != spec.Count || res.Failed != 0 {
				t.Errorf("load %s over mTLS: %d of %d ok, %d failed: %+v", spec.URL, res.OK, spec.Count, res.Failed, res)
			}
		}
		marker := "tcp-marker-" + randomSuffix(t)
		client := createPod(t, e.ns, e.mesh(t, testappPod("tcp-client", "tcp", ip+":9000", marker), "client", toServer))
		logs := followLogs(t, client, "app")
		waitSucceeded(t, e.ns, client.Name, logs)
		if out := logs.text(t, "app"); !strings.Contains(out, marker) {
			t.Errorf("tcp echo over mTLS: log lacks %q:\n%s", marker, out)
		}

		srvM, loadM := metricsOf(t, srv), metricsOf(t, load)
		t.Logf("server proxy:\n%s", grepLines(srvM, "request_total", "tcp_open_total", "identity_cert", "weft_tls"))
		t.Logf("client proxy:\n%s", grepLines(loadM, "request_total", "tcp_open_total", "identity_cert", "weft_tls"))
		clientID, serverID := `client_id="`+e.id("client")+`"`, `server_id="`+e.id("server")+`"`
		for _, c := range []struct {
			who, metrics, name string
			frags              []string
		}{
			{"server", srvM, "request_total", []string{`direction="inbound"`, `tls="true"`, clientID, ":8080"}},
			{"server", srvM, "request_total", []string{`direction="inbound"`, `tls="true"`, clientID, ":8081"}},
			{"server", srvM, "tcp_open_total", []string{`direction="inbound"`, `tls="true"`, clientID, `target_addr="` + ip + `:9000"`}},
			{"client", loadM, "request_total", []string{`direction="outbound"`, `tls="true"`, serverID, ":8080"}},
			{"client", loadM, "request_total", []string{`direction="outbound"`, `tls="true"`, serverID, ":8081"}},
		} {
			if !hasSample(c.metrics, c.name, c.frags...) {
				t.Errorf("%s proxy metrics lack %s{%s}", c.who, c.name, strings.Join(c.frags, ","))
			}
		}
		now := float64(time.Now().Unix())
		for _, p := range []*corev1.Pod{srv, load} {
			m := metricsOf(t, p)
			if exp := sampleValue(m, "identity_cert_expiration_timestamp_seconds"); exp <= now || exp > now+25*3600 {
				t.Errorf("%s: identity_cert_expiration_timestamp_seconds = %v, want within 24h of %v", p.Name, exp, now)
			}
		}
		if n := sampleValue(e.metrics(t), "weft_identity_certificates_issued_total"); n < 3 {
			t.Errorf("identity service issued %v certificates, want at least 3 (server, load, tcp-client)", n)
		}
	})

	t.Run("no-plaintext-on-the-wire", func(t *testing.T) {
		// The client's app traffic (run in the load pod's network namespace, so the pod's
		// rules send it through its proxy) crosses the bridge only as TLS; a control message
		// sent in plaintext (as uid 2102, which the rules exempt) proves the capture sees
		// these packets and would show a marker.
		marker, control := "weft-secret-"+randomSuffix(t), "weft-plain-"+randomSuffix(t)
		capture := startCapture(t, load.Status.PodIP, ip, 8080, 9000, 4143)
		out, err := identInPod(t, load, 0, "get", "--attempts", "3", "http://"+ip+":8080/"+marker)
		if err != nil || !strings.Contains(out, `"path": "/`+marker+`"`) {
			t.Fatalf("GET through the mesh: %v\n%s", err, out)
		}
		tcpOut, err := identInPod(t, load, 0, "tcp", ip+":9000", marker+"-tcp")
		if err != nil || !strings.Contains(tcpOut, marker+"-tcp") {
			t.Fatalf("tcp through the mesh: %v\n%s", err, tcpOut)
		}
		ctlOut, err := identInPod(t, load, 2102, "tcp", ip+":9000", control)
		if err != nil || !strings.Contains(ctlOut, control) {
			t.Fatalf("plaintext control (uid 2102, not intercepted): %v\n%s", err, ctlOut)
		}
		var dump string
		waitFor(t, 30*time.Second, "the capture to show the control message", func(context.Context) (bool, string, error) {
			dump = capture.out.String()
			return strings.Contains(dump, control), fmt.Sprintf("%d bytes captured", len(dump)), nil
		})
		dump = capture.stop()
		tlsPackets := 0
		for _, line := range strings.Split(dump, "\n") {
			if strings.Contains(line, "."+"4143") && strings.Contains(line, " IP ") {
				tlsPackets++
			}
		}
		t.Logf("capture: %d lines, %d packets to/from :4143; the app echoed the marker (HTTP %d bytes, TCP %q)",
			strings.Count(dump, "\n"), tlsPackets, len(out), strings.TrimSpace(tcpOut))
		if tlsPackets == 0 {
			t.Errorf("capture saw no packets on :4143 between the pods:\n%s", tail(dump, 3000))
		}
		if strings.Contains(dump, marker) {
			t.Errorf("capture on weft0 shows the marker %q in plaintext:\n%s", marker, tail(dump, 3000))
		}
	})

	t.Run("inbound-policy", func(t *testing.T) {
		// A second server refusing plaintext, a meshed client that knows it, and an unmeshed
		// pod; the unmeshed client runs in that pod's network namespace.
		// The app keeps its plaintext HTTP readiness probe: all-authenticated would refuse the
		// kubelet's probe, so the injector points it at the proxy's admin port, which forwards
		// it to the app (weft.io/original-probes records the original).
		strictPod := e.mesh(t, identServerPod("strict", map[string]string{annotations.DefaultInboundPolicy: "all-authenticated"}), "server", "")
		if _, ok := strictPod.Annotations[annotations.OriginalProbes]; !ok || strictPod.Spec.Containers[0].ReadinessProbe.HTTPGet.Port.IntValue() != injector.AdminPort {
			t.Fatalf("the strict pod's readiness probe was not rewritten: %+v", strictPod.Spec.Containers[0].ReadinessProbe)
		}
		createPod(t, e.ns, strictPod)
		plain := identSleepPod("plain")
		createPod(t, e.ns, plain)
		strict := waitPod(t, e.ns, "strict", "to be ready", podReady)
		if v := strict.Annotations[annotations.DefaultInboundPolicy]; v != "all-authenticated" {
			t.Fatalf("strict pod: annotation %s = %q", annotations.DefaultInboundPolicy, v)
		}
		toStrict := e.writeDiscovery(t, "to-strict", strict.Status.PodIP, e.id("server"))
		createPod(t, e.ns, e.mesh(t, identLoadPod("load-strict"), "client", toStrict))
		loadStrict := waitPod(t, e.ns, "load-strict", "to be ready", podReady)
		plainPod := waitPod(t, e.ns, "plain", "to be running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		sip := strict.Status.PodIP

		// all-unauthenticated (the first server): plaintext from the unmeshed pod is served.
		if out, err := identInPod(t, plainPod, 0, "get", "--attempts", "3", "http://"+ip+":8080/plain-ok"); err != nil || !strings.Contains(out, "/plain-ok") {
			t.Errorf("unmeshed client → all-unauthenticated server (HTTP): %v\n%s", err, out)
		}
		if out, err := identInPod(t, plainPod, 0, "tcp", ip+":9000", "plain-tcp-ok"); err != nil || !strings.Contains(out, "plain-tcp-ok") {
			t.Errorf("unmeshed client → all-unauthenticated server (TCP): %v\n%s", err, out)
		}
		// all-authenticated: plaintext refused, HTTP and TCP alike.
		out, err := identInPod(t, plainPod, 0, "get", "--attempts", "1", "http://"+sip+":8080/plain-refused")
		t.Logf("unmeshed client → all-authenticated server (HTTP): err=%v\n%s", err, tail(out, 600))
		if err == nil || strings.Contains(out, `"path"`) || !strings.Contains(out, "403") {
			t.Errorf("unmeshed client reached the all-authenticated server over HTTP: %v\n%s", err, out)
		}
		out, err = identInPod(t, plainPod, 0, "tcp", "--timeout", "5s", sip+":9000", "plain-tcp-refused")
		t.Logf("unmeshed client → all-authenticated server (TCP): err=%v\n%s", err, tail(out, 600))
		if strings.Contains(out, "plain-tcp-refused") {
			t.Errorf("unmeshed client got an echo from the all-authenticated server over TCP:\n%s", out)
		}
		// The meshed client is served by the same server over mTLS.
		res := identLoad(t, loadStrict.Status.PodIP, testapp.LoadSpec{URL: "http://" + sip + ":8080/", Count: 10, Rate: 10})
		if res.OK != 10 {
			t.Errorf("meshed client → all-authenticated server: %+v", res)
		}
		m := metricsOf(t, strict)
		if v := identSum(m, "weft_proxy_errors_total", `kind="unauthenticated"`); v < 2 {
			t.Errorf("strict proxy counted %v unauthenticated refusals, want ≥ 2:\n%s", v, grepLines(m, "weft_proxy_errors_total"))
		}
		if !hasSample(m, "request_total", `direction="inbound"`, `tls="true"`, `client_id="`+e.id("client")+`"`) {
			t.Errorf("strict proxy lacks inbound mTLS requests from the client:\n%s", grepLines(m, "request_total"))
		}
	})

	t.Run("identity-mismatch", func(t *testing.T) {
		// A proxy with the client's token claiming the server's identity.
		before := identSum(e.metrics(t), "weft_identity_requests_refused_total", `reason="identity_mismatch"`)
		impostor := e.mesh(t, identLoadPod("impostor"), "client", "",
			corev1.EnvVar{Name: "WEFT_PROXY_IDENTITY_LOCAL_NAME", Value: e.id("server")})
		createPod(t, e.ns, impostor)
		var after float64
		waitFor(t, 2*time.Minute, "the identity service to refuse the impostor twice", func(ctx context.Context) (bool, string, error) {
			m, err := scrapeURL(ctx, "http://"+e.pod.Status.PodIP+":9990/metrics")
			if err != nil {
				return false, err.Error(), nil
			}
			after = identSum(m, "weft_identity_requests_refused_total", `reason="identity_mismatch"`)
			return after >= before+2, grepLines(m, "weft_identity_requests_refused_total"), nil
		})
		p := waitPod(t, e.ns, "impostor", "to have an IP", func(p *corev1.Pod) bool { return p.Status.PodIP != "" })
		if podReady(p) {
			t.Errorf("impostor pod is ready: %s", podState(p))
		}
		ready, err := scrapeURL(ctxFor(t, time.Minute), "http://"+p.Status.PodIP+":4191/ready")
		t.Logf("impostor: identity_mismatch %v → %v; GET /ready: %v %s", before, after, err, ready)
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Errorf("impostor proxy /ready = %v %q, want 503", err, ready)
		}
		if m := metricsOf(t, p); sampleValue(m, "identity_cert_refresh_total") > 0 || sampleValue(m, "identity_cert_refresh_failures_total") < 1 {
			t.Errorf("impostor proxy holds a certificate or counted no failure:\n%s", grepLines(m, "identity_cert"))
		}
	})
}

// identInPod runs bin/weft-testapp with args inside the network namespace of pod p, as uid
// (0: root; 2102, the proxy's uid, is exempt from the pod's interception rules), and returns
// its combined output.
func identInPod(t *testing.T, p *corev1.Pod, uid int, args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(filepath.Dir(cacheDir()), "bin", "weft-testapp")
	argv := []string{"netns", "exec", filepath.Base(podNetns(p))}
	if uid != 0 {
		argv = append(argv, "setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups")
	}
	argv = append(argv, bin)
	argv = append(argv, args...)
	out, err := exec.CommandContext(ctxFor(t, time.Minute), "ip", argv...).CombinedOutput()
	return string(out), err
}

// identCapture is a bounded tcpdump on the pod bridge.
type identCapture struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

// startCapture captures (-A, at most 4000 packets, at most 2 minutes) the packets between
// the two pod IPs on the given ports, and returns once tcpdump listens.
func startCapture(t *testing.T, a, b string, ports ...int) *identCapture {
	t.Helper()
	var ps []string
	for _, p := range ports {
		ps = append(ps, fmt.Sprintf("port %d", p))
	}
	filter := fmt.Sprintf("host %s and host %s and (%s)", a, b, strings.Join(ps, " or "))
	c := &identCapture{done: make(chan error, 1)}
	c.cmd = exec.Command("timeout", "120", "tcpdump", "-i", "weft0", "-nn", "-A", "-U", "-l", "-c", "4000", filter)
	c.cmd.Stdout = &c.out
	stderr := &syncBuffer{}
	c.cmd.Stderr = stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { c.stop() })
	waitFor(t, 30*time.Second, "tcpdump to listen", func(context.Context) (bool, string, error) {
		s := stderr.String()
		select {
		case err := <-c.done:
			c.done <- err
			return false, s, fmt.Errorf("tcpdump exited: %v", err)
		default:
		}
		return strings.Contains(s, "listening on"), s, nil
	})
	return c
}

// stop ends tcpdump (SIGINT flushes it) and returns what it printed.
func (c *identCapture) stop() string {
	if c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
	}
	select {
	case err := <-c.done:
		c.done <- err
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
	}
	return c.out.String()
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// identSleepPod is an unmeshed pod that only sleeps (a network namespace to run clients in).
func identSleepPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr[int64](2),
			Containers: []corev1.Container{testappContainer("app", "sleep", "10m")}},
	}
}

// identSum adds up the samples of name whose labels contain every fragment.
func identSum(metrics, name string, fragments ...string) float64 {
	var sum float64
	for _, line := range strings.Split(metrics, "\n") {
		rest, ok := strings.CutPrefix(line, name+"{")
		if !ok {
			continue
		}
		match := true
		for _, f := range fragments {
			match = match && strings.Contains(rest, f)
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); match && err == nil {
			sum += v
		}
	}
	return sum
}

// identTraffic is continuous, bounded traffic from the load pod to the server: HTTP/1.1 at
// 5 rps and gRPC at 2 rps (10 s load runs back to back), and a fresh TCP connection every 2 s.
type identTraffic struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	// sent, ok and failed count HTTP and gRPC requests and TCP exchanges.
	sent, ok, failed int
	errs             []string
}

func startIdentTraffic(t *testing.T, load *corev1.Pod, ip string) *identTraffic {
	tr := &identTraffic{stop: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	t.Cleanup(func() { tr.halt(); cancel() })
	for _, spec := range []testapp.LoadSpec{
		{URL: "http://" + ip + ":8080/", Count: 50, Rate: 5},
		{URL: ip + ":8081", Count: 20, Rate: 2, GRPC: true},
	} {
		tr.wg.Go(func() {
			for !tr.stopped() {
				res, err := identTryLoad(ctx, load.Status.PodIP, spec)
				tr.mu.Lock()
				tr.sent += res.Sent
				tr.ok += res.OK
				tr.failed += res.Failed + (spec.Count - res.Sent)
				if err != nil || res.Failed != 0 || res.Sent != spec.Count {
					tr.errs = append(tr.errs, fmt.Sprintf("%s: %v %+v", spec.URL, err, res))
				}
				tr.mu.Unlock()
			}
		})
	}
	tr.wg.Go(func() {
		for i := 0; !tr.stopped(); i++ {
			msg := fmt.Sprintf("rotation-tcp-%d", i)
			out, err := identExec(ctx, load, 0, "tcp", "--timeout", "10s", ip+":9000", msg)
			tr.mu.Lock()
			tr.sent++
			if err == nil && strings.Contains(out, msg) {
				tr.ok++
			} else {
				tr.failed++
				tr.errs = append(tr.errs, fmt.Sprintf("tcp %s: %v %s", msg, err, out))
			}
			tr.mu.Unlock()
			select {
			case <-tr.stop:
			case <-time.After(2 * time.Second):
			}
		}
	})
	return tr
}

func (tr *identTraffic) stopped() bool {
	select {
	case <-tr.stop:
		return true
	default:
		return false
	}
}

// halt stops the traffic and waits for the runs in flight to finish.
func (tr *identTraffic) halt() {
	if !tr.stopped() {
		close(tr.stop)
	}
	tr.wg.Wait()
}

func (tr *identTraffic) counts() (sent, ok, failed int, errs []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.sent, tr.ok, tr.failed, append([]string(nil), tr.errs...)
}

// identTryLoad is identLoad without failing the test (for goroutines).
func identTryLoad(ctx context.Context, ip string, spec testapp.LoadSpec) (testapp.LoadResult, error) {
	body, _ := json.Marshal(spec)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(spec.Count)*time.Second/time.Duration(spec.Rate)+time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+ip+":9100/run", bytes.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return testapp.LoadResult{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var res testapp.LoadResult
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("%s: %s", resp.Status, b)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return res, fmt.Errorf("%w: %s", err, b)
	}
	return res, nil
}

// identPeerIssuer handshakes with the weft inbound port of ip like a peer proxy (client SVID
// for client, minted from ca) and returns the common name of the issuer of the SVID the proxy
// presents, after verifying its chain against roots.
func identPeerIssuer(ctx context.Context, ip string, ca *pki.CA, client string, roots *x509.CertPool) (string, error) {
	conn, issuer, err := identPeerDial(ctx, ip, ca, client, roots)
	if err != nil {
		return "", err
	}
	conn.Close()
	return issuer, nil
}

// identPeerAccepts reports whether the proxy at ip accepts a peer with a client SVID for client
// minted from ca: in TLS 1.3 the client finishes its handshake before the server has checked
// the client certificate, so acceptance shows only as the connection staying open (the proxy
// waits for the connection header) instead of a TLS alert.
func identPeerAccepts(ctx context.Context, ip string, ca *pki.CA, client string, roots *x509.CertPool) error {
	conn, _, err := identPeerDial(ctx, ip, ca, client, roots)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	_, err = conn.Read(b[:])
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	return fmt.Errorf("connection ended by the server after the handshake: %w", err)
}

// identPeerDial handshakes like identPeerIssuer and returns the open connection.
func identPeerDial(ctx context.Context, ip string, ca *pki.CA, client string, roots *x509.CertPool) (net.Conn, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	uri, _ := url.Parse(client)
	leaf, err := ca.Sign(&x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    time.Now().Add(-time.Minute), NotAfter: time.Now().Add(10 * time.Minute),
		URIs: []*url.URL{uri}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}, key.Public())
	if err != nil {
		return nil, "", fmt.Errorf("mint client svid: %w", err)
	}
	chain := [][]byte{leaf.Raw, ca.Cert.Raw}
	var issuer string
	d := tls.Dialer{Config: &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{"weft.io/v1"},
		Certificates:       []tls.Certificate{{Certificate: chain, PrivateKey: key, Leaf: leaf}},
		InsecureSkipVerify: true, // SPIFFE: no host names; the chain is verified below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("no peer certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return err
			}
			issuer = cs.PeerCertificates[0].Issuer.CommonName
			return nil
		},
	}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, "4143"))
	if err != nil {
		return nil, "", err
	}
	return conn, issuer, nil
}

// identExec is identInPod bounded by ctx instead of the test.
func identExec(ctx context.Context, p *corev1.Pod, uid int, args ...string) (string, error) {
	bin := filepath.Join(filepath.Dir(cacheDir()), "bin", "weft-testapp")
	argv := []string{"netns", "exec", filepath.Base(podNetns(p))}
	if uid != 0 {
		argv = append(argv, "setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups")
	}
	argv = append(argv, bin)
	argv = append(argv, args...)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput()
	return string(out), err
}

// TestIdentityRotation: with 2-minute certificates, two meshed pods exchange continuous
// HTTP/1.1, gRPC and TCP traffic across at least three renewals of both proxies, then across
// a replaced issuer (same anchor), then across an issuer of a second anchor that both proxies
// already trust (an overlapping bundle), without a single failed request.
func TestIdentityRotation(t *testing.T) {
	t.Parallel()
	anchor2, err := pki.NewTrustAnchor("root-2.e2e", 0)
	if err != nil {
		t.Fatal(err)
	}
	e := newIdentEnv(t, 2*time.Minute, anchor2.Cert)
	roots := x509.NewCertPool()
	roots.AddCert(e.anchor.Cert)
	roots.AddCert(anchor2.Cert)
	identServiceAccount(t, e.ns, "server")
	identServiceAccount(t, e.ns, "client")
	createPod(t, e.ns, e.mesh(t, identServerPod("server", nil), "server", ""))
	srv := waitPod(t, e.ns, "server", "to be ready", podReady)
	ip := srv.Status.PodIP
	createPod(t, e.ns, e.mesh(t, identLoadPod("load"), "client", e.writeDiscovery(t, "to-server", ip, e.id("server"))))
	load := waitPod(t, e.ns, "load", "to be ready", podReady)

	start := time.Now()
	tr := startIdentTraffic(t, load, ip)
	refreshes := func(ctx context.Context) (srvN, loadN float64, err error) {
		ms, err := scrapeURL(ctx, "http://"+srv.Status.PodIP+":4191/metrics")
		if err != nil {
			return 0, 0, err
		}
		ml, err := scrapeURL(ctx, "http://"+load.Status.PodIP+":4191/metrics")
		if err != nil {
			return 0, 0, err
		}
		if f := sampleValue(ms, "identity_cert_refresh_failures_total") + sampleValue(ml, "identity_cert_refresh_failures_total"); f != 0 {
			return 0, 0, fmt.Errorf("%v failed certificate refreshes", f)
		}
		return sampleValue(ms, "identity_cert_refresh_total"), sampleValue(ml, "identity_cert_refresh_total"), nil
	}
	// Three renewals each (the first certificate counts as a refresh too).
	waitFor(t, 9*time.Minute, "three certificate renewals on both proxies", func(ctx context.Context) (bool, string, error) {
		s, l, err := refreshes(ctx)
		sent, _, failed, _ := tr.counts()
		return err == nil && s >= 4 && l >= 4, fmt.Sprintf("refreshes server=%v load=%v (err %v); traffic %d sent, %d failed", s, l, err, sent, failed), nil
	})
	s, l, _ := refreshes(t.Context())
	sent, _, failed, _ := tr.counts()
	t.Logf("after %v: refreshes server=%v load=%v; %d requests, %d failed", time.Since(start).Round(time.Second), s, l, sent, failed)

	// A new issuer under the same anchor.
	issuer2, err := e.anchor.NewIssuer("issuer-2.e2e."+e.ns, 200*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.swapIssuer(t, issuer2, roots, tr, srv, load)
	// An issuer under the second anchor of the bundle every proxy got at start.
	issuer3, err := anchor2.NewIssuer("issuer-3.e2e."+e.ns, 100*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.swapIssuer(t, issuer3, roots, tr, srv, load)

	tr.halt()
	sent, ok, failed, errs := tr.counts()
	elapsed := time.Since(start)
	s, l, err = refreshes(t.Context())
	t.Logf("rotation: %v of traffic, %d requests/exchanges, %d ok, %d failed; refreshes server=%v load=%v (%v)", elapsed.Round(time.Second), sent, ok, failed, s, l, err)
	if failed != 0 || ok != sent {
		t.Errorf("%d of %d requests failed during rotation: %v", failed, sent, errs)
	}
	if min := int(elapsed.Seconds() * 4); sent < min {
		t.Errorf("only %d requests in %v, want at least %d (traffic stalled?)", sent, elapsed, min)
	}
}

// swapIssuer replaces the issuer Secret with ca and waits until the identity service loaded it
// and every pod's proxy presents a certificate from it (verified against roots).
func (e *identEnv) swapIssuer(t *testing.T, ca *pki.CA, roots *x509.CertPool, tr *identTraffic, pods ...*corev1.Pod) {
	t.Helper()
	before := identSum(e.metrics(t), "weft_identity_issuer_reloads_total", `result="success"`)
	if _, err := kube.CoreV1().Secrets(e.ns).Update(ctxFor(t, time.Minute), identIssuerSecretObj(t, ca), metav1.UpdateOptions{}); err != nil {
		t.Fatalf("replace issuer secret: %v", err)
	}
	swapped := time.Now()
	waitFor(t, 2*time.Minute, "the identity service to load "+ca.Cert.Subject.CommonName, func(ctx context.Context) (bool, string, error) {
		m, err := scrapeURL(ctx, "http://"+e.pod.Status.PodIP+":9990/metrics")
		if err != nil {
			return false, err.Error(), nil
		}
		return identSum(m, "weft_identity_issuer_reloads_total", `result="success"`) > before &&
			math.Abs(sampleValue(m, "weft_identity_issuer_expiry_timestamp_seconds")-float64(ca.Cert.NotAfter.Unix())) < 2, grepLines(m, "weft_identity_issuer"), nil
	})
	for _, p := range pods {
		waitFor(t, 5*time.Minute, p.Name+"'s proxy to present a certificate of "+ca.Cert.Subject.CommonName, func(ctx context.Context) (bool, string, error) {
			cn, err := identPeerIssuer(ctx, p.Status.PodIP, ca, e.id("e2e-probe"), roots)
			if err != nil {
				return false, err.Error(), nil
			}
			return cn == ca.Cert.Subject.CommonName, "issued by " + cn, nil
		})
	}
	sent, _, failed, _ := tr.counts()
	t.Logf("%s: both proxies renewed from it %v after the swap; %d requests so far, %d failed", ca.Cert.Subject.CommonName, time.Since(swapped).Round(time.Second), sent, failed)
}

// setAnchors replaces the trust-roots ConfigMap (read by the identity service and, with
// anchorsFromFile, by the proxies) and waits until every pod's proxy logged one more reload.
func (e *identEnv) setAnchors(t *testing.T, anchors []*x509.Certificate, pods ...*corev1.Pod) {
	t.Helper()
	count := func(p *corev1.Pod) int {
		log, _ := readContainerLog(p, annotations.ProxyContainer)
		return strings.Count(log, "trust anchors reloaded")
	}
	before := map[string]int{}
	for _, p := range pods {
		before[p.Name] = count(p)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: identRootsCM}, Data: map[string]string{"ca-bundle.crt": string(pki.EncodeCerts(anchors...))}}
	if _, err := kube.CoreV1().ConfigMaps(e.ns).Update(ctxFor(t, time.Minute), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update trust roots: %v", err)
	}
	changed := time.Now()
	for _, p := range pods {
		waitFor(t, 3*time.Minute, p.Name+"'s proxy to reload its trust anchors", func(context.Context) (bool, string, error) {
			n := count(p)
			return n > before[p.Name], fmt.Sprintf("%d reloads logged", n), nil
		})
	}
	t.Logf("trust anchors (%d roots) reloaded by every proxy %v after the ConfigMap changed", len(anchors), time.Since(changed).Round(time.Second))
}

// TestIdentityAnchorRotationLive: proxies that read the trust-roots ConfigMap as a file
// (WEFT_PROXY_IDENTITY_TRUST_ANCHORS_FILE) go through a complete anchor rotation without a
// restart and without a failed request: bundle old+new, issuer of the new anchor, bundle new
// only; afterwards a peer with a certificate of the old anchor is refused.
func TestIdentityAnchorRotationLive(t *testing.T) {
	t.Parallel()
	e := newIdentEnv(t, 2*time.Minute)
	e.anchorsFromFile = true
	anchor2, err := pki.NewTrustAnchor("root-2.e2e."+e.ns, 0)
	if err != nil {
		t.Fatal(err)
	}
	both := x509.NewCertPool()
	both.AddCert(e.anchor.Cert)
	both.AddCert(anchor2.Cert)
	identServiceAccount(t, e.ns, "server")
	identServiceAccount(t, e.ns, "client")
	createPod(t, e.ns, e.mesh(t, identServerPod("server", nil), "server", ""))
	srv := waitPod(t, e.ns, "server", "to be ready", podReady)
	ip := srv.Status.PodIP
	createPod(t, e.ns, e.mesh(t, identLoadPod("load"), "client", e.writeDiscovery(t, "to-server", ip, e.id("server"))))
	load := waitPod(t, e.ns, "load", "to be ready", podReady)
	start := time.Now()
	tr := startIdentTraffic(t, load, ip)

	// 1. Overlap: both anchors, the old issuer still signing.
	e.setAnchors(t, []*x509.Certificate{e.anchor.Cert, anchor2.Cert}, srv, load)
	// 2. An issuer of the new anchor; both proxies renew from it.
	issuer2, err := anchor2.NewIssuer("issuer-2.e2e."+e.ns, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.swapIssuer(t, issuer2, both, tr, srv, load)
	// 3. The new anchor alone.
	e.setAnchors(t, []*x509.Certificate{anchor2.Cert}, srv, load)

	// The old anchor is no longer trusted: a peer with a certificate of the old issuer is
	// refused, one of the new issuer is served.
	if err := identPeerAccepts(ctxFor(t, time.Minute), ip, e.issuer, e.id("client"), both); err == nil {
		t.Errorf("server proxy accepted a client certificate of the removed anchor")
	} else {
		t.Logf("client of the removed anchor: %v", err)
	}
	if err := identPeerAccepts(ctxFor(t, time.Minute), ip, issuer2, e.id("client"), both); err != nil {
		t.Errorf("client of the new anchor refused: %v", err)
	}
	// A little more traffic on the new anchor alone, then the tally.
	time.Sleep(10 * time.Second)
	tr.halt()
	sent, ok, failed, errs := tr.counts()
	t.Logf("live anchor rotation: %v of traffic, %d requests/exchanges, %d ok, %d failed", time.Since(start).Round(time.Second), sent, ok, failed)
	if failed != 0 || ok != sent || sent == 0 {
		t.Errorf("%d of %d requests failed during the anchor rotation: %v", failed, sent, errs)
	}
	for _, p := range []*corev1.Pod{srv, load} {
		if m := metricsOf(t, p); sampleValue(m, "identity_cert_refresh_failures_total") != 0 {
			t.Errorf("%s: certificate refreshes failed during the anchor rotation:\n%s", p.Name, grepLines(m, "identity_cert"))
		}
	}
}
