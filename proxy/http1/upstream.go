package http1

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

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
			dial := func() (net.Conn, error) { return dialer.Dial(context.Background(), epCopy) }
			c, err := dial()
			if err != nil {
				return nil, err
			}
			return p.track(c, dial), nil
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
//
// Before a request is written on a reused connection it checks, with a
// non-blocking peek, that the upstream has not closed it while it sat idle
// in the pool (servers close idle keep-alive connections at will: Node after
// 5s). A closed connection is replaced by a fresh dial before any byte of
// the request is written, so even a streamed POST, which fasthttp never
// retries, does not fail.
type upConn struct {
	net.Conn
	p    *pool
	dial func() (net.Conn, error)

	mu     sync.Mutex // guards Conn and local against Close
	local  netip.AddrPort
	closed bool

	// reused is set once a response was read: the next Write starts a
	// request on a connection that sat in the pool.
	reused bool

	// The liveness peek, prepared once per connection so it does not
	// allocate per request.
	raw     syscall.RawConn
	peek    func(fd uintptr) bool
	peekBuf [1]byte
	peekOK  bool
}

func (p *pool) track(c net.Conn, dial func() (net.Conn, error)) net.Conn {
	u := &upConn{Conn: c, p: p, dial: dial}
	u.peek = func(fd uintptr) bool {
		r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&u.peekBuf[0])), 1,
			unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		// Nothing to read yet is the only sign of a healthy idle connection.
		u.peekOK = int(r) < 0 || (errno == unix.EAGAIN || errno == unix.EWOULDBLOCK)
		return true // never wait
	}
	u.register(c)
	return u
}

// alive peeks at the idle connection without blocking: EOF or unexpected
// bytes mean the upstream is done with it.
func (u *upConn) alive() bool {
	if u.raw == nil {
		return true
	}
	u.peekOK = false
	if err := u.raw.Read(u.peek); err != nil {
		return false
	}
	return u.peekOK
}

func (u *upConn) register(c net.Conn) {
	u.raw = nil
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			u.raw = rc
		}
	}
	ta, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		return
	}
	u.p.mu.Lock()
	if u.local.IsValid() && u.p.conns[u.local] == u {
		delete(u.p.conns, u.local)
	}
	u.local = ta.AddrPort()
	u.p.conns[u.local] = u
	u.p.mu.Unlock()
}

func (u *upConn) Read(b []byte) (int, error) {
	u.reused = true
	return u.Conn.Read(b)
}

func (u *upConn) Write(b []byte) (int, error) {
	if u.reused {
		u.reused = false
		if !u.alive() {
			if err := u.redial(); err != nil {
				return 0, err
			}
		}
	}
	return u.Conn.Write(b)
}

func (u *upConn) redial() error {
	c, err := u.dial()
	if err != nil {
		return err
	}
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		c.Close()
		return net.ErrClosed
	}
	old := u.Conn
	u.Conn = c
	u.mu.Unlock()
	old.Close()
	u.register(c)
	return nil
}

func (u *upConn) SetDeadline(t time.Time) error      { return u.cur().SetDeadline(t) }
func (u *upConn) SetReadDeadline(t time.Time) error  { return u.cur().SetReadDeadline(t) }
func (u *upConn) SetWriteDeadline(t time.Time) error { return u.cur().SetWriteDeadline(t) }

func (u *upConn) cur() net.Conn {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.Conn
}

func (u *upConn) Close() error {
	u.mu.Lock()
	u.closed = true
	c := u.Conn
	u.mu.Unlock()
	u.p.mu.Lock()
	if u.p.conns[u.local] == u {
		delete(u.p.conns, u.local)
	}
	u.p.mu.Unlock()
	return c.Close()
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
		u.SetReadDeadline(time.Time{})
	}
}
