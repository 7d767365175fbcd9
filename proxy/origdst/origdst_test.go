package origdst

import (
	"net"
	"strings"
	"testing"
)

// SO_ORIGINAL_DST itself is exercised with real iptables rules (IPv4 and
// IPv6) by proxy/cmd/weft-proxy's netns test; here, the error paths.
func TestGetErrors(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := net.Dial(network, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// Not redirected: without conntrack the kernel refuses; with it
		// loaded (iptables rules elsewhere on the machine) the "original"
		// destination is the connection's own local address.
		if ap, err := Get(s); err != nil && !strings.Contains(err.Error(), "original destination") {
			t.Errorf("%s: Get error %v does not say what failed", network, err)
		} else if err == nil && ap.String() != ln.Addr().String() {
			t.Errorf("%s: Get on a non-redirected conn = %v, want an error or %s", network, ap, ln.Addr())
		}
		ap, err := Local(s)
		if err != nil || ap.String() != ln.Addr().String() {
			t.Errorf("%s: Local = %v %v, want %s", network, ap, err, ln.Addr())
		}
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := Get(a); err == nil {
		t.Error("Get on a pipe succeeded")
	}
}
