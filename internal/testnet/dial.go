package testnet

import (
	"context"
	"net"
)

// Listen opens a listener inside the host's netns; accepted connections belong to that netns
// whatever goroutine serves them.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() (err error) {
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet listener (UDP) inside the host's netns.
func (h *Host) ListenPacket(network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Do(func() (err error) {
		pc, err = net.ListenPacket(network, address)
		return err
	})
	return pc, err
}

// DialContext dials from inside the host's netns. Its signature fits http.Transport.DialContext,
// grpc.WithContextDialer (via a small adapter) and fasthttp dialers, so ordinary clients can run
// "in" a host from any goroutine.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}
