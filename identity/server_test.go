package identity

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	identityv1 "github.com/weftmesh/weft/api/identity/v1"
	"github.com/weftmesh/weft/internal/ctlserver"
	"github.com/weftmesh/weft/internal/pki"
)

// startServer runs a Server with a FileSource on loopback and returns its
// gRPC and admin addresses.
func startServer(t *testing.T, dir string) (*Server, string, string) {
	t.Helper()
	src := &FileSource{
		IssuerCert:   filepath.Join(dir, "tls.crt"),
		IssuerKey:    filepath.Join(dir, "tls.key"),
		TrustAnchors: filepath.Join(dir, "ca-bundle.crt"),
		Interval:     20 * time.Millisecond,
	}
	srv, err := New(Config{
		Service: ServiceConfig{Reviewer: &fakeReviewer{users: map[string]string{"tok-web": "system:serviceaccount:demo:web"}}},
		Source:  src,
	})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, admin) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv, lis.Addr().String(), admin.Addr().String()
}

func writeCA(t *testing.T, dir string, ca testCA) {
	t.Helper()
	for name, data := range map[string][]byte{"tls.crt": ca.certPEM, "tls.key": ca.keyPEM, "ca-bundle.crt": ca.anchorPEM} {
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func dialIdentity(t *testing.T, addr string, anchors []*x509.Certificate) identityv1.IdentityClient {
	t.Helper()
	td := spiffeid.RequireTrustDomainFromString("cluster.local")
	want := spiffeid.RequireFromString("spiffe://cluster.local/ns/weft/sa/weft-identity")
	conf := tlsconfig.TLSClientConfig(x509bundle.FromX509Authorities(td, anchors), tlsconfig.AuthorizeID(want))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return identityv1.NewIdentityClient(conn)
}

func TestServerCertifiesOverVerifiedTLSAndReloads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, 0)
	writeCA(t, dir, ca)
	srv, addr, adminAddr := startServer(t, dir)
	waitReady(t, adminAddr)

	client := dialIdentity(t, addr, []*x509.Certificate{ca.anchor.Cert})
	req := &identityv1.CertifyRequest{Identity: webID, Token: []byte("tok-web"), CertificateSigningRequest: csrFor(t, ecKey(t, elliptic.P256()), webID)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.Certify(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := x509.ParseCertificate(resp.IntermediateCertificates[0])
	if !first.Equal(ca.issuer.Cert) {
		t.Fatal("intermediate is not the issuer")
	}

	// Rotate the issuer under the same anchor: the service picks it up.
	next, err := ca.anchor.NewIssuer("issuer-2.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := pki.EncodeKey(next.Key)
	writeCA(t, dir, testCA{anchor: ca.anchor, issuer: next, certPEM: pki.EncodeCerts(next.Cert), keyPEM: keyPEM, anchorPEM: ca.anchorPEM})
	deadline := time.Now().Add(10 * time.Second)
	for {
		creds, _ := srv.Service().Credentials()
		if creds.Issuer.Cert.Equal(next.Cert) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rotated issuer not loaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err = client.Certify(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := x509.ParseCertificate(resp.IntermediateCertificates[0]); !got.Equal(next.Cert) {
		t.Fatal("certificate not signed by the rotated issuer")
	}
	metrics := httpGet(t, "http://"+adminAddr+"/metrics")
	for _, want := range []string{`weft_identity_issuer_reloads_total{result="success"} 2`, "weft_identity_certificates_issued_total 2", "weft_identity_issuer_expiry_timestamp_seconds"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The admin self-test reports the issuer loaded: the rotated one.
	var rep ctlserver.Report
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+adminAddr+"/selftest")), &rep); err != nil {
		t.Fatal(err)
	}
	res, ok := rep.Find(SelfTestIssuer)
	if !ok || !res.OK {
		t.Fatalf("self-test %s missing or failed: %+v", SelfTestIssuer, rep)
	}
	if got, err := pki.ParseCerts([]byte(res.Detail)); err != nil || !got[0].Equal(next.Cert) {
		t.Fatalf("self-test issuer = %v (%v), want the rotated issuer", got, err)
	}
}

func TestServerRefusesClientsTrustingOtherAnchors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeCA(t, dir, newTestCA(t, 0))
	_, addr, adminAddr := startServer(t, dir)
	waitReady(t, adminAddr)
	other := newTestCA(t, 0)
	client := dialIdentity(t, addr, []*x509.Certificate{other.anchor.Cert})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.Certify(ctx, &identityv1.CertifyRequest{}); err == nil {
		t.Fatal("a client trusting other anchors must not complete the handshake")
	}
}

func TestNewRequiresSource(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{Service: ServiceConfig{Reviewer: &fakeReviewer{}}}); err == nil {
		t.Fatal("New without a source must fail")
	}
}

func waitReady(t *testing.T, adminAddr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + adminAddr + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
