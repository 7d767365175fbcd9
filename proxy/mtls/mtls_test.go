package mtls_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/weftmesh/weft/proxy/detect"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

const (
	webID   = "spiffe://cluster.local/ns/demo/sa/web"
	booksID = "spiffe://cluster.local/ns/demo/sa/books"
)

// accepted is what the peer proxy made of one inbound connection.
type accepted struct {
	sc     *mtls.ServerConn
	replay net.Conn // set when the hello was not weft's
	err    error
}

// peer is a server proxy's inbound listener on loopback: detect, sniff,
// terminate.
type peer struct {
	lis   net.Listener
	term  *mtls.Terminator
	conns chan accepted
}

func startPeer(t testing.TB, svids x509svid.Source, bundle x509bundle.Source) *peer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{lis: lis, term: &mtls.Terminator{SVIDs: svids, Bundle: bundle, HandshakeTimeout: 5 * time.Second}, conns: make(chan accepted, 16)}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
	return p
}

func (p *peer) handle(c net.Conn) {
	buf := make([]byte, detect.BufferSize)
	res, err := detect.Detect(c, time.Second, buf)
	if err != nil {
		c.Close()
		p.conns <- accepted{err: err}
		return
	}
	dc := detect.NewConn(c, res.Peeked, nil)
	if res.Protocol != detect.TLS {
		p.conns <- accepted{replay: dc}
		return
	}
	rc, weft, err := mtls.Sniff(dc, time.Second)
	if err != nil {
		c.Close()
		p.conns <- accepted{err: err}
		return
	}
	if !weft {
		p.conns <- accepted{replay: rc}
		return
	}
	sc, err := p.term.Terminate(context.Background(), rc)
	if err != nil {
		c.Close()
		p.conns <- accepted{err: err}
		return
	}
	p.conns <- accepted{sc: sc}
}

func (p *peer) port() uint16 { return uint16(p.lis.Addr().(*net.TCPAddr).Port) }

func (p *peer) next(t testing.TB) accepted {
	t.Helper()
	select {
	case a := <-p.conns:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("peer accepted nothing")
		return accepted{}
	}
}

func endpoint(port uint16, id string, proto target.Protocol) target.Endpoint {
	return target.Endpoint{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), Identity: id, Protocol: proto}
}

func TestHandshakeAndHeader(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	p := startPeer(t, ca.SVID(t, booksID, time.Hour), ca.Bundle())
	d := &mtls.Dialer{SVIDs: ca.SVID(t, webID, time.Hour), Bundle: ca.Bundle(), InboundPort: p.port()}

	c, err := d.Dial(context.Background(), endpoint(8080, booksID, target.HTTP2))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cc := c.(*mtls.ClientConn)
	if cc.ServerID().String() != booksID || cc.ClientID().String() != webID {
		t.Fatalf("client conn ids %s %s", cc.ServerID(), cc.ClientID())
	}
	if cs := cc.ConnectionState(); cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != mtls.ALPN {
		t.Fatalf("version %x alpn %q", cs.Version, cs.NegotiatedProtocol)
	}
	a := p.next(t)
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.sc.Close()
	if a.sc.Header != (mtls.Header{Port: 8080, Protocol: target.HTTP2}) {
		t.Fatalf("header %+v", a.sc.Header)
	}
	if a.sc.ClientID().String() != webID || a.sc.ServerID().String() != booksID {
		t.Fatalf("server conn ids %s %s", a.sc.ClientID(), a.sc.ServerID())
	}
	var rp record.Peer
	mtls.FillPeer(a.sc, &rp)
	if !rp.TLS || rp.ClientID != webID || rp.ServerID != booksID {
		t.Fatalf("inbound peer %+v", rp)
	}
	mtls.FillPeer(c, &rp)
	if !rp.TLS || rp.ServerID != booksID {
		t.Fatalf("outbound peer %+v", rp)
	}
	if s := d.Stats(); s.Handshakes != 1 || s.Failures[mtls.ReasonIdentity] != 0 {
		t.Fatalf("dialer stats %+v", s)
	}
	if s := p.term.Stats(); s.Handshakes != 1 {
		t.Fatalf("terminator stats %+v", s)
	}
}

func TestCarryingSetsProtocol(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	p := startPeer(t, ca.SVID(t, booksID, time.Hour), ca.Bundle())
	d := &mtls.Dialer{SVIDs: ca.SVID(t, webID, time.Hour), Bundle: ca.Bundle(), InboundPort: p.port()}
	for _, proto := range []target.Protocol{target.HTTP1, target.HTTP2, target.Opaque} {
		c, err := d.Carrying(proto).Dial(context.Background(), endpoint(9000, booksID, target.Unknown))
		if err != nil {
			t.Fatal(err)
		}
		a := p.next(t)
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.sc.Header.Protocol != proto {
			t.Fatalf("protocol %v, want %v", a.sc.Header.Protocol, proto)
		}
		c.Close()
		a.sc.Close()
	}
}

func TestClientRefusesWrongServerIdentity(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	other := identitytest.NewCA(t, "")
	for _, tc := range []struct {
		name   string
		server *x509svid.SVID
	}{
		{"another identity", ca.SVID(t, "spiffe://cluster.local/ns/demo/sa/impostor", time.Hour)},
		{"untrusted root", other.SVID(t, booksID, time.Hour)},
		{"another trust domain", identitytest.NewCA(t, "evil.example").SVID(t, "spiffe://evil.example/ns/demo/sa/books", time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPeer(t, tc.server, x509bundle.NewSet(ca.Bundle(), other.Bundle()))
			d := &mtls.Dialer{SVIDs: ca.SVID(t, webID, time.Hour), Bundle: ca.Bundle(), InboundPort: p.port()}
			_, err := d.Dial(context.Background(), endpoint(8080, booksID, target.HTTP1))
			var pie *mtls.PeerIdentityError
			if !errors.As(err, &pie) || proxyerr.KindOf(err) != proxyerr.Connect {
				t.Fatalf("dial: %v, want a Connect PeerIdentityError", err)
			}
			t.Log(err)
			if s := d.Stats(); s.Failures[mtls.ReasonIdentity] != 1 || s.Handshakes != 0 {
				t.Fatalf("stats %+v", s)
			}
			if a := p.next(t); a.err == nil {
				t.Fatal("server accepted an aborted handshake")
			}
		})
	}
}

func TestServerRefusesUntrustedClient(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	for _, tc := range []struct {
		name   string
		client *x509svid.SVID
		bundle x509bundle.Source
	}{
		{"untrusted root", identitytest.NewCA(t, "").SVID(t, webID, time.Hour), ca.Bundle()},
		{"another trust domain", identitytest.NewCA(t, "evil.example").SVID(t, "spiffe://evil.example/ns/demo/sa/web", time.Hour), ca.Bundle()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPeer(t, ca.SVID(t, booksID, time.Hour), ca.Bundle())
			d := &mtls.Dialer{SVIDs: tc.client, Bundle: ca.Bundle(), InboundPort: p.port()}
			c, err := d.Dial(context.Background(), endpoint(8080, booksID, target.HTTP1))
			a := p.next(t)
			var pie *mtls.PeerIdentityError
			if !errors.As(a.err, &pie) {
				t.Fatalf("server: %v, want PeerIdentityError", a.err)
			}
			t.Log(a.err)
			if s := p.term.Stats(); s.Failures[mtls.ReasonIdentity] != 1 || s.Handshakes != 0 {
				t.Fatalf("terminator stats %+v", s)
			}
			// In TLS 1.3 the client finishes first; it learns of the refusal
			// on its first read at the latest.
			if err == nil {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, rerr := c.Read(make([]byte, 1)); rerr == nil || !strings.Contains(rerr.Error(), "certificate") {
					t.Fatalf("client read after refusal: %v", rerr)
				}
				c.Close()
			}
		})
	}
}

func TestBytesBothWaysWithHalfClose(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	p := startPeer(t, ca.SVID(t, booksID, time.Hour), ca.Bundle())
	d := &mtls.Dialer{SVIDs: ca.SVID(t, webID, time.Hour), Bundle: ca.Bundle(), InboundPort: p.port()}
	c, err := d.Dial(context.Background(), endpoint(5432, booksID, target.Opaque))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := p.next(t)
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.sc.Close()
	up := bytes.Repeat([]byte("upstream-"), 100_000)
	down := bytes.Repeat([]byte("downstream-"), 50_000)
	srvGot := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(a.sc) // until the client's close_notify
		srvGot <- b
		a.sc.Write(down) // the server can still send after the client half-closed
		a.sc.CloseWrite()
	}()
	if _, err := c.Write(up); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got := <-srvGot; !bytes.Equal(got, up) {
		t.Fatalf("server got %d bytes, want %d", len(got), len(up))
	}
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, down) {
		t.Fatalf("client got %d bytes (%v), want %d", len(got), err, len(down))
	}
}

func TestSessionResumption(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	p := startPeer(t, ca.SVID(t, booksID, time.Hour), ca.Bundle())
	d := &mtls.Dialer{SVIDs: ca.SVID(t, webID, time.Hour), Bundle: ca.Bundle(), InboundPort: p.port()}
	exchange := func(id string) (*mtls.ClientConn, *mtls.ServerConn, error) {
		c, err := d.Dial(context.Background(), endpoint(8080, id, target.HTTP1))
		if err != nil {
			return nil, nil, err
		}
		a := p.next(t)
		if a.err != nil {
			t.Fatal(a.err)
		}
		// A read lets the client process the server's session ticket.
		a.sc.Write([]byte("x"))
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		return c.(*mtls.ClientConn), a.sc, nil
	}
	c1, s1, err := exchange(booksID)
	if err != nil {
		t.Fatal(err)
	}
	c1.Close()
	s1.Close()
	if c1.ConnectionState().DidResume {
		t.Fatal("first handshake resumed")
	}
	c2, s2, err := exchange(booksID)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	defer s2.Close()
	if !c2.ConnectionState().DidResume || !s2.ConnectionState().DidResume {
		t.Fatal("second handshake did not resume")
	}
	if s2.ClientID().String() != webID {
		t.Fatalf("resumed client id %s", s2.ClientID())
	}
	if ds, ts := d.Stats(), p.term.Stats(); ds.Resumed != 1 || ts.Resumed != 1 || ds.Handshakes != 2 {
		t.Fatalf("stats %+v %+v", ds, ts)
	}
	// A cached session never bypasses the identity check.
	if _, _, err := exchange("spiffe://cluster.local/ns/demo/sa/other"); err == nil {
		t.Fatal("resumed session accepted for another identity")
	}
}

func TestPlaintextForUnmeshedEndpoints(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		b, _ := io.ReadAll(c)
		got <- b
		c.Close()
	}()
	d := &mtls.Dialer{}
	c, err := d.Dial(context.Background(), endpoint(uint16(lis.Addr().(*net.TCPAddr).Port), "", target.HTTP1))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*net.TCPConn); !ok {
		t.Fatalf("plaintext conn is %T, want *net.TCPConn (splice)", c)
	}
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	c.Close()
	if b := <-got; string(b) != "GET / HTTP/1.1\r\n\r\n" {
		t.Fatalf("got %q", b)
	}
	var rp record.Peer
	mtls.FillPeer(c, &rp)
	if rp.TLS {
		t.Fatal("plaintext reported as TLS")
	}
	if s := d.Stats(); s.Plain != 1 || s.Handshakes != 0 {
		t.Fatalf("stats %+v", s)
	}
	// Refused connect: a Connect error.
	lis2, _ := net.Listen("tcp", "127.0.0.1:0")
	port := uint16(lis2.Addr().(*net.TCPAddr).Port)
	lis2.Close()
	if _, err := d.Dial(context.Background(), endpoint(port, "", target.HTTP1)); proxyerr.KindOf(err) != proxyerr.Connect {
		t.Fatalf("refused: %v", err)
	}
}

func TestDialFailures(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	p := startPeer(t, ca.SVID(t, booksID, time.Hour), ca.Bundle())

	// No certificate of our own.
	d := &mtls.Dialer{SVIDs: failingSource{}, Bundle: ca.Bundle(), InboundPort: p.port()}
	if _, err := d.Dial(context.Background(), endpoint(80, booksID, target.HTTP1)); !errors.Is(err, mtls.ErrNoSVID) {
		t.Fatalf("no svid: %v", err)
	}
	if d.Stats().Failures[mtls.ReasonNoSVID] != 1 {
		t.Fatalf("stats %+v", d.Stats())
	}
	p.next(t)

	// A malformed endpoint identity.
	if _, err := d.Dial(context.Background(), endpoint(80, "books", target.HTTP1)); proxyerr.KindOf(err) != proxyerr.Connect {
		t.Fatalf("bad identity: %v", err)
	}

	// A TLS server that is not a weft proxy (no ALPN).
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{tlsCert(ca.SVID(t, booksID, time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		c, err := lis.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			io.Copy(io.Discard, c)
		}
	}()
	d = &mtls.Dialer{SVIDs: ca.SVID(t, webID, time.Hour), Bundle: ca.Bundle(), InboundPort: uint16(lis.Addr().(*net.TCPAddr).Port)}
	if _, err := d.Dial(context.Background(), endpoint(80, booksID, target.HTTP1)); err == nil || !strings.Contains(err.Error(), "not a weft proxy") {
		t.Fatalf("no alpn: %v", err)
	}
	if d.Stats().Failures[mtls.ReasonALPN] != 1 {
		t.Fatalf("stats %+v", d.Stats())
	}

	// A server that never answers: handshake timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	d = &mtls.Dialer{SVIDs: ca.SVID(t, webID, time.Hour), Bundle: ca.Bundle(), InboundPort: uint16(silent.Addr().(*net.TCPAddr).Port), HandshakeTimeout: 100 * time.Millisecond}
	if _, err := d.Dial(context.Background(), endpoint(80, booksID, target.HTTP1)); proxyerr.KindOf(err) != proxyerr.Timeout {
		t.Fatalf("silent server: %v, want Timeout", err)
	}
	if d.Stats().Failures[mtls.ReasonTimeout] != 1 {
		t.Fatalf("stats %+v", d.Stats())
	}
}

type failingSource struct{}

func (failingSource) GetX509SVID() (*x509svid.SVID, error) {
	return nil, errors.New("identity: no certificate yet")
}

func tlsCert(s *x509svid.SVID) tls.Certificate {
	c := tls.Certificate{PrivateKey: s.PrivateKey, Leaf: s.Certificates[0]}
	for _, x := range s.Certificates {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

func TestAppTLSIsNotOurs(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	p := startPeer(t, ca.SVID(t, booksID, time.Hour), ca.Bundle())
	// The application's own TLS (ALPN h2) through the inbound port.
	appCert := tlsCert(ca.SVID(t, booksID, time.Hour))
	done := make(chan error, 1)
	go func() {
		c, err := tls.Dial("tcp", p.lis.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
		if err == nil {
			_, err = io.ReadAll(c)
			c.Close()
		}
		done <- err
	}()
	a := p.next(t)
	if a.err != nil || a.replay == nil {
		t.Fatalf("not-ours hello: %+v", a)
	}
	// Every byte is replayed: a real TLS server completes the handshake.
	srv := tls.Server(a.replay, &tls.Config{Certificates: []tls.Certificate{appCert}, NextProtos: []string{"h2"}})
	if err := srv.Handshake(); err != nil {
		t.Fatalf("app TLS over the replayed conn: %v", err)
	}
	srv.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := p.term.Stats(); s.Handshakes != 0 {
		t.Fatalf("terminator touched the app's TLS: %+v", s)
	}
}

// swapBundle is a bundle source whose bundle can be replaced, as
// proxy/identity.Manager replaces its anchors on reload.
type swapBundle struct {
	b atomic.Pointer[x509bundle.Bundle]
}

func (s *swapBundle) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.b.Load().GetX509BundleForTrustDomain(td)
}

// A client verified before is refused once its root leaves the trust anchors,
// even though its earlier verification is cached.
func TestAnchorRotationRevokesCachedVerification(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	newCA := identitytest.NewCA(t, "")
	var sb swapBundle
	sb.b.Store(ca.Bundle())
	p := startPeer(t, ca.SVID(t, booksID, time.Hour), &sb)
	d := &mtls.Dialer{SVIDs: ca.SVID(t, webID, time.Hour), Bundle: ca.Bundle(), InboundPort: p.port(), SessionCacheSize: -1}
	for i := 0; i < 2; i++ {
		c, err := d.Dial(context.Background(), endpoint(80, booksID, target.HTTP1))
		if err != nil {
			t.Fatal(err)
		}
		if a := p.next(t); a.err != nil {
			t.Fatal(a.err)
		} else {
			a.sc.Close()
		}
		c.Close()
	}
	sb.b.Store(newCA.Bundle())
	c, _ := d.Dial(context.Background(), endpoint(80, booksID, target.HTTP1))
	if c != nil {
		c.Close()
	}
	var pie *mtls.PeerIdentityError
	if a := p.next(t); !errors.As(a.err, &pie) {
		t.Fatalf("after rotation: %v, want PeerIdentityError", a.err)
	}
}
