package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/net/http2"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

// upstreams holds one HTTP/2 transport per endpoint identity. A transport
// pools its connections by endpoint address, so the pool key is
// (identity, addr): requests to one endpoint share its connections across
// client connections, and a new connection is opened only when the pooled
// ones are at the endpoint's stream limit.
type upstreams struct {
	cfg *Config

	mu     sync.Mutex
	byID   map[string]*http2.Transport
	closed bool
}

func newUpstreams(cfg *Config) *upstreams {
	return &upstreams{cfg: cfg, byID: make(map[string]*http2.Transport)}
}

var errUpstreamsClosed = errors.New("upstream pools closed")

// transport returns the transport for endpoints with the given identity.
func (u *upstreams) transport(identity string) (*http2.Transport, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, errUpstreamsClosed
	}
	if t, ok := u.byID[identity]; ok {
		return t, nil
	}
	t := &http2.Transport{
		AllowHTTP:          true,
		DisableCompression: true,
		MaxHeaderListSize:  u.cfg.MaxHeaderListSize,
		MaxReadFrameSize:   u.cfg.MaxReadFrameSize,
		IdleConnTimeout:    u.cfg.UpstreamIdleTimeout,
		ReadIdleTimeout:    u.cfg.PingInterval,
		PingTimeout:        u.cfg.PingTimeout,
		DialTLSContext: func(ctx context.Context, _, addr string, _ *tls.Config) (net.Conn, error) {
			return u.dial(ctx, identity, addr)
		},
	}
	u.byID[identity] = t
	return t, nil
}

type endpointKey struct{}

// withEndpoint stores the routed endpoint for the dialer.
func withEndpoint(ctx context.Context, ep *target.Endpoint) context.Context {
	return context.WithValue(ctx, endpointKey{}, ep)
}

// dial opens a connection to addr through the configured Dialer. The
// endpoint comes from the request that caused the dial; when the transport
// dials on another context it is rebuilt from addr and identity.
func (u *upstreams) dial(ctx context.Context, identity, addr string) (net.Conn, error) {
	var ep target.Endpoint
	if p, ok := ctx.Value(endpointKey{}).(*target.Endpoint); ok && p.Identity == identity && p.Addr.String() == addr {
		ep = *p
	} else {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, proxyerr.New(proxyerr.Connect, fmt.Errorf("dial %s: %w", addr, err))
		}
		ep = target.Endpoint{Addr: ap, Identity: identity, Protocol: target.HTTP2}
	}
	ctx, cancel := context.WithTimeout(ctx, u.cfg.DialTimeout)
	defer cancel()
	var (
		c   net.Conn
		err error
	)
	if u.cfg.Dialer != nil {
		c, err = u.cfg.Dialer.Dial(ctx, ep)
	} else {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		var pe *proxyerr.Error
		if errors.As(err, &pe) {
			return nil, err
		}
		kind := proxyerr.Connect
		if proxyerr.KindOf(err) == proxyerr.Timeout {
			kind = proxyerr.Timeout
		}
		return nil, proxyerr.New(kind, fmt.Errorf("dial %s: %w", addr, err))
	}
	return c, nil
}

// close closes every pooled connection; later requests fail.
func (u *upstreams) close() {
	u.mu.Lock()
	u.closed = true
	ts := u.byID
	u.byID = map[string]*http2.Transport{}
	u.mu.Unlock()
	for _, t := range ts {
		t.CloseIdleConnections()
	}
}
