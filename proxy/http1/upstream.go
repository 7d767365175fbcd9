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
	// reqs maps a request being sent (guarded by mu) to its client
	// connection's watch, for the bind transport.
	reqs map[*fasthttp.Request]*watch

	// The bind lock hands the identity of the request to the upstream
	// connection fasthttp picks for it: the transport takes it before
	// fasthttp acquires a connection, and the connection's first call on
	// the request's goroutine (Dial for a new one, LocalAddr from
	// Response.ParseNetConn for a pooled one) binds itself to bw and
	// releases it. Only the holder touches bw.
	bmu sync.Mutex
	bw  *watch
}

// bindTransport is the pools' fasthttp transport: DefaultTransport with the
// bind lock around the connection's acquisition.
type bindTransport struct{ p *pool }

func (t bindTransport) RoundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (bool, error) {
	t.p.mu.Lock()
	w := t.p.reqs[req]
	t.p.mu.Unlock()
	if w == nil {
		w = &watch{} // not sent through do: nothing to cancel, but keep the lock's protocol
	}
	if w.isCanceled() {
		return false, errCanceled
	}
	t.p.bmu.Lock()
	t.p.bw, w.held = w, true
	retry, err := fasthttp.DefaultTransport.RoundTrip(hc, req, resp)
	if w.held { // no connection was acquired
		t.p.release(w)
	}
	if err != nil && w.isCanceled() {
		return false, errCanceled
	}
	return retry, err
}

// release gives the bind lock back; only its holder (w's goroutine) calls it.
func (p *pool) release(w *watch) {
	w.held = false
	p.bw = nil
	p.bmu.Unlock()
}

// claim binds u to the bind lock's holder and releases the lock. It runs on
// the holder's goroutine.
func (p *pool) claim(u *upConn) {
	w := p.bw
	if w == nil || !w.held {
		return
	}
	p.release(w)
	w.bind(u)
}

// do sends req on the pool with the client connection's watch w: when the
// client goes away, the upstream connection is closed and do returns an
// error (w.isCanceled() is then true). A zero deadline means none.
func (p *pool) do(w *watch, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	p.mu.Lock()
	p.reqs[req] = w
	p.mu.Unlock()
	var err error
	if deadline.IsZero() {
		err = p.hc.Do(req, resp)
	} else {
		err = p.hc.DoDeadline(req, resp, deadline)
	}
	p.mu.Lock()
	delete(p.reqs, req)
	p.mu.Unlock()
	return err
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
	p = &pool{conns: map[netip.AddrPort]*upConn{}, reqs: map[*fasthttp.Request]*watch{}}
	epCopy := *ep
	dialer := ps.cfg.Dialer
	p.hc = &fasthttp.HostClient{
		Addr:      ep.Addr.String(),
		Transport: bindTransport{p},
		// MaxConnWaitTimeout stays 0: fasthttp then never dials on a
		// goroutine of its own (dialConnFor), so Dial always runs on the
		// request's goroutine, which holds the bind lock.
		Dial: func(string) (net.Conn, error) {
			// Release the bind lock before dialing so dials are not
			// serialized.
			w := p.bw
			if w != nil && w.held {
				p.release(w)
			}
			dial := func() (net.Conn, error) { return dialer.Dial(context.Background(), epCopy) }
			c, err := dial()
			if err != nil {
				return nil, err
			}
			u := p.track(c, dial)
			u.fresh = true
			if w != nil {
				w.bind(u)
			}
			return u, nil
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

	mu     sync.Mutex // guards Conn, local and owner against Close and abort
	local  netip.AddrPort
	closed bool
	// owner is the client connection whose request uses this connection
	// now (or last did); abort only closes the connection for its owner.
	owner *watch
	// fresh is set by Dial: the next LocalAddr (Response.ParseNetConn of
	// the request that dialed it) must not claim the bind lock.
	fresh bool

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

func (p *pool) track(c net.Conn, dial func() (net.Conn, error)) *upConn {
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

// LocalAddr is called by fasthttp on the request's goroutine right after it
// acquired this connection (Response.ParseNetConn): the pooled connection
// binds itself to the request there.
func (u *upConn) LocalAddr() net.Addr {
	if u.fresh {
		u.fresh = false
	} else {
		u.p.claim(u)
	}
	return u.cur().LocalAddr()
}

// abort closes the connection under the request of w, whose client went
// away: the upstream sees its request cancelled and the blocked exchange
// fails. A connection already serving another client's request is left
// alone; an idle one closed here is replaced by a fresh dial on its next
// use (the liveness peek).
func (u *upConn) abort(w *watch) {
	u.mu.Lock()
	if u.owner != w || u.closed {
		u.mu.Unlock()
		return
	}
	c := u.Conn
	u.mu.Unlock()
	c.Close()
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
