package h2

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
)

// copyBufSize is the size of the pooled buffers response bodies are copied
// through; flow control bounds what is buffered beyond it.
const copyBufSize = 32 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

var records = sync.Pool{New: func() any { return new(record.HTTP) }}

var connectionClose = []string{"close"}

// connHandler handles the requests of one client connection.
type connHandler struct {
	p    *Proxy
	orig netip.AddrPort
}

// errAbort resets the client stream (RST_STREAM INTERNAL_ERROR): x/net's
// server resets the stream of a handler that panics with it, without logging.
var errAbort = http.ErrAbortHandler

// ServeHTTP forwards one request: route, send upstream with the body
// streamed, copy the response with its trailers, report one record.
func (h *connHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.p
	p.stats.requests.Add(1)
	start := time.Now()
	grpc := isGRPC(r.Header)
	rec := records.Get().(*record.HTTP)
	*rec = record.HTTP{Direction: p.cfg.Direction, Method: r.Method, Path: r.URL.Path, GRPCStatus: -1}
	defer p.finish(rec)

	ctx := r.Context()
	ep, err := p.cfg.Router.Route(ctx, r.Host, h.orig)
	if err != nil {
		p.fail(w, rec, grpc, start, err)
		return
	}
	addr := p.addrs.get(ep.Addr)
	rec.Peer = ep.Peer
	if rec.Peer.Authority == "" {
		rec.Peer.Authority = r.Host
	}
	if rec.Peer.TargetAddr == "" {
		rec.Peer.TargetAddr = addr
	}
	t, err := p.up.transport(ep.Identity)
	if err != nil {
		p.fail(w, rec, grpc, start, proxyerr.New(proxyerr.Overloaded, err))
		return
	}

	// The request's header map is ours: strip it in place and send it on.
	stripHopByHop(r.Header)
	if _, ok := r.Header["User-Agent"]; !ok {
		r.Header["User-Agent"] = nil // no Go default user agent
	}
	out := r.WithContext(withEndpoint(ctx, &ep))
	out.URL = &url.URL{Scheme: "http", Host: addr, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.RequestURI = ""
	if r.ContentLength == 0 && r.Body == http.NoBody {
		out.Body = nil
	}

	resp, err := t.RoundTrip(out)
	if err != nil {
		if ctx.Err() != nil {
			rec.Err, rec.ErrKind = ctx.Err(), proxyerr.Canceled
			return
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

// finish reports rec and returns it to the pool.
func (p *Proxy) finish(rec *record.HTTP) {
	if p.cfg.Observer != nil {
		p.cfg.Observer.ObserveHTTP(rec)
	}
	*rec = record.HTTP{}
	records.Put(rec)
}
