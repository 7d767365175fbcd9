// Package mtls is the wire between two weft proxies: a Dialer that opens
// mutually authenticated TLS 1.3 connections (ALPN weft.io/v1) to a meshed
// endpoint's proxy and writes a connection header, and a Terminator that
// accepts them on the inbound listener, verifies the client's SPIFFE
// identity and reads the header. Identities come from any go-spiffe
// x509svid.Source and x509bundle.Source (weft's proxy/identity.Manager, or a
// SPIRE Workload API source).
package mtls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/weftmesh/weft/proxy/dial"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

// Defaults.
const (
	DefaultInboundPort      = 4143
	DefaultConnectTimeout   = time.Second
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultSessionCacheSize = 1024
)

var nextProtos = []string{ALPN}

// Dialer opens connections to endpoints: mTLS to the peer proxy's inbound
// port when the endpoint has an identity, plain TCP otherwise. It implements
// the h2 package's Dialer interface. The zero value dials only plaintext;
// meshed endpoints need SVIDs and Bundle. A Dialer must not be copied after
// first use.
type Dialer struct {
	// SVIDs provides our certificate, presented as the client certificate.
	SVIDs x509svid.Source
	// Bundle holds the trust anchors the server's certificate must chain to.
	Bundle x509bundle.Source
	// InboundPort is the peer proxy's inbound listener port; 0 means 4143.
	InboundPort uint16
	// ConnectTimeout bounds the TCP connect; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake and header write; 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// KeepAlive is the TCP keep-alive period; 0 means 30s.
	KeepAlive time.Duration
	// SessionCacheSize is the number of TLS sessions kept for resumption (one
	// per peer proxy address); 0 means DefaultSessionCacheSize, negative
	// disables resumption.
	SessionCacheSize int

	once  sync.Once
	cache tls.ClientSessionCache
	certs certCache
	stats counters
	seen  verifyCache
}

func (d *Dialer) init() {
	d.once.Do(func() {
		d.certs.src = d.SVIDs
		switch {
		case d.SessionCacheSize == 0:
			d.cache = tls.NewLRUClientSessionCache(DefaultSessionCacheSize)
		case d.SessionCacheSize > 0:
			d.cache = tls.NewLRUClientSessionCache(d.SessionCacheSize)
		}
	})
}

// Stats returns a snapshot of the handshake counters.
func (d *Dialer) Stats() Stats { return d.stats.snapshot() }

// Dial connects to ep. With ep.Identity empty it returns a plain TCP
// connection to ep.Addr. Otherwise it connects to ep.Addr's IP on
// InboundPort, completes a TLS 1.3 handshake in which the server must present
// exactly ep.Identity, writes a connection header naming ep.Addr's port and
// ep.Protocol (set it to what the connection carries, see Carrying), and
// returns a *ClientConn. Errors are *proxyerr.Error: Timeout when connect or
// handshake timed out, Connect otherwise (including identity mismatches).
func (d *Dialer) Dial(ctx context.Context, ep target.Endpoint) (net.Conn, error) {
	d.init()
	if ep.Identity == "" {
		c, err := d.connect(ctx, ep.Addr)
		if err != nil {
			return nil, err
		}
		d.stats.plain.Add(1)
		return c, nil
	}
	want, err := spiffeid.FromString(ep.Identity)
	if err != nil {
		d.stats.fail(ReasonIdentity)
		return nil, proxyerr.New(proxyerr.Connect, fmt.Errorf("endpoint %s identity %q: %w", ep.Addr, ep.Identity, err))
	}
	port := d.InboundPort
	if port == 0 {
		port = DefaultInboundPort
	}
	raw, err := d.connect(ctx, netip.AddrPortFrom(ep.Addr.Addr(), port))
	if err != nil {
		if proxyerr.KindOf(err) == proxyerr.Timeout {
			d.stats.fail(ReasonTimeout)
		} else {
			d.stats.fail(ReasonConnect)
		}
		return nil, err
	}
	c, err := d.handshake(ctx, raw, want, ep)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}

func (d *Dialer) connect(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	to := d.ConnectTimeout
	if to <= 0 {
		to = DefaultConnectTimeout
	}
	ka := d.KeepAlive
	if ka <= 0 {
		ka = 30 * time.Second
	}
	nd := net.Dialer{Timeout: to, KeepAlive: ka}
	c, err := nd.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, dial.Classify(fmt.Errorf("connect %s: %w", addr, err))
	}
	return c, nil
}

func (d *Dialer) handshake(ctx context.Context, raw net.Conn, want spiffeid.ID, ep target.Endpoint) (*ClientConn, error) {
	to := d.HandshakeTimeout
	if to <= 0 {
		to = DefaultHandshakeTimeout
	}
	deadline := time.Now().Add(to)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	cc := &ClientConn{serverID: want}
	authorize := tlsconfig.AuthorizeID(want)
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         nextProtos,
		ClientSessionCache: d.cache,
		// The chain and the identity are verified in VerifyConnection, which
		// also runs on resumed handshakes; there is no hostname to check.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, id, err := d.certs.get()
			cc.clientID = id
			return cert, err
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := d.seen.verifyPeer(cs.PeerCertificates, d.Bundle, authorize, want.String())
			return err
		},
	}
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, d.handshakeError(ep, err)
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != ALPN {
		d.stats.fail(ReasonALPN)
		return nil, proxyerr.New(proxyerr.Connect, fmt.Errorf("mtls %s: server did not negotiate %s (not a weft proxy?)", raw.RemoteAddr(), ALPN))
	}
	if cc.clientID.IsZero() { // resumed: no certificate request
		if _, id, err := d.certs.get(); err == nil {
			cc.clientID = id
		}
	}
	var hdr [HeaderLen]byte
	_ = tc.SetWriteDeadline(deadline)
	if _, err := tc.Write(AppendHeader(hdr[:0], Header{Port: ep.Addr.Port(), Protocol: ep.Protocol})); err != nil {
		d.stats.fail(ReasonHeader)
		return nil, dial.Classify(fmt.Errorf("mtls %s: write connection header: %w", raw.RemoteAddr(), err))
	}
	_ = tc.SetWriteDeadline(time.Time{})
	d.stats.handshakes.Add(1)
	if cs.DidResume {
		d.stats.resumed.Add(1)
	}
	cc.Conn = tc
	return cc, nil
}

func (d *Dialer) handshakeError(ep target.Endpoint, err error) error {
	var pie *PeerIdentityError
	switch {
	case errors.As(err, &pie):
		d.stats.fail(ReasonIdentity)
	case errors.Is(err, ErrNoSVID):
		d.stats.fail(ReasonNoSVID)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		d.stats.fail(ReasonTimeout)
		return proxyerr.New(proxyerr.Timeout, fmt.Errorf("mtls handshake with %s (%s): %w", ep.Addr, ep.Identity, err))
	case errors.Is(err, context.Canceled):
		d.stats.fail(ReasonTLS)
		return proxyerr.New(proxyerr.Canceled, err)
	default:
		d.stats.fail(ReasonTLS)
	}
	return proxyerr.New(proxyerr.Connect, fmt.Errorf("mtls handshake with %s (%s): %w", ep.Addr, ep.Identity, err))
}

// Carrying returns a dialer that sets ep.Protocol to p before dialing, for a
// layer that knows what it carries (h2 → target.HTTP2, HTTP/1 → target.HTTP1,
// TCP forwarding → target.Opaque), so the peer skips detection.
func (d *Dialer) Carrying(p target.Protocol) *Carrier { return &Carrier{d: d, p: p} }

// Carrier is a Dialer fixed to one carried protocol.
type Carrier struct {
	d *Dialer
	p target.Protocol
}

// Dial implements the h2 package's Dialer.
func (c *Carrier) Dial(ctx context.Context, ep target.Endpoint) (net.Conn, error) {
	ep.Protocol = c.p
	return c.d.Dial(ctx, ep)
}

// ClientConn is an established outbound mTLS connection (header written).
// CloseWrite sends TLS close_notify: the peer reads EOF and may keep sending.
type ClientConn struct {
	*tls.Conn
	serverID, clientID spiffeid.ID
}

// ServerID is the verified identity of the peer proxy.
func (c *ClientConn) ServerID() spiffeid.ID { return c.serverID }

// ClientID is our own identity as presented in the handshake.
func (c *ClientConn) ClientID() spiffeid.ID { return c.clientID }
