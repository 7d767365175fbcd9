package http1

import (
	"context"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// Profiles looks up the destination profile of a request (routes, response
// classes, timeouts, retries); destclient.Client implements it.
type Profiles interface {
	Profile(ctx context.Context, authority string, orig netip.AddrPort) *profile.Profile
}

// RouteObserver records the rt_route metrics: once per request with a
// matched route (after retries), and once per attempt. failed is the route's
// classification. It must not retain the record.
type RouteObserver interface {
	ObserveRoute(h *record.HTTP, failed bool)
	ObserveRouteAttempt(h *record.HTTP, failed bool)
}

// forwardRouted sends a request whose endpoint came from a balancer or whose
// target has a profile, following docs/proxy-balancing.md: route match,
// route timeout over every attempt, the load handle around each attempt
// (Begin before sending, End at the response head or the failure),
// classification, and retries with a fresh pick, the replay buffer and the
// budget. It answers the client and records the exchange.
func (p *Proxy) forwardRouted(ctx *fasthttp.RequestCtx, c *conn, prof *profile.Profile, ep target.Endpoint, authority string, start time.Time) {
	rec := &c.rec
	method := b2s(ctx.Method())
	route := prof.Match(method, b2s(ctx.Path()))
	rec.Route = route.RouteName()
	retry := prof.Begin(route, method)
	var deadline time.Time
	if t := route.RouteTimeout(); t > 0 {
		deadline = start.Add(t)
	}
	if p.cfg.ResponseTimeout > 0 {
		if d := start.Add(p.cfg.ResponseTimeout); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}

	req := &ctx.Request
	out := req
	hasBody := req.IsBodyStream()
	cl := req.Header.ContentLength()
	var replay *profile.Replay
	if hasBody && retry.MayRetry() && cl <= profile.MaxReplayBody {
		// The server's body stream must stay with the server's request
		// (fasthttp releases it on SetBodyStream): attempts go out on a
		// copy whose body reads through the replay buffer.
		replay = profile.NewReplay(req.BodyStream())
		defer replay.Release()
		out = fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(out)
		req.Header.CopyTo(&out.Header)
		out.SetBodyStream(replay.Body(), cl)
	}
	resp := &ctx.Response
	var pl *pool
	for {
		pl = p.pools.get(&ep)
		var tok int64
		if ep.Load != nil {
			tok = ep.Load.Begin()
		}
		err := pl.do(&c.w, out, resp, deadline)
		status := 0
		if err == nil {
			status = resp.StatusCode()
		} else if c.w.isCanceled() {
			resp.Reset()
			if ep.Load != nil {
				ep.Load.End(tok, true)
			}
			rec.Retries = retry.Retries()
			p.canceledRouted(ctx, rec, start)
			return
		} else {
			resp.Reset()
			err = classify(err)
			if !deadline.IsZero() && !time.Now().Before(deadline) && proxyerr.KindOf(err) != proxyerr.Timeout {
				err = proxyerr.New(proxyerr.Timeout, err)
			}
		}
		failed := err != nil || route.Failed(status, -1, false)
		if ep.Load != nil {
			ep.Load.End(tok, failed)
		}
		if rec.Route != "" {
			p.observeAttempt(rec, status, err, failed)
		}
		if !failed {
			break
		}
		var remaining time.Duration
		if !deadline.IsZero() {
			if remaining = time.Until(deadline); remaining <= 0 {
				remaining = time.Nanosecond
			}
		}
		wait, again := retry.Next(profile.Outcome{Failed: true, Err: err,
			Replayable: !hasBody || (replay != nil && replay.Replayable()), Remaining: remaining})
		if again && replay != nil {
			again = replay.Rewind()
		}
		if !again {
			if err != nil {
				rec.Retries = retry.Retries()
				p.failRouted(ctx, rec, err, start)
				return
			}
			break // answer with this (failed) response
		}
		resp.Reset() // closes a streamed body; the connection is not reused
		if replay != nil {
			out.SetBodyStream(replay.Body(), cl)
		}
		t := time.NewTimer(wait)
		<-t.C
		if c.w.isCanceled() {
			rec.Retries = retry.Retries()
			p.canceledRouted(ctx, rec, start)
			return
		}
		next, rerr := p.cfg.Router.Route(c.ctx, authority, c.orig)
		if rerr != nil {
			rec.Retries = retry.Retries()
			p.failRouted(ctx, rec, rerr, start)
			return
		}
		ep = next
		rec.Peer = ep.Peer
	}
	rec.Retries = retry.Retries()
	if !deadline.IsZero() {
		pl.headersReceived(resp.LocalAddr())
	}
	stripHopByHop(&resp.Header, &c.tmp, false)
	resp.Header.ResetConnectionClose()
	if p.draining.Load() {
		resp.SetConnectionClose()
	}
	rec.StatusCode = resp.StatusCode()
	rec.Latency = time.Since(start)
	if rec.Route != "" {
		if ro, ok := p.cfg.Observer.(RouteObserver); ok {
			ro.ObserveRoute(rec, route.Failed(rec.StatusCode, -1, false))
		}
	}
	p.observe(rec)
}

// failRouted answers a routed request the proxy could not complete.
func (p *Proxy) failRouted(ctx *fasthttp.RequestCtx, rec *record.HTTP, err error, start time.Time) {
	if rec.Route != "" {
		if ro, ok := p.cfg.Observer.(RouteObserver); ok {
			k := proxyerr.KindOf(err)
			rec.StatusCode, rec.Latency = k.HTTPStatus(), time.Since(start)
			ro.ObserveRoute(rec, true)
		}
	}
	p.fail(ctx, rec, err, start)
}

// canceledRouted ends a routed request whose client went away.
func (p *Proxy) canceledRouted(ctx *fasthttp.RequestCtx, rec *record.HTTP, start time.Time) {
	p.failRouted(ctx, rec, proxyerr.New(proxyerr.Canceled, errCanceled), start)
	ctx.SetConnectionClose()
}

func (p *Proxy) observeAttempt(rec *record.HTTP, status int, err error, failed bool) {
	ro, ok := p.cfg.Observer.(RouteObserver)
	if !ok {
		return
	}
	if err != nil {
		status = proxyerr.KindOf(err).HTTPStatus()
	}
	saved := rec.StatusCode
	rec.StatusCode = status
	ro.ObserveRouteAttempt(rec, failed)
	rec.StatusCode = saved
}
