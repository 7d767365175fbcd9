package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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

// verifyCache remembers leaf certificates whose chain verified against a
// bundle, so repeated handshakes with the same peer (resumed or not) skip
// the chain verification — two ECDSA verifications per handshake and side.
// An entry is used only while the source returns the same *Bundle (sources
// replace bundles on reload; proxy/identity.Manager does), the chain is
// valid, and for at most verifyCacheTTL.
type verifyCache struct {
	mu sync.Mutex
	m  map[string]verified // by leaf DER
}

type verified struct {
	bundle  *x509bundle.Bundle
	id      spiffeid.ID
	expires time.Time
}

const (
	verifyCacheSize = 1024
	verifyCacheTTL  = 5 * time.Minute
)

func (c *verifyCache) lookup(leaf *x509.Certificate, b *x509bundle.Bundle, now time.Time) (spiffeid.ID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[string(leaf.Raw)]
	if !ok || v.bundle != b || !now.Before(v.expires) {
		return spiffeid.ID{}, false
	}
	return v.id, true
}

func (c *verifyCache) store(leaf *x509.Certificate, b *x509bundle.Bundle, id spiffeid.ID, chains [][]*x509.Certificate, now time.Time) {
	expires := now.Add(verifyCacheTTL)
	for _, ch := range chains[:1] {
		for _, x := range ch {
			if x.NotAfter.Before(expires) {
				expires = x.NotAfter
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= verifyCacheSize {
		c.m = make(map[string]verified)
	}
	c.m[string(leaf.Raw)] = verified{bundle: b, id: id, expires: expires}
}

// verifyPeer verifies the peer's chain against the bundle and authorizes its
// SPIFFE ID. It runs from tls.Config.VerifyConnection, so on full and resumed
// handshakes alike (VerifyPeerCertificate is skipped on resumption).
func (c *verifyCache) verifyPeer(certs []*x509.Certificate, bundle x509bundle.Source, authorize tlsconfig.Authorizer, expected string) (spiffeid.ID, error) {
	if len(certs) == 0 {
		return spiffeid.ID{}, &PeerIdentityError{Expected: expected, Err: fmt.Errorf("no certificate presented")}
	}
	if bundle == nil {
		return spiffeid.ID{}, &PeerIdentityError{Expected: expected, Err: fmt.Errorf("no trust bundle configured")}
	}
	now := time.Now()
	var b *x509bundle.Bundle
	if id, err := x509svid.IDFromCert(certs[0]); err == nil {
		if b, err = bundle.GetX509BundleForTrustDomain(id.TrustDomain()); err == nil {
			if id, ok := c.lookup(certs[0], b, now); ok {
				if err := authorize(id, nil); err != nil {
					return id, &PeerIdentityError{Expected: expected, Got: id.String(), Err: err}
				}
				return id, nil
			}
		}
	}
	id, chains, err := x509svid.Verify(certs, bundle, x509svid.WithTime(now))
	if err != nil {
		return id, &PeerIdentityError{Expected: expected, Got: idString(id), Unverified: true, Err: err}
	}
	if err := authorize(id, chains); err != nil {
		return id, &PeerIdentityError{Expected: expected, Got: id.String(), Err: err}
	}
	if b != nil && len(chains) > 0 {
		c.store(certs[0], b, id, chains, now)
	}
	return id, nil
}

func idString(id spiffeid.ID) string {
	if id.IsZero() {
		return ""
	}
	return id.String()
}
