package http1

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// exchange is the HTTP/1 side of one routed request (pipeline.Exchange):
// it lives in the conn and is reused by its sequential requests.
type exchange struct {
	p       *Proxy
	c       *conn
	out     *fasthttp.Request // what attempts send (the request, or its replay copy)
	resp    *fasthttp.Response
	pl      *pool // the last attempt's pool
	replay  *profile.Replay
	hasBody bool
	cl      int
}

func (x *exchange) Send(ep *target.Endpoint, deadline time.Time) (int, int, error) {
	x.pl = x.p.pools.get(ep)
	if err := x.pl.do(&x.c.w, x.out, x.resp, deadline); err != nil {
		x.resp.Reset()
		return 0, -1, classify(err)
	}
	return x.resp.StatusCode(), -1, nil
}

func (x *exchange) Discard()              { x.resp.Reset() } // closes a streamed body; the connection is not reused
func (x *exchange) Canceled() bool        { return x.c.w.isCanceled() }
func (x *exchange) Done() <-chan struct{} { return x.c.w.done() }
func (x *exchange) Routed(ep *target.Endpoint) {
	x.c.rec.Peer = ep.Peer
}

func (x *exchange) Replayable() bool {
	return !x.hasBody || x.replay != nil && x.replay.Replayable()
}

func (x *exchange) Unread() bool {
	return !x.hasBody || x.replay != nil && x.replay.Buffered() == 0
}

func (x *exchange) Rewind() bool {
	if x.replay == nil {
		return true
	}
	if !x.replay.Rewind() {
		return false
	}
	x.out.SetBodyStream(x.replay.Body(), x.cl)
	return true
}

// forwardRouted sends a request whose endpoint came from a balancer or whose
// target has a profile through the pipeline (route match, route timeout,
// load handle, classification, retries with replay) and answers the client.
func (p *Proxy) forwardRouted(ctx *fasthttp.RequestCtx, c *conn, prof *profile.Profile, ep target.Endpoint, authority string, start time.Time) {
	rec := &c.rec
	r := pipeline.Begin(prof, rec, start, p.cfg.ResponseTimeout)
	r.Ctx, r.Authority, r.Orig = c.ctx, authority, c.orig

	req := &ctx.Request
	x := &c.x
	*x = exchange{p: p, c: c, out: req, resp: &ctx.Response, hasBody: req.IsBodyStream(), cl: req.Header.ContentLength()}
	if x.hasBody && (r.Retry.MayRetry() || ep.Load != nil) && x.cl <= profile.MaxReplayBody {
		// The server's body stream must stay with the server's request
		// (fasthttp releases it on SetBodyStream): attempts go out on a
		// copy whose body reads through the replay buffer. A balanced
		// request gets one too: a connect failure sends it to another
		// endpoint.
		x.replay = profile.NewReplay(req.BodyStream())
		defer x.replay.Release()
		x.out = fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(x.out)
		req.Header.CopyTo(&x.out.Header)
		x.out.SetBodyStream(x.replay.Body(), x.cl)
	}
	defer func() { *x = exchange{} }()
	if err := p.pipe.Run(x, &r, ep); err != nil {
		p.answer(ctx, rec, err, start)
		p.pipe.ObserveRoute(&r)
		p.observe(rec)
		return
	}
	resp := &ctx.Response
	if !r.Deadline.IsZero() {
		x.pl.headersReceived(resp.LocalAddr())
	}
	stripHopByHop(&resp.Header, &c.tmp, false)
	resp.Header.ResetConnectionClose()
	if p.draining.Load() {
		resp.SetConnectionClose()
	}
	rec.StatusCode = resp.StatusCode()
	rec.Latency = time.Since(start)
	c.tapResponse(ctx)
	p.pipe.ObserveRoute(&r)
	p.observe(rec)
}

// answer answers the client with the error's status and the
// weft-proxy-error header (proxyerr's one table), and records it; the
// caller observes the record. A cancelled request (nothing useful can be sent) and a bad
// request close the connection.
func (p *Proxy) answer(ctx *fasthttp.RequestCtx, rec *record.HTTP, err error, start time.Time) {
	k := proxyerr.KindOf(err)
	ctx.Response.Reset()
	ctx.Response.Header.DisableNormalizing()
	ctx.SetStatusCode(k.HTTPStatus())
	ctx.Response.Header.Set(proxyerr.Header, k.String())
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(pipeline.ErrorBody(k))
	if p.draining.Load() || k == proxyerr.BadRequest || k == proxyerr.Canceled {
		ctx.SetConnectionClose()
	}
	if c, ok := ctx.Conn().(*conn); ok && k != proxyerr.Canceled {
		c.tapResponse(ctx)
	}
	p.cfg.Logger.Debug("http1 request failed", "direction", p.cfg.Direction.String(), "kind", k.String(), "err", err)
	if rec != nil {
		pipeline.Fail(rec, err, start)
	}
}

// fail answers, records and observes a request that failed outside the
// routed pipeline.
func (p *Proxy) fail(ctx *fasthttp.RequestCtx, rec *record.HTTP, err error, start time.Time) {
	p.answer(ctx, rec, err, start)
	if rec != nil {
		p.observe(rec)
	}
}
