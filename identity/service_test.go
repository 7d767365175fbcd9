package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/weftmesh/weft/api/identity/v1"
	"github.com/weftmesh/weft/internal/pki"
)

// fakeReviewer maps tokens to usernames; unknown tokens are invalid.
type fakeReviewer struct {
	users map[string]string
	block chan struct{} // when non-nil, Review waits on it
}

func (f *fakeReviewer) Review(ctx context.Context, token string) (string, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	u, ok := f.users[token]
	if !ok {
		return "", &InvalidTokenError{Reason: "unknown token"}
	}
	return u, nil
}

type testCA struct {
	anchor, issuer *pki.CA
	certPEM        []byte
	keyPEM         []byte
	anchorPEM      []byte
}

func newTestCA(t *testing.T, issuerValidity time.Duration) testCA {
	t.Helper()
	anchor, err := pki.NewTrustAnchor("root.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := anchor.NewIssuer("issuer.test", issuerValidity)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return testCA{anchor, issuer, pki.EncodeCerts(issuer.Cert), keyPEM, pki.EncodeCerts(anchor.Cert)}
}

func newTestService(t *testing.T, ca testCA, cfg ServiceConfig) *Service {
	t.Helper()
	if cfg.Reviewer == nil {
		cfg.Reviewer = &fakeReviewer{users: map[string]string{
			"tok-web":   "system:serviceaccount:demo:web",
			"tok-admin": "kubernetes-admin",
		}}
	}
	s, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Load(ca.certPEM, ca.keyPEM, ca.anchorPEM); err != nil {
		t.Fatal(err)
	}
	return s
}

func csrFor(t *testing.T, key crypto.Signer, uris ...string) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func ecKey(t *testing.T, c elliptic.Curve) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const webID = "spiffe://cluster.local/ns/demo/sa/web"

func TestCertifyIssuesValidSVID(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, 0)
	s := newTestService(t, ca, ServiceConfig{Lifetime: 2 * time.Hour})
	key := ecKey(t, elliptic.P256())
	resp, err := s.Certify(context.Background(), &identityv1.CertifyRequest{
		Identity: webID, Token: []byte("tok-web"), CertificateSigningRequest: csrFor(t, key, webID),
	})
	if err != nil {
		t.Fatal(err)
	}
	chain := append([][]byte{resp.LeafCertificate}, resp.IntermediateCertificates...)
	var raw []byte
	for _, c := range chain {
		raw = append(raw, c...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := x509svid.ParseRaw(raw, keyDER)
	if err != nil {
		t.Fatalf("go-spiffe rejects the issued SVID: %v", err)
	}
	if svid.ID.String() != webID {
		t.Fatalf("SVID ID = %s, want %s", svid.ID, webID)
	}
	leaf := svid.Certificates[0]
	if leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("leaf IsCA=%v KeyUsage=%v", leaf.IsCA, leaf.KeyUsage)
	}
	if len(leaf.ExtKeyUsage) != 2 {
		t.Errorf("want server+client auth, got %v", leaf.ExtKeyUsage)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 2*time.Hour || life > 2*time.Hour+time.Minute {
		t.Errorf("lifetime %v, want 2h plus skew", life)
	}
	if !leaf.NotBefore.Before(time.Now().Add(-10 * time.Second)) {
		t.Errorf("NotBefore %v not backdated", leaf.NotBefore)
	}
	if !resp.ValidUntil.AsTime().Equal(leaf.NotAfter) {
		t.Errorf("ValidUntil %v != NotAfter %v", resp.ValidUntil.AsTime(), leaf.NotAfter)
	}
	bundle := x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString("cluster.local"), []*x509.Certificate{ca.anchor.Cert})
	if _, _, err := x509svid.Verify(svid.Certificates, bundle); err != nil {
		t.Fatalf("SVID does not verify against the anchors: %v", err)
	}
}

func TestCertifyRefusals(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, 0)
	s := newTestService(t, ca, ServiceConfig{})
	p256 := ecKey(t, elliptic.P256())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		identity string
		token    string
		csr      []byte
		code     codes.Code
		contains string
	}{
		{"unknown token", webID, "nope", csrFor(t, p256, webID), codes.Unauthenticated, "unknown token"},
		{"not a service account", webID, "tok-admin", csrFor(t, p256, webID), codes.Unauthenticated, "not a ServiceAccount"},
		{"requested other identity", "spiffe://cluster.local/ns/demo/sa/books", "tok-web", csrFor(t, p256, "spiffe://cluster.local/ns/demo/sa/books"), codes.PermissionDenied, "requested identity"},
		{"other trust domain", "spiffe://other.org/ns/demo/sa/web", "tok-web", csrFor(t, p256, "spiffe://other.org/ns/demo/sa/web"), codes.PermissionDenied, "does not match"},
		{"csr names other sa", webID, "tok-web", csrFor(t, p256, "spiffe://cluster.local/ns/demo/sa/books"), codes.PermissionDenied, "CSR"},
		{"csr two uris", webID, "tok-web", csrFor(t, p256, webID, "spiffe://cluster.local/ns/x/sa/y"), codes.InvalidArgument, "2 URI SANs"},
		{"csr no uri", webID, "tok-web", csrFor(t, p256), codes.InvalidArgument, "0 URI SANs"},
		{"csr rsa", webID, "tok-web", csrFor(t, rsaKey, webID), codes.InvalidArgument, "ECDSA"},
		{"csr p224", webID, "tok-web", csrFor(t, ecKey(t, elliptic.P224()), webID), codes.InvalidArgument, "curve"},
		{"csr garbage", webID, "tok-web", []byte("garbage"), codes.InvalidArgument, "parse CSR"},
		{"identity garbage", "not-a-spiffe-id", "tok-web", csrFor(t, p256, webID), codes.InvalidArgument, "identity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Certify(context.Background(), &identityv1.CertifyRequest{
				Identity: tt.identity, Token: []byte(tt.token), CertificateSigningRequest: tt.csr,
			})
			st, _ := status.FromError(err)
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.contains) {
				t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), tt.code, tt.contains)
			}
		})
	}
}

func TestCertifyP384Accepted(t *testing.T) {
	t.Parallel()
	s := newTestService(t, newTestCA(t, 0), ServiceConfig{})
	_, err := s.Certify(context.Background(), &identityv1.CertifyRequest{
		Identity: webID, Token: []byte("tok-web"), CertificateSigningRequest: csrFor(t, ecKey(t, elliptic.P384()), webID),
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLeafCappedAtIssuerExpiry(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, time.Hour)
	s := newTestService(t, ca, ServiceConfig{Lifetime: 24 * time.Hour})
	resp, err := s.Certify(context.Background(), &identityv1.CertifyRequest{
		Identity: webID, Token: []byte("tok-web"), CertificateSigningRequest: csrFor(t, ecKey(t, elliptic.P256()), webID),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.ValidUntil.AsTime(); got.After(ca.issuer.Cert.NotAfter) {
		t.Fatalf("leaf valid until %v, after issuer expiry %v", got, ca.issuer.Cert.NotAfter)
	}
}

func TestNotReadyUntilLoaded(t *testing.T) {
	t.Parallel()
	s, err := NewService(ServiceConfig{Reviewer: &fakeReviewer{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Certify(context.Background(), &identityv1.CertifyRequest{Identity: webID})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("got %v, want Unavailable", err)
	}
}

func TestLoadValidation(t *testing.T) {
	t.Parallel()
	a := newTestCA(t, 0)
	b := newTestCA(t, 0)
	expired := newTestCA(t, time.Hour)
	tests := []struct {
		name     string
		cert     []byte
		key      []byte
		anchors  []byte
		now      time.Time
		contains string
	}{
		{"issuer from other root", a.certPEM, a.keyPEM, b.anchorPEM, time.Now(), "does not chain"},
		{"key mismatch", a.certPEM, b.keyPEM, a.anchorPEM, time.Now(), "does not match"},
		{"expired issuer", expired.certPEM, expired.keyPEM, expired.anchorPEM, time.Now().Add(2 * time.Hour), "valid from"},
		{"no anchors", a.certPEM, a.keyPEM, nil, time.Now(), "trust anchors"},
		{"bundle of two roots", a.certPEM, a.keyPEM, append(append([]byte{}, b.anchorPEM...), a.anchorPEM...), time.Now(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			s, err := NewService(ServiceConfig{Reviewer: &fakeReviewer{}, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Load(tt.cert, tt.key, tt.anchors)
			if tt.contains == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("got %v, want error containing %q", err, tt.contains)
			}
		})
	}
}

func TestFailedReloadKeepsPreviousIssuer(t *testing.T) {
	t.Parallel()
	a := newTestCA(t, 0)
	s := newTestService(t, a, ServiceConfig{})
	other := newTestCA(t, 0)
	if err := s.Load(other.certPEM, other.keyPEM, a.anchorPEM); err == nil {
		t.Fatal("load of an issuer from another root must fail")
	}
	creds, err := s.Credentials()
	if err != nil || !creds.Issuer.Cert.Equal(a.issuer.Cert) {
		t.Fatalf("previous issuer not kept: %v", err)
	}
	// A new issuer under the same anchor is taken.
	next, err := a.anchor.NewIssuer("issuer-2", 0)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := pki.EncodeKey(next.Key)
	reloaded := 0
	s.OnReload(func(*Credentials) { reloaded++ })
	if err := s.Load(pki.EncodeCerts(next.Cert), keyPEM, a.anchorPEM); err != nil {
		t.Fatal(err)
	}
	if creds, _ := s.Credentials(); !creds.Issuer.Cert.Equal(next.Cert) || reloaded != 1 {
		t.Fatalf("new issuer not installed (reload callbacks: %d)", reloaded)
	}
}

func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	rev := &fakeReviewer{users: map[string]string{"tok-web": "system:serviceaccount:demo:web"}, block: block}
	s := newTestService(t, newTestCA(t, 0), ServiceConfig{Reviewer: rev, MaxConcurrent: 2, QueueWait: 50 * time.Millisecond})
	req := &identityv1.CertifyRequest{Identity: webID, Token: []byte("tok-web"), CertificateSigningRequest: csrFor(t, ecKey(t, elliptic.P256()), webID)}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _, err := s.Certify(context.Background(), req); errs <- err }()
	}
	// Wait until both slots are held, then a third request is refused.
	deadline := time.Now().Add(10 * time.Second)
	for len(s.slots) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	_, err := s.Certify(context.Background(), req)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third request: got %v, want ResourceExhausted", err)
	}
	close(block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("held request failed: %v", err)
		}
	}
}

func TestServiceAccountID(t *testing.T) {
	t.Parallel()
	td := spiffeid.RequireTrustDomainFromString("example.org")
	tests := []struct {
		user, want string
		wantErr    bool
	}{
		{"system:serviceaccount:demo:web", "spiffe://example.org/ns/demo/sa/web", false},
		{"system:serviceaccount:demo", "", true},
		{"system:serviceaccount::web", "", true},
		{"system:serviceaccount:a:b:c", "", true},
		{"alice", "", true},
	}
	for _, tt := range tests {
		id, err := ServiceAccountID(td, tt.user)
		if (err != nil) != tt.wantErr || (err == nil && id.String() != tt.want) {
			t.Errorf("%q: got %v, %v", tt.user, id, err)
		}
		var tok *InvalidTokenError
		if err != nil && !errors.As(err, &tok) {
			t.Errorf("%q: error %T is not an InvalidTokenError", tt.user, err)
		}
	}
}
