package http1

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/weftmesh/weft/proxy/target"
)

// pools holds one fasthttp.HostClient (a keep-alive connection pool) per
// endpoint address.
type pools struct {
	cfg *Config
	mu  sync.RWMutex
	m   map[poolKey]*pool
}

type poolKey struct {
	addr     netip.AddrPort
	identity string // part of the key so mTLS endpoints never share plaintext pools
}

type pool struct {
	hc *fasthttp.HostClient
	// conns maps an upstream connection's local address to the connection,
	// so the response-header deadline can be lifted once headers arrived
	// (fasthttp keeps its read deadline for the whole streamed body).
	mu    sync.Mutex
	conns map[netip.AddrPort]*upConn
}

func newPools(cfg *Config) *pools { return &pools{cfg: cfg, m: map[poolKey]*pool{}} }

func (ps *pools) get(ep *target.Endpoint) *pool {
	k := poolKey{addr: ep.Addr, identity: ep.Identity}
	ps.mu.RLock()
	p := ps.m[k]
	ps.mu.RUnlock()
	if p != nil {
		return p
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p = ps.m[k]; p != nil {
		return p
	}
	p = &pool{conns: map[netip.AddrPort]*upConn{}}
	epCopy := *ep
	dialer := ps.cfg.Dialer
	p.hc = &fasthttp.HostClient{
		Addr: ep.Addr.String(),
		Dial: func(string) (net.Conn, error) {
			c, err := dialer.Dial(context.Background(), epCopy)
			if err != nil {
				return nil, err
			}
			return p.track(c), nil
		},
		MaxConns:                      ps.cfg.MaxConnsPerEndpoint,
		MaxIdleConnDuration:           ps.cfg.IdleTimeout,
		ReadTimeout:                   ps.cfg.ResponseTimeout,
		ReadBufferSize:                64 << 10,
		WriteBufferSize:               16 << 10,
		StreamResponseBody:            true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		MaxIdemponentCallAttempts:     2,
		RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
			// Only a request without a body, idempotent, on a pooled
			// connection the server closed, may go again.
			return false, attempts < 2 && !req.IsBodyStream() && (req.Header.IsGet() || req.Header.IsHead() || req.Header.IsOptions())
		},
	}
	ps.m[k] = p
	return p
}

func (ps *pools) close() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for k, p := range ps.m {
		p.hc.CloseIdleConnections()
		delete(ps.m, k)
	}
}

// upConn is an upstream connection registered in its pool.
type upConn struct {
	net.Conn
	p     *pool
	local netip.AddrPort
	once  sync.Once
}

func (p *pool) track(c net.Conn) net.Conn {
	ta, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		return c
	}
	u := &upConn{Conn: c, p: p, local: ta.AddrPort()}
	p.mu.Lock()
	p.conns[u.local] = u
	p.mu.Unlock()
	return u
}

func (u *upConn) Close() error {
	u.once.Do(func() {
		u.p.mu.Lock()
		if u.p.conns[u.local] == u {
			delete(u.p.conns, u.local)
		}
		u.p.mu.Unlock()
	})
	return u.Conn.Close()
}

// headersReceived lifts the response-header deadline from the connection
// whose local address is local, so a long streamed body is not cut off.
func (p *pool) headersReceived(local net.Addr) {
	ta, ok := local.(*net.TCPAddr)
	if !ok {
		return
	}
	p.mu.Lock()
	u := p.conns[ta.AddrPort()]
	p.mu.Unlock()
	if u != nil {
		u.Conn.SetReadDeadline(time.Time{})
	}
}
