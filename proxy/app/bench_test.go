package app

import (
	"context"
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/weftmesh/weft/proxy/internal/benchcpu"
)

// BenchmarkProxyHTTP1 measures one keep-alive request through the whole
// chain (fasthttp client → proxy → fasthttp upstream). allocs/op covers the
// client, the proxy and the upstream in this process.
func BenchmarkProxyHTTP1(b *testing.B) {
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
	b.ReportAllocs()
	stop := benchcpu.Start(b)
	for b.Loop() {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatal(err, resp.StatusCode())
		}
	}
	stop()
}

// BenchmarkInboundRoute is the inbound routing decision.
func BenchmarkInboundRoute(b *testing.B) {
	r := &inboundRouter{}
	orig := netipMust("10.0.0.1:8080")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Route(context.Background(), "web.demo:8080", orig); err != nil {
			b.Fatal(err)
		}
	}
}
