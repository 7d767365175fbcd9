package app

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/weftmesh/weft/proxy/detect"
	"github.com/weftmesh/weft/proxy/metrics"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
	"github.com/weftmesh/weft/proxy/tcp"
)

// bufPool recycles detection buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, detect.BufferSize); return &b }}

func (a *App) acceptLoop(d *direction, ln net.Listener) {
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of fds and the like: back off instead of spinning.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			a.log.Warn("accept", "direction", d.dir.String(), "err", err, "retry_in", delay.String())
			time.Sleep(delay)
			continue
		}
		delay = 0
		a.tracker.Add(c)
		go func() {
			defer a.tracker.Done(c)
			a.serve(d, c)
		}()
	}
}

// serve is the per-connection chain: original destination → (opaque port?
// TCP) → detect → HTTP/1 | HTTP/2 | TCP; on inbound with identity on, a
// TLS ClientHello offering weft's ALPN → mTLS termination → the same chain
// for the port named in the connection header.
func (a *App) serve(d *direction, c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAlive(true)
	}
	orig, err := a.opts.OrigDst(c)
	if err != nil {
		a.log.Debug("no original destination", "direction", d.dir.String(), "err", err)
		a.metrics.ObserveError(d.dir, proxyerr.Unknown)
		c.Close()
		return
	}
	// A connection that was not redirected (someone dialled the proxy's
	// port itself) reports its own local address; forwarding it would make
	// the proxy connect to itself, forever. Peer proxies dial the inbound
	// port directly with mTLS: only that is accepted there.
	direct := false
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		if lap := la.AddrPort(); lap.Port() == orig.Port() && lap.Addr().Unmap() == orig.Addr().Unmap() {
			if d.dir == record.Outbound || a.mesh == nil {
				a.log.Debug("connection to the proxy's own port, not redirected", "direction", d.dir.String(), "addr", orig.String())
				a.metrics.ObserveError(d.dir, proxyerr.BadRequest)
				c.Close()
				return
			}
			direct = true
		}
	}
	if _, opaque := slices.BinarySearch(d.opaque, orig.Port()); opaque && !direct {
		a.metrics.ObserveDetect(d.dir, detect.Opaque, metrics.Skipped)
		if !a.allowPlain(d, c, orig, detect.Opaque) {
			return
		}
		a.forwardTCP(d, c, orig, nil)
		return
	}
	bp := bufPool.Get().(*[]byte)
	res, err := detect.Detect(c, a.cfg.DetectTimeout, *bp)
	if err != nil {
		bufPool.Put(bp)
		if !errors.Is(err, io.EOF) {
			a.log.Debug("detect", "direction", d.dir.String(), "err", err)
		}
		c.Close()
		return
	}
	result := metrics.Detected
	if res.TimedOut {
		result = metrics.Timeout
	}
	a.metrics.ObserveDetect(d.dir, res.Protocol, result)
	dc := detect.NewConn(c, res.Peeked, func() { bufPool.Put(bp) })
	if d.dir == record.Inbound && a.mesh != nil && res.Protocol == detect.TLS {
		rc, weft, err := mtls.Sniff(dc, a.cfg.DetectTimeout)
		if err != nil {
			a.log.Debug("sniff ClientHello", "err", err)
			c.Close()
			return
		}
		if weft {
			a.serveMTLS(d, rc, orig)
			return
		}
		dc = nil
		if direct {
			a.metrics.ObserveError(d.dir, proxyerr.BadRequest)
			rc.Close()
			return
		}
		if !a.allowPlain(d, rc, orig, detect.TLS) {
			return
		}
		a.forwardTCP(d, rc, orig, nil) // the application's own TLS
		return
	}
	if direct {
		a.log.Debug("plaintext connection to the inbound port itself", "addr", orig.String())
		a.metrics.ObserveError(d.dir, proxyerr.BadRequest)
		dc.Close()
		return
	}
	if !a.allowPlain(d, dc, orig, res.Protocol) {
		return
	}
	a.dispatch(context.Background(), d, dc, orig, res.Protocol, nil)
}

// dispatch hands a detected connection to its protocol layer. peer is the
// verified mTLS peer of an inbound connection, nil for plaintext.
func (a *App) dispatch(ctx context.Context, d *direction, c net.Conn, orig netip.AddrPort, p detect.Protocol, peer *tlsPeer) {
	switch p {
	case detect.HTTP1, detect.HTTP2:
		// HTTP connections count in the tcp_* metrics too (Linkerd's
		// TCP_CONN), labelled with their original destination.
		s := a.names.get(orig)
		rp := record.Peer{Authority: s, TargetAddr: s}
		if peer != nil {
			rp.TLS, rp.ClientID = true, peer.clientID
			ctx = withTLSPeer(ctx, peer)
		}
		cc := &countConn{Conn: c, s: a.metrics.OpenTCP(d.dir, &rp)}
		if p == detect.HTTP1 {
			d.h1.ServeConnContext(ctx, cc, orig)
		} else {
			d.h2.ServeConn(ctx, cc, orig)
		}
		cc.s.Close(false)
	default: // TLS (the application's own) and unknown bytes
		a.forwardTCP(d, c, orig, peer)
	}
}

// serveMTLS terminates a peer proxy's mTLS connection and serves what it
// carries to the local port named in its connection header.
func (a *App) serveMTLS(d *direction, c net.Conn, orig netip.AddrPort) {
	ctx, cancel := context.WithTimeout(context.Background(), mtls.DefaultHandshakeTimeout)
	sc, err := a.mesh.term.Terminate(ctx, c)
	cancel()
	if err != nil {
		a.log.Debug("mtls terminate", "remote", c.RemoteAddr().String(), "err", err)
		a.metrics.ObserveError(d.dir, proxyerr.Unauthenticated)
		c.Close()
		return
	}
	port := sc.Header.Port
	if !a.cfg.Policy.Allows(port, true) {
		a.log.Debug("inbound policy refuses", "port", port, "client_id", sc.ClientID().String())
		a.metrics.ObserveError(d.dir, proxyerr.Unauthenticated)
		sc.Close()
		return
	}
	var rp record.Peer
	mtls.FillPeer(sc, &rp)
	peer := &tlsPeer{clientID: rp.ClientID}
	tgt := netip.AddrPortFrom(orig.Addr(), port)
	var p detect.Protocol
	switch sc.Header.Protocol {
	case target.HTTP1:
		p = detect.HTTP1
	case target.HTTP2:
		p = detect.HTTP2
	case target.Opaque:
		p = detect.Opaque
	default:
		bp := bufPool.Get().(*[]byte)
		res, err := detect.Detect(sc, a.cfg.DetectTimeout, *bp)
		if err != nil {
			bufPool.Put(bp)
			sc.Close()
			return
		}
		a.metrics.ObserveDetect(d.dir, res.Protocol, metrics.Detected)
		dc := detect.NewConn(sc, res.Peeked, func() { bufPool.Put(bp) })
		a.dispatch(context.Background(), d, dc, tgt, res.Protocol, peer)
		return
	}
	a.dispatch(context.Background(), d, sc, tgt, p, peer)
}

// forbidden is the answer to a plaintext HTTP/1 request the inbound policy
// refuses.
var forbidden = []byte("HTTP/1.1 403 Forbidden\r\n" + proxyerr.Header + ": " + "unauthenticated" +
	"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\nConnection: close\r\n\r\nunauthenticated\n")

// allowPlain applies the inbound policy to a plaintext connection: a refused
// one is counted as Unauthenticated and closed (HTTP/1 first gets a 403 with
// the weft-proxy-error header).
func (a *App) allowPlain(d *direction, c net.Conn, orig netip.AddrPort, p detect.Protocol) bool {
	if d.dir != record.Inbound || a.cfg.Policy.Allows(orig.Port(), false) {
		return true
	}
	a.metrics.ObserveError(d.dir, proxyerr.Unauthenticated)
	if p == detect.HTTP1 {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write(forbidden)
		if tc, ok := c.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
			c.SetReadDeadline(time.Now().Add(time.Second))
			io.Copy(io.Discard, io.LimitReader(c, 64<<10)) // let the client read the answer
		}
	}
	c.Close()
	return false
}

// countConn counts an HTTP client connection's bytes as they pass.
type countConn struct {
	net.Conn
	s *metrics.TCPSeries
}

// Unwrap returns the counted connection (proxy/http1 watches its socket
// for the client's disconnect).
func (c *countConn) Unwrap() net.Conn { return c.Conn }

func (c *countConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.s.AddRead(int64(n))
	return n, err
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.s.AddWritten(int64(n))
	return n, err
}

// forwardTCP routes by original destination and copies bytes both ways.
// peer is the verified mTLS peer of an inbound connection, nil otherwise.
func (a *App) forwardTCP(d *direction, c net.Conn, orig netip.AddrPort, peer *tlsPeer) {
	ctx := context.Background()
	if peer != nil {
		ctx = withTLSPeer(ctx, peer)
	}
	ep, err := d.router.Route(ctx, "", orig)
	if err != nil {
		a.metrics.ObserveError(d.dir, proxyerr.KindOf(err))
		c.Close()
		return
	}
	// Balanced per connection: the connect time is the RTT sample, a
	// connect failure feeds failure accrual.
	var tok int64
	if ep.Load != nil {
		tok = ep.Load.Begin()
	}
	up, err := a.dialTCP.Dial(context.Background(), ep)
	if ep.Load != nil {
		ep.Load.End(tok, err != nil)
	}
	series := a.metrics.OpenTCP(d.dir, &ep.Peer)
	if err != nil {
		a.metrics.ObserveError(d.dir, proxyerr.KindOf(err))
		series.Close(true)
		c.Close()
		return
	}
	res := tcp.Forward(c, up, series)
	series.Close(res.Err != nil)
}
