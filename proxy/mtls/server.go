package mtls

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/weftmesh/weft/proxy/record"
)

// Terminator accepts weft mTLS connections on the inbound listener. It
// presents our SVID, requires a client SVID that chains to Bundle and names a
// member of the trust domain, and reads the connection header. One
// Terminator serves all connections (its TLS config holds the session ticket
// keys that make resumption work); it must not be copied after first use.
type Terminator struct {
	// SVIDs provides our certificate, presented to clients. Required.
	SVIDs x509svid.Source
	// Bundle holds the trust anchors client certificates must chain to.
	// Required.
	Bundle x509bundle.Source
	// TrustDomain clients must belong to; the zero value means our own
	// SVID's trust domain.
	TrustDomain spiffeid.TrustDomain
	// HandshakeTimeout bounds the handshake and the header read; 0 means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	once  sync.Once
	cfg   *tls.Config
	certs certCache
	stats counters
	seen  verifyCache
}

func (t *Terminator) init() {
	t.once.Do(func() {
		t.certs.src = t.SVIDs
		t.cfg = &tls.Config{
			MinVersion: tls.VersionTLS13,
			NextProtos: nextProtos,
			ClientAuth: tls.RequireAnyClientCert, // verified in VerifyConnection
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				cert, _, err := t.certs.get()
				return cert, err
			},
			VerifyConnection: func(cs tls.ConnectionState) error {
				td := t.TrustDomain
				if td.IsZero() {
					_, own, err := t.certs.get()
					if err != nil {
						return err
					}
					td = own.TrustDomain()
				}
				_, err := t.seen.verifyPeer(cs.PeerCertificates, t.Bundle, tlsconfig.AuthorizeMemberOf(td), "a member of "+td.IDString())
				return err
			},
		}
	})
}

// Stats returns a snapshot of the handshake counters.
func (t *Terminator) Stats() Stats { return t.stats.snapshot() }

// Terminate completes the server side of a weft mTLS connection on c (the
// conn Sniff returned, replaying the ClientHello), then reads the connection
// header. ctx and HandshakeTimeout bound both. On error c is not closed.
func (t *Terminator) Terminate(ctx context.Context, c net.Conn) (*ServerConn, error) {
	t.init()
	to := t.HandshakeTimeout
	if to <= 0 {
		to = DefaultHandshakeTimeout
	}
	deadline := time.Now().Add(to)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	tc := tls.Server(c, t.cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, t.fail(c, err)
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != ALPN {
		t.stats.fail(ReasonALPN)
		return nil, fmt.Errorf("mtls from %s: client did not negotiate %s", c.RemoteAddr(), ALPN)
	}
	sc := &ServerConn{Conn: tc}
	// Verified in VerifyConnection; this only reads the URI SAN back.
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	if err != nil {
		t.stats.fail(ReasonIdentity)
		return nil, fmt.Errorf("mtls from %s: %w", c.RemoteAddr(), err)
	}
	sc.clientID = id
	if _, sid, err := t.certs.get(); err == nil {
		sc.serverID = sid
	}
	_ = tc.SetReadDeadline(deadline)
	h, err := ReadHeader(tc, &sc.hdrBuf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.stats.fail(ReasonTimeout)
		} else {
			t.stats.fail(ReasonHeader)
		}
		return nil, fmt.Errorf("mtls from %s (%s): %w", c.RemoteAddr(), id, err)
	}
	_ = tc.SetReadDeadline(time.Time{})
	sc.Header = h
	t.stats.handshakes.Add(1)
	if cs.DidResume {
		t.stats.resumed.Add(1)
	}
	return sc, nil
}

func (t *Terminator) fail(c net.Conn, err error) error {
	var pie *PeerIdentityError
	switch {
	case errors.As(err, &pie):
		t.stats.fail(ReasonIdentity)
	case errors.Is(err, ErrNoSVID):
		t.stats.fail(ReasonNoSVID)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		t.stats.fail(ReasonTimeout)
	default:
		t.stats.fail(ReasonTLS)
	}
	return fmt.Errorf("mtls handshake from %s: %w", c.RemoteAddr(), err)
}

// ServerConn is an accepted inbound mTLS connection whose header has been
// read. Reads return what the client sends after the header. CloseWrite
// sends TLS close_notify.
type ServerConn struct {
	*tls.Conn
	// Header is the client's connection header: the local port to forward to
	// and the protocol carried.
	Header             Header
	clientID, serverID spiffeid.ID
	hdrBuf             [MaxHeaderLen]byte
}

// ClientID is the verified identity of the client proxy.
func (c *ServerConn) ClientID() spiffeid.ID { return c.clientID }

// ServerID is our own identity as presented in the handshake.
func (c *ServerConn) ServerID() spiffeid.ID { return c.serverID }

// FillPeer sets p.TLS, p.ClientID and p.ServerID from c when c is a
// *ClientConn or *ServerConn, and clears them otherwise. It does not
// allocate.
func FillPeer(c net.Conn, p *record.Peer) {
	var cid, sid spiffeid.ID
	switch c := c.(type) {
	case *ClientConn:
		cid, sid = c.clientID, c.serverID
	case *ServerConn:
		cid, sid = c.clientID, c.serverID
	default:
		p.TLS, p.ClientID, p.ServerID = false, "", ""
		return
	}
	p.TLS = true
	p.ClientID, p.ServerID = idString(cid), idString(sid)
}
