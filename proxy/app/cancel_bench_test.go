package app

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/weftmesh/weft/proxy/internal/benchcpu"
)

// BenchmarkProxyHTTP1Parallel is BenchmarkProxyHTTP1 with concurrent
// keep-alive client connections (the upstream pool's bind lock is shared).
func BenchmarkProxyHTTP1Parallel(b *testing.B) {
	ln := listen(b)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown() })
	h := newHarness(b, nil)
	h.to(ln.Addr().String())
	c := &fasthttp.HostClient{Addr: ln.Addr().String(), MaxConns: 64, Dial: func(string) (net.Conn, error) {
		return net.Dial("tcp", h.outbound())
	}}
	b.ReportAllocs()
	b.SetParallelism(8)
	stop := benchcpu.Start(b)
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + ln.Addr().String() + "/bench")
		for pb.Next() {
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
				b.Fatal(err, resp.StatusCode())
			}
		}
	})
	stop()
}

// BenchmarkProxyHTTP1NewConn sends every request on a new client
// connection (the per-connection cost: detection, and the epoll
// registration of the cancellation watch).
func BenchmarkProxyHTTP1NewConn(b *testing.B) {
	ln := listen(b)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown() })
	h := newHarness(b, nil)
	h.to(ln.Addr().String())
	c := &fasthttp.HostClient{Addr: ln.Addr().String(), Dial: func(string) (net.Conn, error) {
		return net.Dial("tcp", h.outbound())
	}}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("http://" + ln.Addr().String() + "/bench")
	req.SetConnectionClose()
	b.ReportAllocs()
	stop := benchcpu.Start(b)
	for b.Loop() {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatal(err, resp.StatusCode())
		}
	}
	stop()
}
