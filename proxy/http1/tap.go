package http1

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/weftmesh/weft/proxy/proxyerr"
)

// tapState is an HTTP/1 request's tap state: the pipeline's Tapping and
// what the response's length needs, since fasthttp writes the response (a
// streamed body included) after the handler returned; the end is reported
// from connState, once it is written.
type tapState struct {
	responded bool
	// mark is conn.out when the response head was handed to fasthttp,
	// plus the head's length: what is written after it is the body.
	mark int64
	// length is the body length the response announced; -1 when unknown
	// (chunked or close-delimited).
	length int64
}

// tapBegin offers a routed (or unroutable) request to the tap; with no tap
// running it costs the pipeline's TapOn only.
func (p *Proxy) tapBegin(ctx *fasthttp.RequestCtx, c *conn, authority string, start time.Time) {
	if !p.pipe.TapOn() {
		return
	}
	c.ts = tapState{}
	p.pipe.TapBegin(&c.tap, &c.rec, "http", authority, c.RemoteAddr().String(),
		requestHeaders{&ctx.Request.Header}, start)
}

// tapResponse reports the response head the handler leaves to fasthttp:
// the upstream's, or the proxy's own answer.
func (c *conn) tapResponse(ctx *fasthttp.RequestCtx) {
	if !c.tap.Tapped() {
		return
	}
	resp := &ctx.Response
	c.tap.Response(resp.StatusCode(), responseHeaders{&resp.Header})
	c.ts.responded = true
	c.ts.length = int64(resp.Header.ContentLength())
	if !resp.IsBodyStream() {
		c.ts.length = int64(len(resp.Body()))
	}
	if st := resp.StatusCode(); ctx.IsHead() || st == fasthttp.StatusNoContent || st == fasthttp.StatusNotModified || st < 200 {
		c.ts.length = 0
	}
	if c.ts.length < 0 {
		c.ts.length = -1
	}
	c.ts.mark = c.out + int64(len(resp.Header.Header()))
}

// tapEnd reports the end of a tapped exchange once its response is written
// (or the connection closed): the body bytes written after the head, and
// a reset when fewer than announced went out.
func (c *conn) tapEnd() {
	if !c.tap.Tapped() {
		return
	}
	var body int64
	reset := false
	if c.ts.responded {
		body = max(c.out-c.ts.mark, 0)
		if c.ts.length >= 0 {
			reset = body < c.ts.length
			body = min(body, c.ts.length)
		}
	} else {
		reset = c.rec.ErrKind == proxyerr.Canceled
	}
	c.tap.End(&c.rec, body, reset)
}

// requestHeaders are a request's fields as received (pipeline.Headers).
type requestHeaders struct{ h *fasthttp.RequestHeader }

func (v requestHeaders) Range(f func(name, value string) bool) {
	for k, val := range v.h.AllInOrder() {
		if !f(b2s(k), b2s(val)) {
			return
		}
	}
}

// responseHeaders are a response's fields as they will be sent.
type responseHeaders struct{ h *fasthttp.ResponseHeader }

func (v responseHeaders) Range(f func(name, value string) bool) {
	for k, val := range v.h.All() {
		if !f(b2s(k), b2s(val)) {
			return
		}
	}
}
