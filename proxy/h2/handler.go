package h2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// copyBufSize is the size of the pooled buffers response bodies are copied
// through; flow control bounds what is buffered beyond it.
const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// exchange is the per-request state, pooled: the record and the matched
// route (nil when none).
type exchange struct {
	rec   record.HTTP
	route *profile.Route
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

var connectionClose = []string{"close"}

// connHandler handles the requests of one client connection.
type connHandler struct {
	p    *Proxy
	orig netip.AddrPort
}

// errAbort resets the client stream (RST_STREAM INTERNAL_ERROR): x/net's
// server resets the stream of a handler that panics with it, without logging.
var errAbort = http.ErrAbortHandler

// ServeHTTP forwards one request: profile and route match, endpoint pick,
// send upstream with the body streamed (or replayable, for a retryable
// route), retries, copy the response with its trailers, report one record
// (and the rt_route records).
func (h *connHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.p
	p.stats.requests.Add(1)
	start := time.Now()
	grpc := isGRPC(r.Header)
	x := exchanges.Get().(*exchange)
	rec := &x.rec
	*rec = record.HTTP{Direction: p.cfg.Direction, Method: r.Method, Path: r.URL.Path, GRPCStatus: -1}
	defer p.finish(x)

	ctx := r.Context()
	var prof *profile.Profile
	if p.cfg.Profiles != nil {
		prof = p.cfg.Profiles.Profile(ctx, r.Host, h.orig)
	}
	ep, err := p.cfg.Router.Route(ctx, r.Host, h.orig)
	if err != nil {
		p.fail(w, rec, grpc, start, err)
		return
	}
	p.setPeer(rec, &ep, r.Host)

	// The request's header map is ours: strip it in place and send it on.
	stripHopByHop(r.Header)
	if _, ok := r.Header["User-Agent"]; !ok {
		r.Header["User-Agent"] = nil // no Go default user agent
	}

	route := prof.Match(r.Method, r.URL.Path)
	x.route = route
	rec.Route = route.RouteName()
	retry := prof.Begin(route, r.Method)
	actx := ctx // every attempt's context: the route timeout bounds them all
	var deadline time.Time
	if t := route.RouteTimeout(); t > 0 {
		deadline = start.Add(t)
		var cancel context.CancelFunc
		actx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	var (
		body   io.ReadCloser
		replay *profile.Replay
		src    *bodyReader
	)
	hasBody := r.ContentLength != 0 || r.Body != http.NoBody
	if hasBody {
		body = r.Body
		if retry.MayRetry() && r.ContentLength <= profile.MaxReplayBody {
			// Not pooled: a transport goroutine may still be reading
			// it after the handler returned.
			src = &bodyReader{r: r.Body}
			replay = profile.NewReplay(src)
			defer replay.Release()
			body = replay.Body()
		}
	}

	var resp *http.Response
	for {
		var tok int64
		if ep.Load != nil {
			tok = ep.Load.Begin()
		}
		resp, err = p.send(actx, r, &ep, body)
		status, failed := 0, err != nil
		if err == nil {
			status = resp.StatusCode
			gs := -1
			if grpc {
				gs = grpcStatus(resp.Header)
			}
			failed = route.Failed(status, gs, false)
		} else {
			err = timeoutKind(actx, err)
		}
		if ep.Load != nil {
			// A client that went away is not the endpoint's failure.
			ep.Load.End(tok, failed && ctx.Err() == nil)
		}
		if err != nil && ctx.Err() != nil {
			rec.Err, rec.ErrKind = ctx.Err(), proxyerr.Canceled
			return
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
		// A body is replayed only when it was complete (and within the
		// buffer) before the attempt failed; for gRPC only a single
		// message (unary or server-streaming call).
		replayable := !hasBody || replay != nil && replay.Replayable() &&
			(!grpc && src.complete(r.ContentLength) || grpc && src.singleMessage())
		wait, again := retry.Next(profile.Outcome{Failed: true, Err: err, Replayable: replayable, Remaining: remaining})
		if again && replay != nil {
			if again = replay.Rewind(); again {
				body = replay.Body()
			}
		}
		if !again {
			rec.Retries = retry.Retries()
			if err == nil {
				break // answer with this (failed) response
			}
			var se http2.StreamError
			if errors.As(err, &se) {
				// The upstream reset the stream: reset the client's too.
				rec.Err, rec.ErrKind = proxyerr.New(proxyerr.Protocol, err), proxyerr.Protocol
				panic(errAbort)
			}
			p.fail(w, rec, grpc, start, err)
			return
		}
		if resp != nil {
			drain(resp)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-actx.Done():
			t.Stop()
			rec.Retries = retry.Retries()
			if ctx.Err() != nil {
				rec.Err, rec.ErrKind = ctx.Err(), proxyerr.Canceled
				return
			}
			p.fail(w, rec, grpc, start, timeoutKind(actx, actx.Err()))
			return
		}
		if ep, err = p.cfg.Router.Route(actx, r.Host, h.orig); err != nil {
			rec.Retries = retry.Retries()
			p.fail(w, rec, grpc, start, timeoutKind(actx, err))
			return
		}
		p.setPeer(rec, &ep, r.Host)
	}
	defer resp.Body.Close()
	rec.Latency = time.Since(start)

	hdr := w.Header()
	copyResponseHeader(hdr, resp.Header)
	if p.draining.Load() {
		hdr["Connection"] = connectionClose // x/net: GOAWAY after this stream
	}
	w.WriteHeader(resp.StatusCode)
	rec.StatusCode = resp.StatusCode
	fl, _ := w.(http.Flusher)
	if resp.ContentLength != 0 && fl != nil {
		// Send the headers now: a streaming peer may wait for them before
		// sending anything. A bodiless response (gRPC trailers-only) is
		// left to go out as one HEADERS frame with END_STREAM.
		fl.Flush()
	}

	if rerr, werr := copyBody(w, fl, resp.Body); rerr != nil || werr != nil {
		if ctx.Err() != nil || werr != nil {
			rec.Err, rec.ErrKind = errors.Join(ctx.Err(), werr), proxyerr.Canceled
			return
		}
		if actx.Err() != nil {
			// The route timeout expired mid-response; the upstream
			// stream is cancelled with actx.
			err := timeoutKind(actx, rerr)
			rec.Err, rec.ErrKind = err, proxyerr.Timeout
			if grpc {
				rec.GRPCStatus = timeoutTrailers(hdr, err)
				return
			}
			panic(errAbort)
		}
		rec.Err, rec.ErrKind = proxyerr.New(proxyerr.Protocol, rerr), proxyerr.Protocol
		panic(errAbort)
	}
	copyTrailers(hdr, resp.Trailer)
	if grpc {
		rec.GRPCStatus = grpcStatus(resp.Trailer)
		if rec.GRPCStatus < 0 {
			rec.GRPCStatus = grpcStatus(resp.Header)
		}
	}
}

// setPeer records the routed endpoint's labels.
func (p *Proxy) setPeer(rec *record.HTTP, ep *target.Endpoint, authority string) {
	rec.Peer = ep.Peer
	if rec.Peer.Authority == "" {
		rec.Peer.Authority = authority
	}
	if rec.Peer.TargetAddr == "" {
		rec.Peer.TargetAddr = p.addrs.get(ep.Addr)
	}
}

// send sends one attempt of r to ep with body (nil: none) on ctx and
// returns the response head.
func (p *Proxy) send(ctx context.Context, r *http.Request, ep *target.Endpoint, body io.ReadCloser) (*http.Response, error) {
	t, err := p.up.transport(ep.Identity)
	if err != nil {
		return nil, proxyerr.New(proxyerr.Overloaded, err)
	}
	out := r.WithContext(withEndpoint(ctx, ep))
	out.URL = &url.URL{Scheme: "http", Host: p.addrs.get(ep.Addr), Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.RequestURI = ""
	out.Body = body
	return t.RoundTrip(out)
}

// copyBody copies body to w through a pooled buffer, flushing after every
// chunk so streamed data reaches the client as it arrives. It returns the
// read error (other than EOF) or the write error.
func copyBody(w io.Writer, fl http.Flusher, body io.Reader) (rerr, werr error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr = w.Write(buf[:n]); werr != nil {
				return nil, werr
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}

// fail answers a request the proxy could not forward and records why.
func (p *Proxy) fail(w http.ResponseWriter, rec *record.HTTP, grpc bool, start time.Time, err error) {
	k := proxyerr.KindOf(err)
	rec.Err, rec.ErrKind = err, k
	if p.draining.Load() {
		w.Header()["Connection"] = connectionClose
	}
	rec.StatusCode, rec.GRPCStatus = writeError(w, grpc, k, err)
	if !grpc {
		rec.GRPCStatus = -1
	}
	rec.Latency = time.Since(start)
}

// finish reports the exchange (and its route) and returns it to the pool.
func (p *Proxy) finish(x *exchange) {
	rec := &x.rec
	if rec.Route != "" && p.routeObs != nil {
		p.routeObs.ObserveRoute(rec, rec.Err != nil || x.route.Failed(rec.StatusCode, rec.GRPCStatus, false))
	}
	if p.cfg.Observer != nil {
		p.cfg.Observer.ObserveHTTP(rec)
	}
	*x = exchange{}
	exchanges.Put(x)
}
