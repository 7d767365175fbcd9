// Package http1 proxies HTTP/1.x on fasthttp: keep-alive on both sides,
// pooled upstream connections, request and response bodies streamed with
// bounded buffers, Expect: 100-continue, Upgrade (WebSocket) as a byte
// tunnel, RFC 9110 hop-by-hop header handling with header case preserved,
// and request-smuggling defences fasthttp does not apply by itself.
package http1

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// Config configures a Proxy. Router and Dialer are required.
type Config struct {
	Direction record.Direction
	Router    target.Router
	Dialer    target.Dialer
	// Observer receives records; nil records nothing. When it also
	// implements RouteObserver it gets the rt_route records.
	Observer target.Observer
	// Profiles looks up request profiles (routes, timeouts, retries); nil
	// means none (inbound, static discovery, pass-through).
	Profiles target.Profiles
	// Tap receives the tapped exchanges; nil taps nothing. Upgraded
	// (WebSocket) exchanges are not tapped.
	Tap pipeline.Tap
	// ErrorCounter counts protocol errors fasthttp answers itself (400,
	// 431); nil counts nothing.
	ErrorCounter func(record.Direction, error)
	// MaxHeaderBytes bounds a request head (431 beyond); 0 means 16 KiB.
	MaxHeaderBytes int
	// IdleTimeout closes keep-alive client connections idle this long and
	// pooled upstream connections idle this long; 0 means 90s.
	IdleTimeout time.Duration
	// HeaderTimeout bounds reading a request head, from its first byte (or
	// the connection's start) to the blank line; 0 means 10s. The body is
	// not limited.
	HeaderTimeout time.Duration
	// ResponseTimeout bounds the wait for response headers after the
	// request was sent (504); 0 means no limit.
	ResponseTimeout time.Duration
	// MaxConnsPerEndpoint bounds pooled connections per endpoint; 0 means 1024.
	MaxConnsPerEndpoint int
	// Logger; nil uses slog.Default().
	Logger *slog.Logger
}

// Proxy serves HTTP/1 client connections handed over after detection.
type Proxy struct {
	cfg   Config
	srv   *fasthttp.Server
	pools *pools
	pipe  pipeline.Pipeline

	draining atomic.Bool
	mu       sync.Mutex
	idle     map[net.Conn]struct{}
	active   sync.WaitGroup
}

// New validates cfg and returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Router == nil || cfg.Dialer == nil {
		return nil, errors.New("http1 config: Router and Dialer are required")
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = 16 << 10
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 90 * time.Second
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	if cfg.MaxConnsPerEndpoint == 0 {
		cfg.MaxConnsPerEndpoint = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Proxy{cfg: cfg, idle: map[net.Conn]struct{}{}}
	p.pools = newPools(&p.cfg)
	p.pipe.Router = cfg.Router
	p.pipe.Routes, _ = cfg.Observer.(target.RouteObserver)
	p.pipe.Tap = cfg.Tap
	p.srv = &fasthttp.Server{
		Handler:                       p.handle,
		ErrorHandler:                  p.handleParseError,
		ConnState:                     p.connState,
		StreamRequestBody:             true,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		ReadBufferSize:                cfg.MaxHeaderBytes,
		WriteBufferSize:               16 << 10,
		// With StreamRequestBody this is only how much of a body is
		// read ahead before the handler runs: the rest is streamed.
		MaxRequestBodySize: 64 << 10,
		IdleTimeout:        cfg.IdleTimeout,
		// ReadTimeout covers the request head only: once it is in,
		// HeaderReceived pushes the deadline out so streamed bodies
		// (uploads, long polls) are not cut.
		ReadTimeout: cfg.HeaderTimeout,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: noDeadline}
		},
		Concurrency: 1 << 20,
		Logger:      fasthttpLogger{cfg.Logger},
	}
	return p, nil
}

// noDeadline is "no read deadline" for fasthttp, which treats 0 as "use
// the server's default".
const noDeadline = 100 * 365 * 24 * time.Hour

// conn carries a client connection's original destination to the handler
// and the record reused by its (sequential) requests.
type conn struct {
	net.Conn
	// ctx is passed to the Router (it may carry the connection's verified
	// peer); never nil.
	ctx  context.Context
	orig netip.AddrPort
	rec  record.HTTP
	tmp  scratch
	// tunnel is closed when an upgraded connection's tunnel ends; nil when
	// the connection was not upgraded.
	tunnel chan struct{}
	// w watches the client's socket for its FIN/RST while a request is in
	// flight (cancel.go).
	w watch
	// x is the routed request in flight (routed.go).
	x exchange
	// tap is the request's tap state (tap.go); out counts the bytes
	// written to the client, for the tapped response's length.
	tap pipeline.Tapping
	ts  tapState
	out int64
}

// Write counts what is written to the client (out, for tap.go): one
// addition per write, tapped or not.
func (c *conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out += int64(n)
	return n, err
}

// ServeConn serves one client connection until it closes. c may replay
// peeked bytes (detect.Conn). It returns when the connection is done.
func (p *Proxy) ServeConn(c net.Conn, orig netip.AddrPort) error {
	return p.ServeConnContext(context.Background(), c, orig)
}

// ServeConnContext is ServeConn with a context handed to the Router with
// every request of the connection (e.g. carrying its mTLS peer).
func (p *Proxy) ServeConnContext(ctx context.Context, c net.Conn, orig netip.AddrPort) error {
	p.active.Add(1)
	defer p.active.Done()
	cc := &conn{Conn: c, ctx: ctx, orig: orig}
	clientWatcher.add(&cc.w, c)
	defer clientWatcher.remove(&cc.w)
	err := p.srv.ServeConn(cc)
	if cc.tunnel != nil { // fasthttp runs the hijacked conn on its own goroutine
		<-cc.tunnel
	}
	return err
}

// Drain makes every later response carry Connection: close and closes the
// connections idle now or later (clients that retry on a closed keep-alive
// connection see no failure). It does not wait.
func (p *Proxy) Drain() {
	p.draining.Store(true)
	p.mu.Lock()
	for c := range p.idle {
		c.Close()
		delete(p.idle, c)
	}
	p.mu.Unlock()
}

// Wait blocks until every connection handed to ServeConn is done or ctx ends.
func (p *Proxy) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { p.active.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close releases the upstream connection pools.
func (p *Proxy) Close() { p.pools.close() }

func (p *Proxy) connState(c net.Conn, st fasthttp.ConnState) {
	if cc, ok := c.(*conn); ok && st != fasthttp.StateActive && st != fasthttp.StateNew {
		cc.w.end() // the response, streamed body included, is done
		cc.tapEnd()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st == fasthttp.StateIdle {
		if p.draining.Load() {
			c.Close()
			return
		}
		p.idle[c] = struct{}{}
		return
	}
	delete(p.idle, c)
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp", "msg", format, "args", args)
}
