package app

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/weftmesh/weft/proxy/config"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
	"github.com/weftmesh/weft/proxy/internal/benchcpu"
)

// benchTapHTTP1 is BenchmarkProxyHTTP1 on a proxy with identity and its tap
// server on: no tap open (the cost every request pays once tap is
// configured), or one real tap client streaming over mTLS with the
// largest rate the proxy grants (1000 events/s: the other requests are
// matched and refused by the rate limit).
func benchTapHTTP1(b *testing.B, open bool) {
	ln := listen(b)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown() })
	ca := identitytest.NewCA(b, "")
	svc := identitytest.StartService(b, ca, identitytest.Options{Users: identitytest.Reviewer{"tok-web": "system:serviceaccount:demo:web"}})
	h := newHarness(b, func(c *config.Config) {
		c.Identity = identityFor(b, ca, svc, webID, "tok-web")
		c.TapAddr = "127.0.0.1:0"
		c.TapAuthorizedIDs = []string{vizID}
	})
	waitReady(b, h)
	if open {
		observe(b, dialTap(b, ca, h.TapAddr().String(), vizID, webID), h, 0)
	}
	h.to(ln.Addr().String())
	c := &fasthttp.HostClient{Addr: ln.Addr().String(), Dial: func(string) (net.Conn, error) {
		return net.Dial("tcp", h.outbound())
	}}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("http://" + ln.Addr().String() + "/bench")
	b.ReportAllocs()
	b.ResetTimer()
	stop := benchcpu.Start(b)
	for b.Loop() {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatal(err, resp.StatusCode())
		}
	}
	stop()
}

func BenchmarkProxyHTTP1TapIdle(b *testing.B) { benchTapHTTP1(b, false) }
func BenchmarkProxyHTTP1TapOpen(b *testing.B) { benchTapHTTP1(b, true) }
