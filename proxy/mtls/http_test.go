package mtls_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"

	"github.com/weftmesh/weft/proxy/identity/identitytest"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/target"
)

// The libraries the proxy layers use run unchanged over mTLS conns: x/net
// HTTP/2 (h2c framing inside weft's TLS, ALPN weft.io/v1) and fasthttp.
func TestHTTPLibrariesOverMTLS(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	p := startPeer(t, ca.SVID(t, booksID, time.Hour), ca.Bundle())
	d := &mtls.Dialer{SVIDs: ca.SVID(t, webID, time.Hour), Bundle: ca.Bundle(), InboundPort: p.port()}
	go func() {
		for a := range p.conns {
			if a.sc == nil {
				continue
			}
			sc := a.sc
			switch sc.Header.Protocol {
			case target.HTTP2:
				go (&http2.Server{}).ServeConn(sc, &http2.ServeConnOpts{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprintf(w, "h2 %s from %s", r.URL.Path, sc.ClientID())
				})})
			case target.HTTP1:
				go fasthttp.ServeConn(sc, func(ctx *fasthttp.RequestCtx) {
					fmt.Fprintf(ctx, "h1 %s from %s", ctx.Path(), sc.ClientID())
				})
			}
		}
	}()
	ep := endpoint(8080, booksID, target.Unknown)

	h2d := d.Carrying(target.HTTP2)
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			return h2d.Dial(ctx, ep)
		},
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := 0; i < 5; i++ {
		resp, err := hc.Get(fmt.Sprintf("http://books.demo:8080/h2/%d", i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("h2 /h2/%d from %s", i, webID); string(b) != want {
			t.Fatalf("h2: %q, want %q", b, want)
		}
	}

	h1d := d.Carrying(target.HTTP1)
	fc := &fasthttp.HostClient{Addr: "books.demo:8080", Dial: func(string) (net.Conn, error) {
		return h1d.Dial(context.Background(), ep)
	}}
	for i := 0; i < 5; i++ {
		code, body, err := fc.GetTimeout(nil, fmt.Sprintf("http://books.demo:8080/h1/%d", i), 10*time.Second)
		if err != nil || code != 200 || !strings.HasPrefix(string(body), fmt.Sprintf("h1 /h1/%d from %s", i, webID)) {
			t.Fatalf("h1: %d %q %v", code, body, err)
		}
	}
	// One connection per protocol: HTTP/2 multiplexes, fasthttp keeps alive.
	if s := d.Stats(); s.Handshakes != 2 {
		t.Fatalf("handshakes %d, want 2 (pooled)", s.Handshakes)
	}
}
