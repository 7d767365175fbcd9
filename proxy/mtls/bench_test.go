package mtls_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/identity/identitytest"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/target"
)

// benchPeer terminates connections and answers one byte on each.
func benchPeer(b *testing.B, term *mtls.Terminator) uint16 {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rc, weft, err := mtls.Sniff(c, 5*time.Second)
				if err != nil || !weft {
					return
				}
				sc, err := term.Terminate(context.Background(), rc)
				if err != nil {
					return
				}
				sc.Write([]byte{1})
				io.Copy(io.Discard, sc)
			}()
		}
	}()
	return uint16(lis.Addr().(*net.TCPAddr).Port)
}

// BenchmarkHandshake measures one connection: TCP connect, TLS 1.3
// handshake (both sides), header, one byte back, close.
func BenchmarkHandshake(b *testing.B) {
	ca := identitytest.NewCA(b, "")
	for _, bc := range []struct {
		name  string
		cache int
	}{{"full", -1}, {"resumed", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			term := &mtls.Terminator{SVIDs: ca.SVID(b, booksID, time.Hour), Bundle: ca.Bundle()}
			d := &mtls.Dialer{SVIDs: ca.SVID(b, webID, time.Hour), Bundle: ca.Bundle(), InboundPort: benchPeer(b, term), SessionCacheSize: bc.cache}
			ep := endpoint(8080, booksID, target.HTTP1)
			one := make([]byte, 1)
			b.ReportAllocs()
			for b.Loop() {
				c, err := d.Dial(context.Background(), ep)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, one); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			s := d.Stats()
			b.ReportMetric(float64(s.Resumed)/float64(s.Handshakes), "resumed/op")
		})
	}
}

func BenchmarkHeader(b *testing.B) {
	var dst [mtls.HeaderLen]byte
	h := mtls.Header{Port: 8080, Protocol: target.HTTP2}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = mtls.AppendHeader(dst[:0], h)
		}
	})
	enc := mtls.AppendHeader(nil, h)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := mtls.ParseHeader(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkOffersWeft(b *testing.B) {
	hello := clientHello(b, []string{mtls.ALPN})
	b.ReportAllocs()
	for b.Loop() {
		if w, _ := mtls.OffersWeft(hello); !w {
			b.Fatal("not weft")
		}
	}
}
