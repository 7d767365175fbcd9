package http1

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/proxy/internal/benchcpu"
	"github.com/weftmesh/weft/proxy/tap"
	"github.com/weftmesh/weft/proxy/target"
)

type fixedRouter struct{ ep target.Endpoint }

func (r fixedRouter) Route(context.Context, string, netip.AddrPort) (target.Endpoint, error) {
	return r.ep, nil
}

type plainDialer struct{}

func (plainDialer) Dial(ctx context.Context, ep target.Endpoint) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", ep.Addr.String())
}

func listenLoopback(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	return ln
}

// benchTap sends keep-alive requests through an HTTP/1 proxy with no Tap
// hook (off), a hub with no tap open (idle), or one tap taking every
// request with its events drained (all).
func benchTap(b *testing.B, mode string) {
	up := listenLoopback(b)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Set-Cookie", "id=1")
		ctx.SetBodyString("ok")
	}}
	go srv.Serve(up)
	b.Cleanup(func() { srv.Shutdown() })
	cfg := Config{Router: fixedRouter{target.Endpoint{Addr: up.Addr().(*net.TCPAddr).AddrPort()}}, Dialer: plainDialer{}}
	if mode != "off" {
		hub := tap.NewHub(tap.Config{DefaultRPS: 1 << 30, MaxRPS: 1 << 30})
		cfg.Tap = hub
		if mode == "all" {
			t, err := hub.Open(&tapv1.ObserveRequest{MaxRps: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			stop := make(chan struct{})
			go func() {
				for {
					select {
					case <-t.Events():
					case <-stop:
						return
					}
				}
			}()
			b.Cleanup(func() { close(stop); t.Close() })
		}
	}
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	ln := listenLoopback(b)
	orig := up.Addr().(*net.TCPAddr).AddrPort()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.ServeConn(c, orig)
		}
	}()
	c := &fasthttp.HostClient{Addr: ln.Addr().String()}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI("http://" + ln.Addr().String() + "/bench")
	req.Header.Set("Authorization", "Bearer secret")
	req.Header.Set("Accept", "*/*")
	b.ReportAllocs()
	stop := benchcpu.Start(b)
	for b.Loop() {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			b.Fatal(err, resp.StatusCode())
		}
	}
	stop()
}

func BenchmarkHTTP1TapOff(b *testing.B)  { benchTap(b, "off") }
func BenchmarkHTTP1TapIdle(b *testing.B) { benchTap(b, "idle") }
func BenchmarkHTTP1TapAll(b *testing.B)  { benchTap(b, "all") }
