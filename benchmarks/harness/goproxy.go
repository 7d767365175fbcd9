package harness

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// RunGoProxy is the "Go httputil.ReverseProxy" peer: it listens on listen and forwards to upstream
// (http1: ReverseProxy with keep-alive pooling; grpc: h2c in, h2c out with trailers; tcp: byte
// copy) until ctx ends.
func RunGoProxy(ctx context.Context, kind Kind, listen, upstream string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	go func() { <-ctx.Done(); ln.Close() }()
	switch kind {
	case KindTCP:
		for {
			c, err := ln.Accept()
			if err != nil {
				return nil
			}
			go pipe(c, upstream)
		}
	case KindHTTP, KindGRPC:
		u := &url.URL{Scheme: "http", Host: upstream}
		rp := httputil.NewSingleHostReverseProxy(u)
		var h http.Handler = rp
		if kind == KindHTTP {
			rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
		} else {
			rp.Transport = &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}}
			h = h2c.NewHandler(rp, &http2.Server{})
		}
		srv := &http.Server{Handler: h}
		go func() { <-ctx.Done(); srv.Close() }()
		if err := srv.Serve(ln); err != http.ErrServerClosed {
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown kind %q", kind)
}

func pipe(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(u, c)
		u.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(c, u)
	c.(*net.TCPConn).CloseWrite()
	<-done
}
