package dial

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

func TestDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := netip.MustParseAddrPort(ln.Addr().String())
	closedLn, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := netip.MustParseAddrPort(closedLn.Addr().String())
	closedLn.Close()
	defer ln.Close()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	tests := []struct {
		name string
		ctx  context.Context
		addr netip.AddrPort
		want proxyerr.Kind
		ok   bool
	}{
		{"connects", context.Background(), open, 0, true},
		{"refused", context.Background(), closed, proxyerr.Connect, false},
		{"deadline", expired, open, proxyerr.Timeout, false},
	}
	d := &Dialer{Timeout: time.Second}
	for _, tt := range tests {
		c, err := d.Dial(tt.ctx, target.Endpoint{Addr: tt.addr})
		if tt.ok {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				continue
			}
			c.Close()
			continue
		}
		if k := proxyerr.KindOf(err); err == nil || k != tt.want {
			t.Errorf("%s: err %v kind %v, want %v", tt.name, err, k, tt.want)
		}
	}
}
