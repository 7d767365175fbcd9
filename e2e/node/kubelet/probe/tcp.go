package probe

import (
	"context"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// TCPSocket succeeds when a TCP connection can be opened.
func TCPSocket(ctx context.Context, a *corev1.TCPSocketAction, t Target) (Result, string) {
	port, err := ResolvePort(a.Port, t.Ports)
	if err != nil {
		return Failure, err.Error()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host(a.Host, t), strconv.Itoa(port)))
	if err != nil {
		return Failure, err.Error()
	}
	_ = conn.Close()
	return Success, ""
}
