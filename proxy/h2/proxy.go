package h2

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"

	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/target"
)

// Proxy serves client HTTP/2 connections and forwards each request to the
// endpoint its Router picks. It is safe for concurrent use.
type Proxy struct {
	cfg Config
	hs  *http.Server  // BaseConfig of every client connection; its Shutdown sends GOAWAY
	srv *http2.Server // the HTTP/2 server, registered with hs by ConfigureServer
	up  *upstreams

	draining atomic.Bool

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	drained chan struct{} // closed when draining and conns is empty; nil before Shutdown
	closed  bool          // Shutdown returned: new connections are refused

	addrs addrCache
	stats counters
	pipe  pipeline.Pipeline
}

// Stats are cumulative counters of a Proxy.
type Stats struct {
	// Conns is the number of client connections served.
	Conns uint64
	// Requests is the number of requests handled.
	Requests uint64
	// ResetFloods is the number of client connections closed with
	// GOAWAY(ENHANCE_YOUR_CALM) for exceeding the reset budget (ours or
	// x/net's early-reset bound).
	ResetFloods uint64
	// ProtocolErrors counts protocol errors x/net reported on client
	// connections (malformed frames, bad headers, ...).
	ProtocolErrors uint64
}

type counters struct {
	conns, requests, floods, protoErrs atomic.Uint64
}

// New returns a Proxy for cfg; it fails when cfg is invalid.
func New(cfg Config) (*Proxy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, conns: make(map[net.Conn]struct{})}
	p.up = newUpstreams(&p.cfg)
	p.pipe.Router = cfg.Router
	p.pipe.Routes, _ = cfg.Observer.(target.RouteObserver)
	p.pipe.Tap = cfg.Tap
	p.hs = &http.Server{
		// x/net advertises MaxHeaderBytes plus 320 bytes of per-field
		// overhead as SETTINGS_MAX_HEADER_LIST_SIZE.
		MaxHeaderBytes: int(cfg.MaxHeaderListSize) - 320,
		IdleTimeout:    cfg.IdleTimeout,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	p.srv = &http2.Server{
		MaxConcurrentStreams: cfg.MaxConcurrentStreams,
		MaxReadFrameSize:     cfg.MaxReadFrameSize,
		IdleTimeout:          cfg.IdleTimeout,
		CountError:           p.countError,
	}
	if err := http2.ConfigureServer(p.hs, p.srv); err != nil {
		return nil, fmt.Errorf("configure http2 server: %w", err)
	}
	return p, nil
}

// countError receives x/net's error counters for client connections.
func (p *Proxy) countError(errType string) {
	if errType == "too_many_early_resets" {
		p.stats.floods.Add(1)
		return
	}
	p.stats.protoErrs.Add(1)
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Conns:          p.stats.conns.Load(),
		Requests:       p.stats.requests.Load(),
		ResetFloods:    p.stats.floods.Load(),
		ProtocolErrors: p.stats.protoErrs.Load(),
	}
}

// ServeConn serves one client HTTP/2 (h2c) connection whose preface has been
// peeked: conn replays the peeked bytes. orig is the connection's original
// destination, passed to the Router. It returns when the connection is done;
// cancelling ctx closes the connection at once. Connections handed in after
// Shutdown returned are closed immediately.
func (p *Proxy) ServeConn(ctx context.Context, conn net.Conn, orig netip.AddrPort) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = conn.Close()
		return
	}
	p.conns[conn] = struct{}{}
	p.mu.Unlock()
	p.stats.conns.Add(1)
	defer p.forget(conn)

	c := conn
	if p.cfg.MaxResets > 0 {
		c = guardConn(conn, p.cfg.MaxResets, p.cfg.ResetWindow, func(last uint32) {
			p.stats.floods.Add(1)
			p.cfg.Logger.Warn("h2: closing client connection after a reset flood",
				"remote", conn.RemoteAddr().String(), "last_stream", last, "max_resets", p.cfg.MaxResets, "window", p.cfg.ResetWindow)
		})
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	p.srv.ServeConn(c, &http2.ServeConnOpts{
		Context:    ctx,
		BaseConfig: p.hs,
		Handler:    &connHandler{p: p, orig: orig},
	})
	_ = conn.Close()
}

func (p *Proxy) forget(conn net.Conn) {
	p.mu.Lock()
	delete(p.conns, conn)
	if len(p.conns) == 0 && p.drained != nil {
		select {
		case <-p.drained:
		default:
			close(p.drained)
		}
	}
	p.mu.Unlock()
}

// Shutdown sends GOAWAY on every client connection, lets in-flight streams
// finish, and closes the upstream pools. Streams opened after the GOAWAY are
// refused by the clients' own stacks; responses on connections that arrive
// during the drain carry a GOAWAY too. It returns nil once every client
// connection is closed, or ctx.Err() when ctx ends first, after closing the
// remaining connections.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.draining.Store(true)
	p.mu.Lock()
	if p.drained == nil {
		p.drained = make(chan struct{})
		if len(p.conns) == 0 {
			close(p.drained)
		}
	}
	drained := p.drained
	p.mu.Unlock()

	// http.Server.Shutdown runs the hook ConfigureServer registered, which
	// starts a graceful shutdown (GOAWAY, then close when the streams are
	// done) on every client connection. hs has no listeners or HTTP/1
	// connections of its own, so it returns at once.
	_ = p.hs.Shutdown(ctx)

	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
		p.mu.Lock()
		for c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.up.close()
	return err
}

// addrCache formats endpoint addresses once; the table is bounded and
// reset when full.
type addrCache struct {
	mu sync.RWMutex
	m  map[netip.AddrPort]string
}

const addrCacheMax = 4096

func (a *addrCache) get(ap netip.AddrPort) string {
	a.mu.RLock()
	s, ok := a.m[ap]
	a.mu.RUnlock()
	if ok {
		return s
	}
	s = ap.String()
	a.mu.Lock()
	if a.m == nil || len(a.m) >= addrCacheMax {
		a.m = make(map[netip.AddrPort]string)
	}
	a.m[ap] = s
	a.mu.Unlock()
	return s
}

// idle is used by tests: the number of client connections being served.
func (p *Proxy) activeConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
