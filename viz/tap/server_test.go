package tap

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/pki"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
)

const vizID = "spiffe://cluster.local/ns/weft-viz/sa/weft-viz"

// fakeProxy is a tap server as a proxy runs it: mTLS with the pod's SVID,
// only the viz identity accepted; it sends each request's three events.
type fakeProxy struct {
	tapv1.UnimplementedTapServer
	requests int
	got      chan *tapv1.ObserveRequest
}

func (p *fakeProxy) Observe(req *tapv1.ObserveRequest, st grpc.ServerStreamingServer[tapv1.Event]) error {
	p.got <- req
	for i := 1; i <= p.requests; i++ {
		id := uint64(i)
		for _, ev := range []*tapv1.Event{
			{Id: id, Direction: "inbound", Tls: true, ClientId: "spiffe://cluster.local/ns/demo/sa/traffic", SourceAddr: "198.18.0.20:41000",
				Kind: &tapv1.Event_Request{Request: &tapv1.RequestInit{Method: "GET", Path: "/books/" + strconv.Itoa(i)}}},
			{Id: id, Direction: "inbound", SourceAddr: "198.18.0.20:41000", Kind: &tapv1.Event_Response{Response: &tapv1.ResponseInit{Status: 200, LatencyUs: 500}}},
			{Id: id, Direction: "inbound", SourceAddr: "198.18.0.20:41000", Kind: &tapv1.Event_End{End: &tapv1.ResponseEnd{GrpcStatus: -1, DurationUs: 600}}},
		} {
			if err := st.Send(ev); err != nil {
				return err
			}
		}
	}
	<-st.Context().Done()
	return nil
}

func startProxy(t *testing.T, ca *identitytest.CA, p *fakeProxy) int {
	t.Helper()
	svid := ca.SVID(t, "spiffe://cluster.local/ns/demo/sa/web", time.Hour)
	tc := tlsconfig.MTLSServerConfig(fixedSVID{svid}, ca.Bundle(), tlsconfig.AuthorizeID(spiffeid.RequireFromString(vizID)))
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)))
	tapv1.RegisterTapServer(srv, p)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().(*net.TCPAddr).Port
}

// cert issues a leaf of ca (client or server) into PEM files in dir.
func cert(t *testing.T, ca *pki.CA, cn string, usage x509.ExtKeyUsage, dns ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Sign(&x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), DNSNames: dns,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
}

type tapEnv struct {
	url    string
	client func(cert *tls.Certificate) *http.Client
}

func withFakeProxy(p *fakeProxy) func(*testing.T, *identitytest.CA) int {
	return func(t *testing.T, ca *identitytest.CA) int { return startProxy(t, ca, p) }
}

// newTapEnv runs the tap API server with the real identity service and a
// proxy tap server that serve starts (the pod's port).
func newTapEnv(t *testing.T, serve func(t *testing.T, ca *identitytest.CA) int) *tapEnv {
	t.Helper()
	ca := identitytest.NewCA(t, "")
	svc := identitytest.StartService(t, ca, identitytest.Options{Users: identitytest.Reviewer{"tok-viz": "system:serviceaccount:weft-viz:weft-viz"}})
	port := serve(t, ca)

	frontCA, err := pki.NewTrustAnchor("front-proxy-ca", 0)
	if err != nil {
		t.Fatal(err)
	}
	servingCA, err := pki.NewTrustAnchor("viz-tap-ca", 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	serving := cert(t, servingCA, "weft-viz.weft-viz.svc", x509.ExtKeyUsageServerAuth, "weft-viz.weft-viz.svc")
	keyPEM, err := pki.EncodeKey(serving.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"tls.crt": pki.EncodeCerts(serving.Leaf), "tls.key": keyPEM, "token": []byte("tok-viz")} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	values, _ := json.Marshal(injector.Values{ControlPlaneNamespace: "weft", TrustDomain: "cluster.local", ClusterDomain: "cluster.local", TrustAnchorsPEM: string(ca.AnchorPEM)})
	yes := true
	objs := []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "weft", Name: "weft-config"}, Data: map[string]string{"values": string(values)}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: AuthnNamespace, Name: AuthnConfigMap}, Data: map[string]string{
			"requestheader-client-ca-file":   string(pki.EncodeCerts(frontCA.Cert)),
			"requestheader-allowed-names":    `["front-proxy-client"]`,
			"requestheader-username-headers": `["X-Remote-User"]`,
			"requestheader-group-headers":    `["X-Remote-Group"]`,
		}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "web"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "web-5f7c9-x1", Labels: map[string]string{"app": "web", "pod-template-hash": "5f7c9"},
				OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-5f7c9", Controller: &yes}}},
			Spec:   corev1.PodSpec{ServiceAccountName: "web", Containers: []corev1.Container{{Name: "web"}, {Name: "weft-proxy"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1"},
		},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "load", Name: "traffic-0", Labels: map[string]string{"app": "traffic"},
				OwnerReferences: []metav1.OwnerReference{{Kind: "StatefulSet", Name: "traffic", Controller: &yes}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "198.18.0.20"},
		},
	}
	cs := fake.NewClientset(objs...)
	// The fake ignores field selectors: answer status.podIP as the API server does.
	cs.PrependReactor("list", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		fs := a.(clienttesting.ListAction).GetListRestrictions().Fields.String()
		ip, ok := strings.CutPrefix(fs, "status.podIP=")
		if !ok {
			return false, nil, nil
		}
		list := &corev1.PodList{}
		for _, o := range objs {
			if p, isPod := o.(*corev1.Pod); isPod && p.Status.PodIP == ip {
				list.Items = append(list.Items, *p)
			}
		}
		return true, list, nil
	})
	cs.PrependReactor("create", "subjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		sar := a.(clienttesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview)
		ra := sar.Spec.ResourceAttributes
		sar.Status.Allowed = sar.Spec.User == "alice" && ra.Verb == "watch" && ra.Group == Group && ra.Subresource == "tap"
		return true, sar, nil
	})
	ident := IdentityFromConfigMap(IdentityConfig{Client: cs, ControlPlaneNamespace: "weft", Namespace: "weft-viz", ServiceAccount: "weft-viz",
		TokenFile: filepath.Join(dir, "token"), ServiceAddr: svc.Addr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv, err := New(Config{
		Client: cs, ListenAddr: "127.0.0.1:0", CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"),
		Identity: func(ctx context.Context) (*MTLSSource, error) {
			src, err := ident(ctx)
			if src != nil {
				src.Port = port
			}
			return src, err
		},
		Refresh: 100 * time.Millisecond, Follow: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(servingCA.Cert)
	front := cert(t, frontCA, "front-proxy-client", x509.ExtKeyUsageClientAuth)
	return &tapEnv{
		url: "https://" + ln.Addr().String(),
		client: func(c *tls.Certificate) *http.Client {
			if c == nil {
				c = &front
			}
			return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs: roots, ServerName: "weft-viz.weft-viz.svc", Certificates: []tls.Certificate{*c}}}}
		},
	}
}

// waitOK posts body as alice until the server is ready (503 until the
// component's certificate is issued, 401 until the front-proxy CA is loaded).
func (e *tapEnv) waitOK(t *testing.T, body Request) []byte {
	t.Helper()
	c := e.client(nil)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, b := e.post(t, c, "alice", body)
		if resp.StatusCode == http.StatusOK {
			return b
		}
		if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusUnauthorized || time.Now().After(deadline) {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
	}
}

func (e *tapEnv) post(t *testing.T, c *http.Client, user string, body Request) (*http.Response, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, e.url+Path(Target{Namespace: "demo", Resource: "deployments", Name: "web"}), bytes.NewReader(b))
	req.Header.Set("X-Remote-User", user)
	req.Header.Add("X-Remote-Group", "system:authenticated")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// TestServerTapsOverMTLS: the API server's front-proxy certificate and an
// allowed user get the merged stream of a deployment's pod, which the
// server dialled over mTLS with the certificate the identity service issued
// it; the limit ends the stream.
func TestServerTapsOverMTLS(t *testing.T) {
	proxy := &fakeProxy{requests: 3, got: make(chan *tapv1.ObserveRequest, 4)}
	e := newTapEnv(t, withFakeProxy(proxy))
	body := e.waitOK(t, Request{Max: 2, Duration: "10s"})
	if got := <-proxy.got; got.GetLimit() != 2 {
		t.Errorf("proxy got limit %d, want 2", got.GetLimit())
	}
	d := NewDecoder(bytes.NewReader(body))
	var kinds []string
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Pod != "web-5f7c9-x1" || ev.Workload != "deploy/web" {
			t.Errorf("event from %s (%s)", ev.Pod, ev.Workload)
		}
		if src, _ := Peers(ev); src.Name() != "sts/traffic" || src.Namespace != "load" {
			t.Errorf("source of %v = %+v, want the client pod's sts/traffic in load", ev.Event, src)
		}
		kinds = append(kinds, fmtKind(ev.Event))
	}
	if strings.Join(kinds, ",") != "req,rsp,end,req,rsp,end" {
		t.Errorf("%d events, want 2 requests × 3: %v", len(kinds), kinds)
	}
}

func TestServerRefuses(t *testing.T) {
	e := newTapEnv(t, withFakeProxy(&fakeProxy{got: make(chan *tapv1.ObserveRequest, 4)}))
	other, err := pki.NewTrustAnchor("not-the-front-proxy", 0)
	if err != nil {
		t.Fatal(err)
	}
	stranger := cert(t, other, "front-proxy-client", x509.ExtKeyUsageClientAuth)
	// Wait for the front-proxy configuration.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, b := e.post(t, e.client(nil), "bob", Request{})
		if resp.StatusCode == http.StatusForbidden {
			var st metav1.Status
			if err := json.Unmarshal(b, &st); err != nil || st.Reason != metav1.StatusReasonForbidden {
				t.Fatalf("denial is not a Forbidden Status: %v %s", err, b)
			}
			b = []byte(st.Message)
			for _, want := range []string{`bob cannot tap deployments/web: missing permission "watch" on "deployments/tap"`, "kubectl create clusterrolebinding bob-tap --clusterrole=weft-viz-tap --user=bob"} {
				if !strings.Contains(string(b), want) {
					t.Errorf("denial lacks %q: %s", want, b)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob: status %d: %s", resp.StatusCode, b)
		}
	}
	if resp, b := e.post(t, e.client(&stranger), "alice", Request{}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "front-proxy certificate") {
		t.Errorf("certificate of another CA: %d %s", resp.StatusCode, b)
	}
	if resp, b := e.post(t, e.client(&tls.Certificate{}), "alice", Request{}); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "no front-proxy client certificate") {
		t.Errorf("no certificate: %d %s", resp.StatusCode, b)
	}
	if resp, b := e.post(t, e.client(nil), "alice", Request{Duration: "1h"}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("duration 1h: %d %s", resp.StatusCode, b)
	}
}

func fmtKind(e *tapv1.Event) string {
	switch e.GetKind().(type) {
	case *tapv1.Event_Request:
		return "req"
	case *tapv1.Event_Response:
		return "rsp"
	case *tapv1.Event_End:
		return "end"
	}
	return "other"
}

type fixedSVID struct{ s *x509svid.SVID }

func (f fixedSVID) GetX509SVID() (*x509svid.SVID, error) { return f.s, nil }

// TestIdentityFollowsAnchors: a new anchor bundle in weft-config reaches
// the component's trust bundle.
func TestIdentityFollowsAnchors(t *testing.T) {
	ca, next := identitytest.NewCA(t, ""), identitytest.NewCA(t, "")
	values := func(pem []byte) map[string]string {
		b, _ := json.Marshal(injector.Values{ControlPlaneNamespace: "weft", TrustDomain: "cluster.local", ClusterDomain: "cluster.local", TrustAnchorsPEM: string(pem)})
		return map[string]string{"values": string(b)}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "weft", Name: "weft-config"}, Data: values(ca.AnchorPEM)}
	cs := fake.NewClientset(cm)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := IdentityFromConfigMap(IdentityConfig{Client: cs, ControlPlaneNamespace: "weft", Namespace: "weft-viz", ServiceAccount: "weft-viz",
		TokenFile: filepath.Join(t.TempDir(), "none"), ServiceAddr: "127.0.0.1:1", AnchorsPoll: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if src.Ready() == nil {
		t.Errorf("ready without a certificate")
	}
	cm.Data = values(next.AnchorPEM)
	if _, err := cs.CoreV1().ConfigMaps("weft").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	td := spiffeid.RequireTrustDomainFromString("cluster.local")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := src.Bundle.GetX509BundleForTrustDomain(td)
		if err == nil && b.HasX509Authority(next.Anchor.Cert) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new anchors did not arrive: %v", err)
		}
	}
}
