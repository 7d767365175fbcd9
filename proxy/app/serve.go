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
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
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
// TCP) → detect → HTTP/1 | HTTP/2 | TCP.
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
	// the proxy connect to itself, forever.
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		if lap := la.AddrPort(); lap.Port() == orig.Port() && lap.Addr().Unmap() == orig.Addr().Unmap() {
			a.log.Debug("connection to the proxy's own port, not redirected", "direction", d.dir.String(), "addr", orig.String())
			a.metrics.ObserveError(d.dir, proxyerr.BadRequest)
			c.Close()
			return
		}
	}
	if _, opaque := slices.BinarySearch(d.opaque, orig.Port()); opaque {
		a.metrics.ObserveDetect(d.dir, detect.Opaque, metrics.Skipped)
		a.forwardTCP(d, c, orig)
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
	switch res.Protocol {
	case detect.HTTP1, detect.HTTP2:
		// HTTP connections count in the tcp_* metrics too (Linkerd's
		// TCP_CONN), labelled with their original destination.
		s := a.names.get(orig)
		cc := &countConn{Conn: dc, s: a.metrics.OpenTCP(d.dir, &record.Peer{Authority: s, TargetAddr: s})}
		if res.Protocol == detect.HTTP1 {
			d.h1.ServeConn(cc, orig)
		} else {
			d.h2.ServeConn(context.Background(), cc, orig)
		}
		cc.s.Close(false)
	default: // TLS (the application's own) and unknown bytes
		a.forwardTCP(d, dc, orig)
	}
}

// countConn counts an HTTP client connection's bytes as they pass.
type countConn struct {
	net.Conn
	s *metrics.TCPSeries
}

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
func (a *App) forwardTCP(d *direction, c net.Conn, orig netip.AddrPort) {
	ep, err := d.router.Route(context.Background(), "", orig)
	if err != nil {
		a.metrics.ObserveError(d.dir, proxyerr.KindOf(err))
		c.Close()
		return
	}
	up, err := a.dialer.Dial(context.Background(), ep)
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
