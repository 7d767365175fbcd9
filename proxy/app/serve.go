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
	case detect.HTTP1:
		d.h1.ServeConn(dc, orig)
	case detect.HTTP2:
		d.h2.ServeConn(context.Background(), dc, orig)
	default: // TLS (the application's own) and unknown bytes
		a.forwardTCP(d, dc, orig)
	}
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
