//go:build e2e

package tests

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
}

// newIdentEnv starts the identity service in a new namespace; lifetime is its
// --issuance-lifetime.
func newIdentEnv(t *testing.T, lifetime time.Duration) *identEnv {
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
	e.anchorsPEM = string(pki.EncodeCerts(e.anchor.Cert))
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
		// No readiness probe on the app: the kubelet's plaintext probe would be refused too
		// (the pod would never be ready; see the report of this test's author).
		strictPod := identServerPod("strict", map[string]string{annotations.DefaultInboundPolicy: "all-authenticated"})
		strictPod.Spec.Containers[0].ReadinessProbe = nil
		createPod(t, e.ns, e.mesh(t, strictPod, "server", ""))
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
