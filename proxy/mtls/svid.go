package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// certCache converts the SVID source's current SVID to a tls.Certificate once
// per SVID (sources return the same *SVID until they renew).
type certCache struct {
	src  x509svid.Source
	last atomic.Pointer[certEntry]
}

type certEntry struct {
	svid *x509svid.SVID
	cert *tls.Certificate
}

func (c *certCache) get() (*tls.Certificate, spiffeid.ID, error) {
	if c.src == nil {
		return nil, spiffeid.ID{}, fmt.Errorf("%w: no SVID source configured", ErrNoSVID)
	}
	s, err := c.src.GetX509SVID()
	if err != nil {
		return nil, spiffeid.ID{}, fmt.Errorf("%w: %w", ErrNoSVID, err)
	}
	if e := c.last.Load(); e != nil && e.svid == s {
		return e.cert, s.ID, nil
	}
	cert := &tls.Certificate{PrivateKey: s.PrivateKey, Leaf: s.Certificates[0]}
	for _, x := range s.Certificates {
		cert.Certificate = append(cert.Certificate, x.Raw)
	}
	c.last.Store(&certEntry{svid: s, cert: cert})
	return cert, s.ID, nil
}

// verifyPeer verifies the peer's chain against the bundle and authorizes its
// SPIFFE ID. It runs from tls.Config.VerifyConnection, so on full and resumed
// handshakes alike (VerifyPeerCertificate is skipped on resumption).
func verifyPeer(certs []*x509.Certificate, bundle x509bundle.Source, authorize tlsconfig.Authorizer, expected string) (spiffeid.ID, error) {
	if len(certs) == 0 {
		return spiffeid.ID{}, &PeerIdentityError{Expected: expected, Err: fmt.Errorf("no certificate presented")}
	}
	if bundle == nil {
		return spiffeid.ID{}, &PeerIdentityError{Expected: expected, Err: fmt.Errorf("no trust bundle configured")}
	}
	id, chains, err := x509svid.Verify(certs, bundle)
	if err != nil {
		return id, &PeerIdentityError{Expected: expected, Got: idString(id), Unverified: true, Err: err}
	}
	if err := authorize(id, chains); err != nil {
		return id, &PeerIdentityError{Expected: expected, Got: id.String(), Err: err}
	}
	return id, nil
}

func idString(id spiffeid.ID) string {
	if id.IsZero() {
		return ""
	}
	return id.String()
}
