// Package pki generates and parses the certificate authorities weft uses: the
// trust anchor (a self-signed root), the identity issuer (an intermediate
// signed by the anchor) and serving certificates (e.g. the injector webhook's).
// Keys are ECDSA P-256. Validity starts ClockSkew in the past so that a peer
// whose clock runs slightly behind accepts a certificate issued a moment ago.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// ClockSkew is how far NotBefore is backdated (Linkerd allows 20 s).
const ClockSkew = 20 * time.Second

// Default lifetimes.
const (
	DefaultAnchorValidity  = 10 * 365 * 24 * time.Hour
	DefaultIssuerValidity  = 365 * 24 * time.Hour
	DefaultServingValidity = 365 * 24 * time.Hour
)

// CA is a certificate authority: its certificate, its key, and the chain of
// certificates above it up to (not including) the trust anchor.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain holds intermediates between Cert and the anchor; nil for a root
	// or an issuer signed directly by the root.
	Chain []*x509.Certificate
}

// NewTrustAnchor returns a self-signed root CA named cn. validity 0 means
// DefaultAnchorValidity.
func NewTrustAnchor(cn string, validity time.Duration) (*CA, error) {
	if validity == 0 {
		validity = DefaultAnchorValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate anchor key: %w", err)
	}
	tmpl, err := caTemplate(cn, validity, key.Public())
	if err != nil {
		return nil, err
	}
	tmpl.MaxPathLen = 1
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("sign anchor: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse anchor: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// NewIssuer returns an intermediate CA named cn signed by ca, which may only
// sign leaf certificates. Its NotAfter never exceeds ca's. validity 0 means
// DefaultIssuerValidity.
func (ca *CA) NewIssuer(cn string, validity time.Duration) (*CA, error) {
	if validity == 0 {
		validity = DefaultIssuerValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate issuer key: %w", err)
	}
	tmpl, err := caTemplate(cn, validity, key.Public())
	if err != nil {
		return nil, err
	}
	tmpl.MaxPathLenZero = true
	ca.capValidity(tmpl)
	cert, err := ca.sign(tmpl, key.Public())
	if err != nil {
		return nil, fmt.Errorf("sign issuer %q: %w", cn, err)
	}
	return &CA{Cert: cert, Key: key, Chain: ca.chainBelowAnchor()}, nil
}

// NewServingCert returns a TLS server certificate for dnsNames and ips,
// signed by ca, with its key. validity 0 means DefaultServingValidity.
func (ca *CA) NewServingCert(dnsNames []string, ips []net.IP, validity time.Duration) (*x509.Certificate, crypto.Signer, error) {
	if len(dnsNames) == 0 && len(ips) == 0 {
		return nil, nil, errors.New("serving certificate needs at least one DNS name or IP")
	}
	if validity == 0 {
		validity = DefaultServingValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate serving key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	cn := ""
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-ClockSkew),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
	}
	ca.capValidity(tmpl)
	cert, err := ca.sign(tmpl, key.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("sign serving certificate: %w", err)
	}
	return cert, key, nil
}

// Sign signs tmpl (a leaf the caller filled in) for pub, capping its NotAfter
// at ca's own expiry.
func (ca *CA) Sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	ca.capValidity(tmpl)
	return ca.sign(tmpl, pub)
}

func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// capValidity keeps tmpl inside ca's validity window.
func (ca *CA) capValidity(tmpl *x509.Certificate) {
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	if tmpl.NotBefore.Before(ca.Cert.NotBefore) {
		tmpl.NotBefore = ca.Cert.NotBefore
	}
}

// chainBelowAnchor is the chain a certificate signed by ca presents after its
// own: ca itself unless ca is a root, then ca's own chain.
func (ca *CA) chainBelowAnchor() []*x509.Certificate {
	if isSelfSigned(ca.Cert) {
		return nil
	}
	return append([]*x509.Certificate{ca.Cert}, ca.Chain...)
}

func isSelfSigned(c *x509.Certificate) bool {
	return c.CheckSignatureFrom(c) == nil
}

func caTemplate(cn string, validity time.Duration, pub crypto.PublicKey) (*x509.Certificate, error) {
	if cn == "" {
		return nil, errors.New("certificate authority needs a common name")
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          skid,
	}, nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	return serial, nil
}

func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}
