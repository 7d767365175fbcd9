// Package dial opens the proxy's connections to endpoints. It is the one
// place a later issue turns into mTLS for meshed endpoints (ep.Identity set).
package dial

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

// Dialer connects to endpoints in plaintext TCP.
type Dialer struct {
	// Timeout bounds one connect; zero means 1s.
	Timeout time.Duration
	// KeepAlive is the TCP keep-alive period of upstream connections; zero
	// means 30s.
	KeepAlive time.Duration
}

// Dial connects to ep.Addr. Failures are *proxyerr.Error: Timeout when the
// connect timed out, Connect otherwise.
func (d *Dialer) Dial(ctx context.Context, ep target.Endpoint) (net.Conn, error) {
	to := d.Timeout
	if to <= 0 {
		to = time.Second
	}
	ka := d.KeepAlive
	if ka <= 0 {
		ka = 30 * time.Second
	}
	nd := net.Dialer{Timeout: to, KeepAlive: ka}
	c, err := nd.DialContext(ctx, "tcp", ep.Addr.String())
	if err != nil {
		return nil, Classify(fmt.Errorf("connect %s: %w", ep.Addr, err))
	}
	return c, nil
}

// Classify wraps a connect error into its proxyerr kind.
func Classify(err error) error {
	var pe *proxyerr.Error
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return proxyerr.New(proxyerr.Canceled, err)
	}
	var t interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &t) && t.Timeout()) {
		return proxyerr.New(proxyerr.Timeout, err)
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return proxyerr.New(proxyerr.Connect, err)
	}
	return proxyerr.New(proxyerr.Connect, err)
}
