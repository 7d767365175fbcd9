package http1

import (
	"errors"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
)

var (
	strExpect  = []byte("Expect")
	errSmuggle = errors.New("request has both Content-Length and Transfer-Encoding")
)

// handle proxies one request. The chain: framing checks → route → upgrade
// tunnel or forward with streamed bodies → record.
func (p *Proxy) handle(ctx *fasthttp.RequestCtx) {
	c, _ := ctx.Conn().(*conn)
	if c == nil {
		p.fail(ctx, nil, proxyerr.New(proxyerr.Unknown, errors.New("connection without origin")), time.Now())
		return
	}
	start := time.Now()
	rec := &c.rec
	*rec = record.HTTP{Direction: p.cfg.Direction, GRPCStatus: -1,
		Method: b2s(ctx.Method()), Path: b2s(ctx.Path())}

	if smuggling(&ctx.Request.Header) {
		ctx.SetConnectionClose()
		p.fail(ctx, rec, proxyerr.New(proxyerr.BadRequest, errSmuggle), start)
		return
	}
	if p.draining.Load() {
		ctx.SetConnectionClose()
	}

	authority := b2s(ctx.Request.Header.Host())
	prof, ep, err := pipeline.Route(c.ctx, p.cfg.Router, p.cfg.Profiles, authority, c.orig)
	if err != nil {
		rec.Peer.Authority = authority
		rec.Peer.TargetAddr = ""
		p.tapBegin(ctx, c, authority, start)
		p.fail(ctx, rec, err, start)
		return
	}
	rec.Peer = ep.Peer

	req := &ctx.Request
	if isUpgrade(&req.Header) {
		var tok int64
		if ep.Load != nil {
			tok = ep.Load.Begin()
		}
		p.upgrade(ctx, c, ep, start)
		if ep.Load != nil {
			ep.Load.End(tok, c.rec.Err != nil)
		}
		return
	}
	p.tapBegin(ctx, c, authority, start)
	if !c.w.begin() {
		p.fail(ctx, rec, proxyerr.New(proxyerr.Canceled, errCanceled), start)
		return
	}
	stripHopByHop(&req.Header, &c.tmp, false)
	req.Header.DelBytes(strExpect)    // answered by the server side already
	req.Header.ResetConnectionClose() // the client's choice, not the pool's
	if prof != nil || ep.Load != nil {
		p.forwardRouted(ctx, c, prof, ep, authority, start)
		return
	}

	pl := p.pools.get(&ep)
	resp := &ctx.Response
	if err := pl.do(&c.w, req, resp, time.Time{}); err != nil {
		resp.Reset()
		if c.w.isCanceled() {
			p.fail(ctx, rec, proxyerr.New(proxyerr.Canceled, errCanceled), start)
			return
		}
		p.fail(ctx, rec, classify(err), start)
		return
	}
	if p.cfg.ResponseTimeout > 0 {
		pl.headersReceived(resp.LocalAddr())
	}
	stripHopByHop(&resp.Header, &c.tmp, false)
	resp.Header.ResetConnectionClose() // the upstream's choice, not the client's
	if p.draining.Load() {
		resp.SetConnectionClose()
	}
	rec.StatusCode = resp.StatusCode()
	rec.Latency = time.Since(start)
	c.tapResponse(ctx)
	p.observe(rec)
}

// classify maps a client error to a proxy error kind: dial failures keep
// theirs, timeouts are 504, anything else the upstream did is a protocol
// error (502).
func classify(err error) error {
	var pe *proxyerr.Error
	if errors.As(err, &pe) {
		return err
	}
	switch k := proxyerr.KindOf(err); k {
	case proxyerr.Timeout, proxyerr.Canceled:
		return proxyerr.New(k, err)
	}
	if errors.Is(err, fasthttp.ErrNoFreeConns) {
		return proxyerr.New(proxyerr.Overloaded, err)
	}
	return proxyerr.New(proxyerr.Protocol, err)
}

func (p *Proxy) observe(rec *record.HTTP) {
	if p.cfg.Observer != nil {
		p.cfg.Observer.ObserveHTTP(rec)
	}
	// Err stays for the tap's end (reported once the response is
	// written); the next request resets the record.
	rec.Method, rec.Path = "", ""
}

// handleParseError answers requests fasthttp could not parse: 431 for a
// head larger than the read buffer, 408 for a slow client, 400 otherwise,
// each with the weft-proxy-error header.
func (p *Proxy) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	k := proxyerr.BadRequest
	var small *fasthttp.ErrSmallBuffer
	if errors.As(err, &small) {
		k = proxyerr.HeaderTooLarge
	}
	ctx.Response.Reset()
	ctx.Response.Header.DisableNormalizing()
	ctx.SetStatusCode(k.HTTPStatus())
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		ctx.SetStatusCode(fasthttp.StatusRequestTimeout)
	}
	ctx.Response.Header.Set(proxyerr.Header, k.String())
	ctx.SetBodyString(pipeline.ErrorBody(k))
	if p.cfg.ErrorCounter != nil {
		p.cfg.ErrorCounter(p.cfg.Direction, proxyerr.New(k, err))
	}
}

// b2s views b as a string without copying; the string must not outlive
// the request (records are not retained by observers).
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
