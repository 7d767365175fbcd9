package injector

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/internal/ctlserver"
	"github.com/weftmesh/weft/internal/pki"
)

func writeServing(t *testing.T, dir string, ca *pki.CA) *x509.Certificate {
	t.Helper()
	cert, key, err := ca.NewServingCert([]string{"weft-injector.weft.svc"}, []net.IP{net.ParseIP("127.0.0.1")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := pki.EncodeKey(key)
	for name, data := range map[string][]byte{"tls.crt": pki.EncodeCerts(cert), "tls.key": keyPEM} {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return cert
}

func TestServerOverTLSWithValuesFromConfigMap(t *testing.T) {
	t.Parallel()
	ca, err := pki.NewTrustAnchor("webhook-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first := writeServing(t, dir, ca)
	vals, _ := json.Marshal(testValues())
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Annotations: map[string]string{annotations.Inject: "enabled"}}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "weft", Name: "weft-config"}, Data: map[string]string{ValuesKey: string(vals)}},
	)
	srv, err := New(Config{Client: client, CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	admin, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, admin) }()
	t.Cleanup(func() { cancel(); <-done })

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	var served *x509.Certificate
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: roots, ServerName: "weft-injector.weft.svc",
		VerifyConnection: func(cs tls.ConnectionState) error { served = cs.PeerCertificates[0]; return nil },
	}, DisableKeepAlives: true}}
	post := func() *admissionv1.AdmissionResponse {
		raw, _ := json.Marshal(loadPod(t, "pod-basic.in.yaml"))
		body, _ := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Namespace: "demo", Operation: admissionv1.Create, Object: runtimeRaw(raw)},
		})
		resp, err := hc.Post("https://"+lis.Addr().String()+"/inject", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return out.Response
	}
	if r := post(); !r.Allowed || len(r.Patch) == 0 {
		t.Fatalf("want a patch, got %+v", r)
	}
	if !served.Equal(first) {
		t.Fatal("unexpected serving certificate")
	}
	// Rotate the serving certificate on disk: new connections get it.
	second := writeServing(t, dir, ca)
	post()
	if !served.Equal(second) {
		t.Fatal("rotated serving certificate not picked up")
	}
	// The admin self-test reports the certificate really served: the rotated one.
	rep := getSelfTest(t, "http://"+admin.Addr().String()+"/selftest")
	res, ok := rep.Find(SelfTestServedCertificate)
	if !ok || !res.OK {
		t.Fatalf("self-test %s missing or failed: %+v", SelfTestServedCertificate, rep)
	}
	got, err := pki.ParseCerts([]byte(res.Detail))
	if err != nil || !got[0].Equal(second) {
		t.Fatalf("self-test served certificate = %v (%v), want the rotated one", got, err)
	}
}

func getSelfTest(t *testing.T, url string) ctlserver.Report {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep ctlserver.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
	return rep
}

func TestNewRequiresCertificate(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{Client: fake.NewClientset()}); err == nil {
		t.Fatal("want an error without certificate files")
	}
	if _, err := New(Config{Client: fake.NewClientset(), CertFile: "/nonexistent", KeyFile: "/nonexistent"}); err == nil {
		t.Fatal("want an error for missing files")
	}
}
