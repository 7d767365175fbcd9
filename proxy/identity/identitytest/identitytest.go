// Package identitytest runs weft's real identity service in-process on
// loopback and makes test certificate authorities and SVIDs, for the tests
// of proxy/identity, proxy/mtls and the proxy core.
package identitytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	idsvc "github.com/weftmesh/weft/identity"
	"github.com/weftmesh/weft/internal/pki"
)

// CA is a trust anchor with an issuer below it.
type CA struct {
	TrustDomain spiffeid.TrustDomain
	Anchor      *pki.CA
	Issuer      *pki.CA
	// AnchorPEM, IssuerCertPEM and IssuerKeyPEM are the PEM encodings.
	AnchorPEM, IssuerCertPEM, IssuerKeyPEM []byte
}

// NewCA makes a fresh anchor and issuer for trust domain td ("" means
// cluster.local).
func NewCA(t testing.TB, td string) *CA {
	t.Helper()
	if td == "" {
		td = "cluster.local"
	}
	anchor, err := pki.NewTrustAnchor("root."+td, 0)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := anchor.NewIssuer("issuer."+td, 0)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.EncodeKey(issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{
		TrustDomain: spiffeid.RequireTrustDomainFromString(td),
		Anchor:      anchor, Issuer: issuer,
		AnchorPEM: pki.EncodeCerts(anchor.Cert), IssuerCertPEM: pki.EncodeCerts(issuer.Cert), IssuerKeyPEM: keyPEM,
	}
}

// Bundle is the CA's trust bundle.
func (c *CA) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(c.TrustDomain, []*x509.Certificate{c.Anchor.Cert})
}

// SVID issues an X.509-SVID for id valid for lifetime, signed directly by
// the issuer (no identity service involved).
func (c *CA) SVID(t testing.TB, id string, lifetime time.Duration) *x509svid.SVID {
	t.Helper()
	sid := spiffeid.RequireFromString(id)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	leaf, err := c.Issuer.Sign(&x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(lifetime),
		URIs:         []*url.URL{sid.URL()},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, key.Public())
	if err != nil {
		t.Fatal(err)
	}
	certs := append([]*x509.Certificate{leaf, c.Issuer.Cert}, c.Issuer.Chain...)
	return &x509svid.SVID{ID: sid, Certificates: certs, PrivateKey: key}
}

// Reviewer maps tokens to Kubernetes usernames; unknown tokens are invalid.
type Reviewer map[string]string

// Review implements identity.TokenReviewer.
func (r Reviewer) Review(_ context.Context, token string) (string, error) {
	u, ok := r[token]
	if !ok {
		return "", &idsvc.InvalidTokenError{Reason: "unknown token"}
	}
	return u, nil
}

// Options configure a Service.
type Options struct {
	// Users maps tokens to usernames (system:serviceaccount:<ns>:<sa>).
	Users Reviewer
	// Lifetime of issued certificates; 0 means the service default (24 h).
	Lifetime time.Duration
}

// Service is a running identity service.
type Service struct {
	// Addr is the gRPC address (127.0.0.1:port); it stays the same across
	// Stop and Start.
	Addr string
	t    testing.TB
	ca   *CA
	opts Options
	dir  string

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

// StartService runs the identity service with ca as its issuer until the
// test ends.
func StartService(t testing.TB, ca *CA, opts Options) *Service {
	t.Helper()
	s := &Service{t: t, ca: ca, opts: opts, dir: t.TempDir()}
	for name, data := range map[string][]byte{"tls.crt": ca.IssuerCertPEM, "tls.key": ca.IssuerKeyPEM, "ca-bundle.crt": ca.AnchorPEM} {
		if err := os.WriteFile(filepath.Join(s.dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = lis.Addr().String()
	s.serve(lis)
	t.Cleanup(s.Stop)
	return s
}

func (s *Service) serve(lis net.Listener) {
	s.t.Helper()
	srv, err := idsvc.New(idsvc.Config{
		Service: idsvc.ServiceConfig{
			TrustDomain: s.ca.TrustDomain.Name(),
			Reviewer:    s.opts.Users,
			Lifetime:    s.opts.Lifetime,
			ClockSkew:   time.Second,
			Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		},
		Source: &idsvc.FileSource{
			IssuerCert:   filepath.Join(s.dir, "tls.crt"),
			IssuerKey:    filepath.Join(s.dir, "tls.key"),
			TrustAnchors: filepath.Join(s.dir, "ca-bundle.crt"),
			Interval:     time.Hour,
		},
	})
	if err != nil {
		lis.Close()
		s.t.Fatal(err)
	}
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		lis.Close()
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, admin) }()
	s.mu.Lock()
	s.cancel, s.done = cancel, done
	s.mu.Unlock()
	// Wait until the issuer is loaded, so the first handshake succeeds.
	url := "http://" + admin.Addr().String() + "/ready"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("identity service not ready: %v", err)
		}
	}
}

// Stop stops the service (idempotent); connections are closed.
func (s *Service) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	if err := <-done; err != nil {
		s.t.Errorf("identity service: %v", err)
	}
}

// Start restarts a stopped service on the same address.
func (s *Service) Start() {
	s.t.Helper()
	var lis net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old listener may take a moment to close
		if lis, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.serve(lis)
}
