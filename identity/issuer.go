package identity

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/weftmesh/weft/internal/pki"
)

// Credentials are the issuer and the trust anchors it chains to, validated
// together. They are immutable once loaded.
type Credentials struct {
	Issuer  *pki.CA
	Anchors []*x509.Certificate
}

// ParseCredentials parses and validates an issuer (certificate chain and key
// PEM) and a trust bundle (one or more root certificates, PEM): the issuer must
// chain to one of the roots and be valid at now. Errors name both validity
// timestamps.
func ParseCredentials(issuerCertPEM, issuerKeyPEM, anchorsPEM []byte, now time.Time) (*Credentials, error) {
	issuer, err := pki.ParseCA(issuerCertPEM, issuerKeyPEM)
	if err != nil {
		return nil, err
	}
	anchors, err := pki.ParseCerts(anchorsPEM)
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	if err := issuer.Verify(anchors, now); err != nil {
		return nil, err
	}
	return &Credentials{Issuer: issuer, Anchors: anchors}, nil
}

// issuerHolder holds the current credentials; readers never block writers.
type issuerHolder struct {
	cur atomic.Pointer[Credentials]
}

func (h *issuerHolder) load() (*Credentials, error) {
	c := h.cur.Load()
	if c == nil {
		return nil, ErrNotReady
	}
	return c, nil
}

func (h *issuerHolder) store(c *Credentials) { h.cur.Store(c) }

// signLeaf signs an X.509-SVID for pub: the SPIFFE ID as its only URI SAN (plus
// DNS names, which only the service's own serving certificate carries), not
// a CA, digitalSignature, server and client auth, NotBefore backdated by skew,
// NotAfter at lifetime (capped at the issuer's expiry by pki).
func (c *Credentials) signLeaf(sans *x509.CertificateRequest, pub crypto.PublicKey, lifetime, skew time.Duration, now time.Time) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-skew),
		NotAfter:              now.Add(lifetime),
		URIs:                  sans.URIs,
		DNSNames:              sans.DNSNames,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	cert, err := c.Issuer.Sign(tmpl, pub)
	if err != nil {
		return nil, fmt.Errorf("sign leaf: %w", err)
	}
	return cert, nil
}

// chainDER is the intermediates a leaf presents: the issuer and its chain.
func (c *Credentials) chainDER() [][]byte {
	out := [][]byte{c.Issuer.Cert.Raw}
	for _, ic := range c.Issuer.Chain {
		out = append(out, ic.Raw)
	}
	return out
}
