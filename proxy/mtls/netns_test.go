package mtls_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/weftmesh/weft/internal/testnet"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/target"
)

// Two hosts in network namespaces: the client proxy in "web" dials the
// endpoint books:8080 with an identity; the connection lands on books' inbound
// port 4143 (not 8080), is terminated there and forwarded to the app on the
// port the header names. IPv4 and IPv6.
func TestAcrossNamespaces(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	n := testnet.New(t)
	web, books := n.AddHost(t, "wmtweb"), n.AddHost(t, "wmtbooks")
	term := &mtls.Terminator{SVIDs: ca.SVID(t, booksID, time.Hour), Bundle: ca.Bundle()}
	d := &mtls.Dialer{SVIDs: ca.SVID(t, webID, time.Hour), Bundle: ca.Bundle()}

	for _, ip := range []netip.Addr{books.IP(), books.IP6()} {
		t.Run(ip.String(), func(t *testing.T) {
			// The app: echo, then close after the client half-closes.
			app, err := books.Listen("tcp", netip.AddrPortFrom(ip, 8080).String())
			if err != nil {
				t.Fatal(err)
			}
			defer app.Close()
			go func() {
				for {
					c, err := app.Accept()
					if err != nil {
						return
					}
					go func() { io.Copy(c, c); c.Close() }()
				}
			}()
			// The inbound proxy: terminate and forward to ip:<header port>.
			inbound, err := books.Listen("tcp", netip.AddrPortFrom(ip, mtls.DefaultInboundPort).String())
			if err != nil {
				t.Fatal(err)
			}
			defer inbound.Close()
			clientIDs := make(chan string, 1)
			go func() {
				c, err := inbound.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				rc, weft, err := mtls.Sniff(c, time.Second)
				if err != nil || !weft {
					t.Errorf("sniff: weft=%v err=%v", weft, err)
					return
				}
				sc, err := term.Terminate(context.Background(), rc)
				if err != nil {
					t.Error(err)
					return
				}
				clientIDs <- sc.ClientID().String()
				var up net.Conn
				if err := books.Do(func() (err error) {
					up, err = net.Dial("tcp", netip.AddrPortFrom(ip, sc.Header.Port).String())
					return err
				}); err != nil {
					t.Error(err)
					return
				}
				defer up.Close()
				go func() { io.Copy(up, sc); up.(*net.TCPConn).CloseWrite() }()
				io.Copy(sc, up)
				sc.CloseWrite()
			}()

			var c net.Conn
			if err := web.Do(func() (err error) {
				c, err = d.Dial(context.Background(), target.Endpoint{Addr: netip.AddrPortFrom(ip, 8080), Identity: booksID, Protocol: target.Opaque})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := <-clientIDs; got != webID {
				t.Fatalf("client id %s", got)
			}
			msg := bytes.Repeat([]byte("weft "), 20000)
			go func() {
				c.Write(msg)
				c.(interface{ CloseWrite() error }).CloseWrite()
			}()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo: %d bytes (%v), want %d", len(got), err, len(msg))
			}
		})
	}
}
