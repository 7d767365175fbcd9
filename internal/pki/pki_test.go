package pki

import (
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"
)

func TestAnchorIssuerServingChain(t *testing.T) {
	t.Parallel()
	anchor, err := NewTrustAnchor("root.weft.io", 0)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := anchor.NewIssuer("identity.weft.io", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !issuer.Cert.IsCA || !issuer.Cert.MaxPathLenZero {
		t.Fatalf("issuer must be a CA limited to leaves: IsCA=%v MaxPathLenZero=%v", issuer.Cert.IsCA, issuer.Cert.MaxPathLenZero)
	}
	if err := issuer.Verify([]*x509.Certificate{anchor.Cert}, time.Now()); err != nil {
		t.Fatalf("issuer should verify: %v", err)
	}
	cert, _, err := issuer.NewServingCert([]string{"injector.weft.svc"}, []net.IP{net.ParseIP("198.18.0.5")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(anchor.Cert)
	inter := x509.NewCertPool()
	inter.AddCert(issuer.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "injector.weft.svc"}); err != nil {
		t.Fatalf("serving cert should verify: %v", err)
	}
	if !cert.NotBefore.Before(time.Now().Add(-ClockSkew / 2)) {
		t.Errorf("NotBefore %v is not backdated", cert.NotBefore)
	}
}

func TestIssuerValidityCappedAtAnchor(t *testing.T) {
	t.Parallel()
	anchor, err := NewTrustAnchor("root", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := anchor.NewIssuer("issuer", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if issuer.Cert.NotAfter.After(anchor.Cert.NotAfter) {
		t.Fatalf("issuer NotAfter %v after anchor's %v", issuer.Cert.NotAfter, anchor.Cert.NotAfter)
	}
}

func TestPEMRoundTripAndParseCA(t *testing.T) {
	t.Parallel()
	anchor, _ := NewTrustAnchor("root", 0)
	issuer, _ := anchor.NewIssuer("issuer", 0)
	keyPEM, err := EncodeKey(issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseCA(EncodeCerts(issuer.Cert), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.Cert.Equal(issuer.Cert) {
		t.Fatal("certificate changed in round trip")
	}
	otherKey, _ := EncodeKey(anchor.Key)
	if _, err := ParseCA(EncodeCerts(issuer.Cert), otherKey); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key: got %v", err)
	}
}

func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	anchor, _ := NewTrustAnchor("root", 0)
	other, _ := NewTrustAnchor("other", 0)
	issuer, _ := anchor.NewIssuer("issuer", time.Hour)
	tests := []struct {
		name    string
		anchors []*x509.Certificate
		now     time.Time
		want    string
	}{
		{"wrong anchor", []*x509.Certificate{other.Cert}, time.Now(), "does not chain"},
		{"expired", []*x509.Certificate{anchor.Cert}, time.Now().Add(2 * time.Hour), "valid from"},
		{"two roots, one right", []*x509.Certificate{other.Cert, anchor.Cert}, time.Now(), ""},
	}
	for _, tt := range tests {
		err := issuer.Verify(tt.anchors, tt.now)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func() error
	}{
		{"no certs", func() error { _, err := ParseCerts([]byte("junk")); return err }},
		{"key block as cert", func() error {
			_, err := ParseCerts([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
			return err
		}},
		{"no key", func() error { _, err := ParseKey(nil); return err }},
		{"empty CN", func() error { _, err := NewTrustAnchor("", 0); return err }},
	}
	for _, tt := range tests {
		if tt.fn() == nil {
			t.Errorf("%s: expected an error", tt.name)
		}
	}
}
