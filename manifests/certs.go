package manifests

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/weftmesh/weft/internal/pki"
)

// Certs is the key material of an install. Render puts the anchors into the
// weft-identity-trust-roots ConfigMap (and, through Values, into every proxy),
// the issuer into the weft-identity-issuer Secret and the webhook certificate
// into the weft-injector-tls Secret and the webhook's caBundle.
type Certs struct {
	// TrustAnchorsPEM is the bundle of one or more roots proxies trust.
	TrustAnchorsPEM []byte
	// IssuerCertPEM is the issuer certificate followed by any intermediates
	// up to (not including) the anchor; IssuerKeyPEM its private key.
	IssuerCertPEM, IssuerKeyPEM []byte
	// WebhookCAPEM signs WebhookCertPEM, the injector's serving certificate
	// (key WebhookKeyPEM); the apiserver trusts it through caBundle.
	WebhookCAPEM, WebhookCertPEM, WebhookKeyPEM []byte
}

// Generator makes the certificates an install needs; tests substitute a
// fixed set so golden output is stable.
type Generator interface {
	// Identity returns a new trust anchor bundle and an issuer it signed.
	Identity(trustDomain string) (anchorsPEM, issuerCertPEM, issuerKeyPEM []byte, err error)
	// Webhook returns a CA and a serving certificate for dnsNames.
	Webhook(dnsNames []string) (caPEM, certPEM, keyPEM []byte, err error)
}

// PKIGenerator generates fresh ECDSA P-256 keys with internal/pki. Zero
// validities mean pki's defaults (anchor 10 years, issuer and webhook 1 year).
type PKIGenerator struct {
	AnchorValidity, IssuerValidity, WebhookValidity time.Duration
}

// Identity implements Generator.
func (g PKIGenerator) Identity(trustDomain string) ([]byte, []byte, []byte, error) {
	anchor, err := pki.NewTrustAnchor("root.identity."+trustDomain, g.AnchorValidity)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate trust anchor: %w", err)
	}
	issuer, err := anchor.NewIssuer("identity."+trustDomain, g.IssuerValidity)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate issuer: %w", err)
	}
	key, err := pki.EncodeKey(issuer.Key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pki.EncodeCerts(anchor.Cert), pki.EncodeCerts(append([]*x509.Certificate{issuer.Cert}, issuer.Chain...)...), key, nil
}

// Webhook implements Generator.
func (g PKIGenerator) Webhook(dnsNames []string) ([]byte, []byte, []byte, error) {
	ca, err := pki.NewTrustAnchor("webhook.weft.io", g.WebhookValidity)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate webhook CA: %w", err)
	}
	cert, key, err := ca.NewServingCert(dnsNames, []net.IP(nil), g.WebhookValidity)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate webhook certificate: %w", err)
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pki.EncodeCerts(ca.Cert), pki.EncodeCerts(cert), keyPEM, nil
}

// VerifyIdentity checks the identity part of c the way the identity service
// will at startup: the anchors parse, the issuer certificate and key match,
// and the issuer chains to an anchor and is valid at now.
func (c *Certs) VerifyIdentity(now time.Time) error {
	anchors, err := pki.ParseCerts(c.TrustAnchorsPEM)
	if err != nil {
		return fmt.Errorf("trust anchors: %w", err)
	}
	for _, a := range anchors {
		if !a.IsCA {
			return fmt.Errorf("trust anchor %q is not a CA certificate", a.Subject.CommonName)
		}
	}
	issuer, err := pki.ParseCA(c.IssuerCertPEM, c.IssuerKeyPEM)
	if err != nil {
		return err
	}
	return issuer.Verify(anchors, now)
}

// NewCerts completes c for v: it generates the identity anchor and issuer
// with gen unless c already holds all three (the user's files), and always
// generates the webhook certificate. Given identity material is verified.
func NewCerts(c Certs, v *Values, gen Generator, now time.Time) (*Certs, error) {
	given := 0
	for _, b := range [][]byte{c.TrustAnchorsPEM, c.IssuerCertPEM, c.IssuerKeyPEM} {
		if len(b) > 0 {
			given++
		}
	}
	var err error
	switch given {
	case 0:
		if c.TrustAnchorsPEM, c.IssuerCertPEM, c.IssuerKeyPEM, err = gen.Identity(v.TrustDomain); err != nil {
			return nil, err
		}
	case 3:
		if err := c.VerifyIdentity(now); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("the trust anchors, issuer certificate and issuer key go together: give all three files or none")
	}
	if c.WebhookCAPEM, c.WebhookCertPEM, c.WebhookKeyPEM, err = gen.Webhook(webhookDNSNames(v)); err != nil {
		return nil, err
	}
	return &c, nil
}

func webhookDNSNames(v *Values) []string {
	svc := InjectorName + "." + v.ControlPlaneNamespace + ".svc"
	return []string{svc, svc + "." + v.ClusterDomain}
}
