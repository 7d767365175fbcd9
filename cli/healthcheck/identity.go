package healthcheck

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/identity"
	"github.com/weftmesh/weft/internal/ctlserver"
	"github.com/weftmesh/weft/internal/pki"
	"github.com/weftmesh/weft/manifests"
)

// Identity checks: the trust anchors, the issuer, and the issuer the
// identity service has loaded.
var catIdentity = Category{Name: "identity", Order: 70}

// Expiry warning windows.
const (
	AnchorWarn = 60 * 24 * time.Hour
	IssuerWarn = 7 * 24 * time.Hour
)

// issuerMetric is the NotAfter of the issuer identity has loaded.
const issuerMetric = "weft_identity_issuer_expiry_timestamp_seconds"

func init() {
	Register(
		Check{ID: "identity-anchors", Category: catIdentity, Modes: ControlPlane,
			Description: "trust anchors are valid CAs, not near expiry", Run: identityAnchors},
		Check{ID: "identity-issuer", Category: catIdentity, Modes: ControlPlane,
			Description: "issuer chains to the anchors, is valid, not near expiry", Run: identityIssuer},
		Check{ID: "identity-issuer-loaded", Category: catIdentity, Modes: ControlPlane,
			Description: "identity serves the issuer in the Secret", Run: identityIssuerLoaded},
	)
}

const rotateHint = "rotate them: see docs/identity.md, \"Rotating the issuer and trust anchors\""

func anchors(ctx context.Context, e *Env) ([]*x509.Certificate, error) {
	b, err := e.TrustAnchorsPEM(ctx)
	if err != nil {
		return nil, err
	}
	certs, err := pki.ParseCerts(b)
	if err != nil {
		return nil, fmt.Errorf("trust anchors in ConfigMap %s/%s: %w", e.ControlPlaneNS, manifests.TrustRootsName, err)
	}
	return certs, nil
}

func validity(c *x509.Certificate) string {
	return fmt.Sprintf("valid from %s until %s", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
}

func identityAnchors(ctx context.Context, e *Env) Finding {
	certs, err := anchors(ctx, e)
	if err != nil {
		return fail(err.Error(), installHint(e))
	}
	now := e.Now()
	var bad, near []string
	for _, c := range certs {
		name := fmt.Sprintf("anchor %q", c.Subject.CommonName)
		switch {
		case !c.IsCA:
			bad = append(bad, name+" is not a CA")
		case now.Before(c.NotBefore) || now.After(c.NotAfter):
			bad = append(bad, fmt.Sprintf("%s is %s, not now (%s)", name, validity(c), now.UTC().Format(time.RFC3339)))
		case c.NotAfter.Sub(now) < AnchorWarn:
			near = append(near, fmt.Sprintf("%s expires at %s (within 60 days)", name, c.NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	switch {
	case len(bad) > 0:
		return fail(strings.Join(bad, "\n"), rotateHint)
	case len(near) > 0:
		return warn(strings.Join(near, "\n"), rotateHint)
	}
	return ok("")
}

// secretData reads a key of a Secret (data, or stringData before the API
// server folded it).
func secretData(s *corev1.Secret, key string) []byte {
	if b, ok := s.Data[key]; ok {
		return b
	}
	return []byte(s.StringData[key])
}

func issuer(ctx context.Context, e *Env) (*pki.CA, error) {
	s, err := e.Secret(ctx, manifests.IssuerSecretName)
	if err != nil {
		return nil, err
	}
	ca, err := pki.ParseCA(secretData(s, corev1.TLSCertKey), secretData(s, corev1.TLSPrivateKeyKey))
	if err != nil {
		return nil, fmt.Errorf("Secret %s/%s: %w", e.ControlPlaneNS, manifests.IssuerSecretName, err)
	}
	return ca, nil
}

func identityIssuer(ctx context.Context, e *Env) Finding {
	ca, err := issuer(ctx, e)
	if err != nil {
		return fail(err.Error(), rotateHint)
	}
	as, err := anchors(ctx, e)
	if err != nil {
		return fail(err.Error(), installHint(e))
	}
	now := e.Now()
	if err := ca.Verify(as, now); err != nil {
		return fail(err.Error(), "issue a new issuer from the trust anchors and replace Secret "+e.ControlPlaneNS+"/"+manifests.IssuerSecretName+"; "+rotateHint)
	}
	if ca.Cert.NotAfter.Sub(now) < IssuerWarn {
		return warn(fmt.Sprintf("issuer %q expires at %s (within 7 days)", ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format(time.RFC3339)), rotateHint)
	}
	return ok("")
}

func identityIssuerLoaded(ctx context.Context, e *Env) Finding {
	ca, err := issuer(ctx, e)
	if err != nil {
		return fail(err.Error(), rotateHint)
	}
	problems, err := eachSelfTest(ctx, e, "identity", identityAdminPort, identity.SelfTestIssuer, func(_ *corev1.Pod, r ctlserver.Result) string {
		if !r.OK {
			return "has no issuer loaded: " + r.Error
		}
		certs, err := pki.ParseCerts([]byte(r.Detail))
		if err != nil {
			return "reports an unreadable issuer: " + err.Error()
		}
		if !certs[0].Equal(ca.Cert) {
			return fmt.Sprintf("serves the issuer %q %s; Secret %s/%s holds %q %s",
				certs[0].Subject.CommonName, validity(certs[0]), e.ControlPlaneNS, manifests.IssuerSecretName, ca.Cert.Subject.CommonName, validity(ca.Cert))
		}
		return ""
	})
	if err != nil {
		return fail(err.Error(), podsHint(e, "identity"))
	}
	if len(problems) > 0 {
		return fail(list(problems), "identity reloads the Secret when it changes; if it does not: `kubectl -n "+e.ControlPlaneNS+" rollout restart deployment "+manifests.IdentityName+"`")
	}
	return ok("")
}
