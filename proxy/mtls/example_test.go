package mtls_test

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/weftmesh/weft/proxy/detect"
	"github.com/weftmesh/weft/proxy/identity"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/target"
)

// How the proxy core wires the outbound side: one Dialer, one Carrier per
// layer.
func ExampleDialer() {
	var m *identity.Manager // identity.New(cfg) + m.Start(ctx), see docs/proxy-mtls.md
	d := &mtls.Dialer{SVIDs: m, Bundle: m, ConnectTimeout: time.Second}
	h2Dialer := d.Carrying(target.HTTP2) // for h2.Config.Dialer
	_ = h2Dialer
	_ = d.Carrying(target.HTTP1)  // for http1.Config.Dialer
	_ = d.Carrying(target.Opaque) // for TCP forwarding
}

// How the proxy core wires the inbound side after detection.
func ExampleTerminator() {
	var m *identity.Manager
	t := &mtls.Terminator{SVIDs: m, Bundle: m}
	policy, _ := mtls.ParsePolicy("all-unauthenticated", "8080")

	serve := func(c net.Conn, orig netip.AddrPort) {
		buf := make([]byte, detect.BufferSize)
		res, err := detect.Detect(c, time.Second, buf)
		if err != nil {
			c.Close()
			return
		}
		dc := detect.NewConn(c, res.Peeked, nil)
		if res.Protocol == detect.TLS {
			rc, weft, err := mtls.Sniff(dc, time.Second)
			if err != nil {
				c.Close()
				return
			}
			if weft {
				sc, err := t.Terminate(context.Background(), rc)
				if err != nil || !policy.Allows(sc.Header.Port, true) {
					c.Close() // count proxyerr.Unauthenticated
					return
				}
				app := netip.AddrPortFrom(orig.Addr(), sc.Header.Port)
				_ = app // serve sc by sc.Header.Protocol towards app; labels from mtls.FillPeer(sc, &peer)
				return
			}
			_ = rc // the application's own TLS: forward rc opaque
			return
		}
		if !policy.Allows(orig.Port(), false) {
			c.Close() // count proxyerr.Unauthenticated
			return
		}
		_ = dc // plaintext: serve as before
	}
	_ = serve
}
