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

	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// copyBufSize is the size of the pooled buffers response bodies are copied
// through; flow control bounds what is buffered beyond it.
const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// exchange is the per-request state, pooled: the record, the routing
// state and the attempt in flight (pipeline.Exchange).
type exchange struct {
	rec    record.HTTP
	req    pipeline.Request
	p      *Proxy
	r      *http.Request
	actx   context.Context // every attempt's context: the route timeout bounds them all
	grpc   bool
	body   io.ReadCloser
	replay *profile.Replay
	src    *bodyReader
	resp   *http.Response
	// tap is the exchange's tap state; bytes and reset feed its end.
	tap   pipeline.Tapping
	bytes int64
	reset bool
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

func (x *exchange) Send(ep *target.Endpoint, _ time.Time) (int, int, error) {
	resp, err := x.p.send(x.actx, x.r, ep, x.body)
	x.resp = resp
	if err != nil {
		return 0, -1, err
	}
	gs := -1
	if x.grpc {
		gs = grpcStatus(resp.Header)
	}
	return resp.StatusCode, gs, nil
}

func (x *exchange) Discard() {
	if x.resp != nil {
		drain(x.resp)
		x.resp = nil
	}
}

func (x *exchange) Canceled() bool             { return x.r.Context().Err() != nil }
func (x *exchange) Done() <-chan struct{}      { return x.r.Context().Done() }
func (x *exchange) Routed(ep *target.Endpoint) { x.p.setPeer(&x.rec, ep, x.r.Host) }

// Replayable: a body is replayed only when it was complete (and within the
// buffer) before the attempt failed; for gRPC only a single message (unary
// or server-streaming call).
func (x *exchange) Replayable() bool {
	r := x.r
	hasBody := r.ContentLength != 0 || r.Body != http.NoBody
	return !hasBody || x.replay != nil && x.replay.Replayable() &&
		(!x.grpc && x.src.complete(r.ContentLength) || x.grpc && x.src.singleMessage())
}

func (x *exchange) Unread() bool {
	r := x.r
	return r.ContentLength == 0 && r.Body == http.NoBody || x.replay != nil && x.replay.Buffered() == 0
}

func (x *exchange) Rewind() bool {
	if x.replay == nil {
		return true
	}
	if !x.replay.Rewind() {
		return false
	}
	x.body = x.replay.Body()
	return true
}

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
	prof, ep, err := pipeline.Route(ctx, p.cfg.Router, p.cfg.Profiles, r.Host, h.orig)
	if err == nil {
		p.setPeer(rec, &ep, r.Host)
	}
	if p.pipe.TapOn() {
		p.pipe.TapBegin(&x.tap, rec, "http", r.Host, r.RemoteAddr, headerView(r.Header), start)
	}
	if err != nil {
		p.fail(w, x, grpc, start, err)
		return
	}

	// The request's header map is ours: strip it in place and send it on.
	stripHopByHop(r.Header)
	if _, ok := r.Header["User-Agent"]; !ok {
		r.Header["User-Agent"] = nil // no Go default user agent
	}

	x.req = pipeline.Begin(prof, rec, start, 0)
	x.p, x.r, x.grpc, x.actx = p, r, grpc, ctx
	if !x.req.Deadline.IsZero() {
		var cancel context.CancelFunc
		x.actx, cancel = context.WithDeadline(ctx, x.req.Deadline)
		defer cancel()
	}
	x.req.Ctx, x.req.Authority, x.req.Orig = x.actx, r.Host, h.orig
	actx := x.actx
	hasBody := r.ContentLength != 0 || r.Body != http.NoBody
	if hasBody {
		x.body = r.Body
		if (x.req.Retry.MayRetry() || ep.Load != nil) && r.ContentLength <= profile.MaxReplayBody {
			// Not pooled: a transport goroutine may still be reading
			// it after the handler returned.
			x.src = &bodyReader{r: r.Body}
			x.replay = profile.NewReplay(x.src)
			defer x.replay.Release()
			x.body = x.replay.Body()
		}
	}

	if err := p.pipe.Run(x, &x.req, ep); err != nil {
		var se http2.StreamError
		if proxyerr.KindOf(err) != proxyerr.Canceled && errors.As(err, &se) {
			// The upstream reset the stream: reset the client's too.
			rec.Err, rec.ErrKind = proxyerr.New(proxyerr.Protocol, err), proxyerr.Protocol
			x.reset = true
			panic(errAbort)
		}
		p.fail(w, x, grpc, start, err)
		return
	}
	resp := x.resp
	defer resp.Body.Close()
	rec.Latency = time.Since(start)

	hdr := w.Header()
	copyResponseHeader(hdr, resp.Header)
	if p.draining.Load() {
		hdr["Connection"] = connectionClose // x/net: GOAWAY after this stream
	}
	w.WriteHeader(resp.StatusCode)
	rec.StatusCode = resp.StatusCode
	x.tap.Response(resp.StatusCode, headerView(hdr))
	fl, _ := w.(http.Flusher)
	if resp.ContentLength != 0 && fl != nil {
		// Send the headers now: a streaming peer may wait for them before
		// sending anything. A bodiless response (gRPC trailers-only) is
		// left to go out as one HEADERS frame with END_STREAM.
		fl.Flush()
	}

	n, rerr, werr := copyBody(w, fl, resp.Body)
	x.bytes = n
	if rerr != nil || werr != nil {
		x.reset = true
		if ctx.Err() != nil || werr != nil {
			rec.Err, rec.ErrKind = errors.Join(ctx.Err(), werr), proxyerr.Canceled
			return
		}
		if actx.Err() != nil {
			// The route timeout expired mid-response; the upstream
			// stream is cancelled with actx.
			err := proxyerr.New(proxyerr.Timeout, rerr)
			rec.Err, rec.ErrKind = err, proxyerr.Timeout
			if grpc {
				x.reset = false // ended with DEADLINE_EXCEEDED trailers
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
// bytes written and the read error (other than EOF) or the write error.
func copyBody(w io.Writer, fl http.Flusher, body io.Reader) (written int64, rerr, werr error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, err := body.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				return written, nil, werr
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return written, nil, nil
		}
		if err != nil {
			return written, err, nil
		}
	}
}

// fail answers a request the proxy could not forward and records why.
func (p *Proxy) fail(w http.ResponseWriter, x *exchange, grpc bool, start time.Time, err error) {
	rec := &x.rec
	k := proxyerr.KindOf(err)
	rec.Err, rec.ErrKind = err, k
	if p.draining.Load() {
		w.Header()["Connection"] = connectionClose
	}
	pipeline.Fail(rec, err, start)
	if k == proxyerr.Canceled {
		return // nothing can be sent; recorded as 499 like HTTP/1
	}
	rec.StatusCode, rec.GRPCStatus = writeError(w, grpc, k)
	if !grpc {
		rec.GRPCStatus = -1
		x.bytes = int64(len(pipeline.ErrorBody(k)))
	}
	x.tap.Response(rec.StatusCode, headerView(w.Header()))
}

// finish reports the exchange (and its route) and returns it to the pool.
func (p *Proxy) finish(x *exchange) {
	x.tap.End(&x.rec, x.bytes, x.reset)
	p.pipe.ObserveRoute(&x.req)
	if p.cfg.Observer != nil {
		p.cfg.Observer.ObserveHTTP(&x.rec)
	}
	*x = exchange{}
	exchanges.Put(x)
}
