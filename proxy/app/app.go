// Package app assembles the proxy: listeners, the per-connection chain
// (accept → original destination → detect → http1 | h2 | tcp, in serve.go),
// discovery, metrics, the admin server and drain.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/weftmesh/weft/proxy/admin"
	"github.com/weftmesh/weft/proxy/config"
	"github.com/weftmesh/weft/proxy/dial"
	"github.com/weftmesh/weft/proxy/discovery"
	"github.com/weftmesh/weft/proxy/drain"
	"github.com/weftmesh/weft/proxy/h2"
	"github.com/weftmesh/weft/proxy/http1"
	"github.com/weftmesh/weft/proxy/metrics"
	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/origdst"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// Options are what the environment cannot express.
type Options struct {
	// OrigDst finds a connection's original destination; nil means
	// SO_ORIGINAL_DST (tests without iptables pass their own).
	OrigDst origdst.Func
	// Logger; nil uses slog.Default().
	Logger *slog.Logger
	// PeerInboundPort is the port peer proxies accept mTLS on; 0 means
	// 4143 (tests run several proxies on one loopback).
	PeerInboundPort uint16
}

// endpointDialer opens a connection to an endpoint (dial.Dialer, or an mTLS
// carrier when identity is on).
type endpointDialer interface {
	Dial(ctx context.Context, ep target.Endpoint) (net.Conn, error)
}

// App is a running proxy. New binds the listeners; Run serves until its
// context ends, then drains.
type App struct {
	cfg     config.Config
	opts    Options
	log     *slog.Logger
	metrics *metrics.Registry
	tracker *drain.Tracker
	// dialH1, dialH2 and dialTCP open upstream connections for each layer:
	// mTLS carriers (the peer skips detection) when identity is on.
	dialH1, dialH2, dialTCP endpointDialer
	mesh                    *mesh         // nil: identity off
	dest                    *destResolver // nil: no destination service
	destDialer              *mtls.Dialer  // the destination connection's mTLS (nil: plaintext)
	dirs                    [2]*direction // by record.Direction
	names                   addrCache     // string forms of original destinations
	admin                   *http.Server
	adminLn                 net.Listener
	tap                     *tapServer // nil: tap off

	shutdownOnce sync.Once
	shutdown     chan struct{} // closed by POST /shutdown
}

// direction is one listener and its protocol layers.
type direction struct {
	dir    record.Direction
	lns    []net.Listener
	opaque []uint16 // sorted
	router router
	h1     *http1.Proxy
	h2     *h2.Proxy
}

// New validates cfg, loads discovery and binds the three listeners.
func New(cfg config.Config, opts Options) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.OrigDst == nil {
		opts.OrigDst = origdst.Get
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var res discovery.Resolver = &discovery.PassThrough{}
	if cfg.StaticDiscovery != "" {
		s, err := discovery.LoadStatic(cfg.StaticDiscovery)
		if err != nil {
			return nil, fmt.Errorf("%sSTATIC_DISCOVERY: %w", config.Prefix, err)
		}
		res = s
	}
	a := &App{
		cfg: cfg, opts: opts, log: opts.Logger,
		metrics:  metrics.New(),
		tracker:  drain.New(),
		shutdown: make(chan struct{}),
	}
	plain := &dial.Dialer{Timeout: cfg.ConnectTimeout}
	a.dialH1, a.dialH2, a.dialTCP = plain, plain, plain
	if cfg.Identity != nil {
		m, err := newMesh(&cfg, opts.PeerInboundPort, opts.Logger)
		if err != nil {
			return nil, err
		}
		a.mesh = m
		a.dialH1, a.dialH2, a.dialTCP = m.dialer.Carrying(target.HTTP1), m.dialer.Carrying(target.HTTP2), m.dialer.Carrying(target.Opaque)
		a.metrics.AddCollector(m.families)
	}
	if cfg.DestinationAddr != "" {
		dc, err := a.newDestination(res)
		if err != nil {
			return nil, err
		}
		a.dest, res = dc, dc
		a.metrics.AddCollector(dc.dc.Families)
	}
	ts, err := a.newTap()
	if err != nil {
		if a.dest != nil {
			a.dest.Close()
		}
		return nil, err
	}
	a.tap = ts
	routers := [2]router{
		record.Inbound:  &inboundRouter{loopback: cfg.InboundConnectLoopback},
		record.Outbound: &outboundRouter{res: res, meshed: a.mesh != nil},
	}
	addrs := [2][]string{record.Inbound: cfg.InboundAddrs, record.Outbound: cfg.OutboundAddrs}
	opaque := [2][]uint16{record.Inbound: cfg.InboundOpaquePorts, record.Outbound: cfg.OutboundOpaquePorts}
	for _, d := range []record.Direction{record.Inbound, record.Outbound} {
		dd, err := a.newDirection(d, addrs[d], opaque[d], routers[d])
		if err != nil {
			a.closeListeners()
			if a.dest != nil {
				a.dest.Close()
			}
			return nil, err
		}
		a.dirs[d] = dd
	}
	ln, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		a.closeListeners()
		if a.dest != nil {
			a.dest.Close()
		}
		return nil, fmt.Errorf("%sADMIN_LISTEN_ADDR: %w", config.Prefix, err)
	}
	a.adminLn = ln
	ac := admin.Config{Metrics: a.metrics, ContentType: metrics.ContentType, Draining: a.tracker.Draining,
		Probes: cfg.AppProbes, ProbeAddr: cfg.PodIP}
	if a.mesh != nil {
		ac.NotReady = a.mesh.notReady
	}
	if cfg.AdminShutdown {
		ac.Shutdown = func() { a.shutdownOnce.Do(func() { close(a.shutdown) }) }
	}
	a.admin = &http.Server{Handler: admin.Handler(ac), ReadHeaderTimeout: 10 * time.Second}
	return a, nil
}

func (a *App) newDirection(d record.Direction, addrs []string, opaque []uint16, r router) (*direction, error) {
	var prof target.Profiles
	if out, ok := r.(*outboundRouter); ok && a.dest != nil {
		prof = profileRouter{dest: a.dest, out: out}
	}
	h1, err := http1.New(http1.Config{
		Direction: d, Router: r, Dialer: a.dialH1, Observer: a.metrics, Profiles: prof, Tap: a.tapHook(),
		ErrorCounter:    func(d record.Direction, err error) { a.metrics.ObserveError(d, proxyerr.KindOf(err)) },
		MaxHeaderBytes:  a.cfg.MaxHeaderBytes,
		IdleTimeout:     a.cfg.IdleTimeout,
		HeaderTimeout:   a.cfg.HeaderTimeout,
		ResponseTimeout: a.cfg.ResponseTimeout,
		Logger:          a.log,
	})
	if err != nil {
		return nil, err
	}
	hp, err := h2.New(h2.Config{
		Direction: d, Router: r, Observer: a.metrics, Dialer: a.dialH2, Logger: a.log, Profiles: prof, Tap: a.tapHook(),
		DialTimeout: a.cfg.ConnectTimeout, IdleTimeout: a.cfg.IdleTimeout,
	})
	if err != nil {
		return nil, err
	}
	name := "INBOUND_LISTEN_ADDR"
	if d == record.Outbound {
		name = "OUTBOUND_LISTEN_ADDR"
	}
	op := slices.Clone(opaque)
	slices.Sort(op)
	dd := &direction{dir: d, opaque: op, router: r, h1: h1, h2: hp}
	for _, addr := range addrs {
		ln, err := listenTCP(addr)
		if err != nil {
			dd.close()
			return nil, fmt.Errorf("%s%s: %w", config.Prefix, name, err)
		}
		dd.lns = append(dd.lns, ln)
	}
	if len(dd.lns) == 0 {
		return nil, fmt.Errorf("%s%s: no address", config.Prefix, name)
	}
	return dd, nil
}

// listenTCP listens on addr; an IPv6 address listens IPv6-only so that an
// IPv4 listener on the same port can coexist.
func listenTCP(addr string) (net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	network := "tcp4"
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		network = "tcp6"
	}
	return net.Listen(network, addr)
}

func (d *direction) close() {
	for _, ln := range d.lns {
		ln.Close()
	}
}

// InboundAddr, OutboundAddr and AdminAddr are the bound listener addresses.
func (a *App) InboundAddr() net.Addr  { return a.dirs[record.Inbound].lns[0].Addr() }
func (a *App) OutboundAddr() net.Addr { return a.dirs[record.Outbound].lns[0].Addr() }
func (a *App) AdminAddr() net.Addr    { return a.adminLn.Addr() }

// Metrics is the proxy's registry (tests read it).
func (a *App) Metrics() *metrics.Registry { return a.metrics }

// Run serves until ctx ends or POST /shutdown, then drains: /ready turns
// 503 at once, HTTP/1 responses carry Connection: close and idle keep-alive
// connections are closed, HTTP/2 connections get GOAWAY, new connections are
// still served. Run returns nil once no connection has been open for
// SHUTDOWN_QUIET, or an error naming how many connections were cut at the
// SHUTDOWN_GRACE_PERIOD deadline.
func (a *App) Run(ctx context.Context) error {
	// The identity source outlives the drain: in-flight meshed traffic
	// still needs it.
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	if a.mesh != nil {
		a.mesh.start(bg)
	}
	var wg sync.WaitGroup
	for _, d := range a.dirs {
		for _, ln := range d.lns {
			wg.Add(1)
			go func() { defer wg.Done(); a.acceptLoop(d, ln) }()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.admin.Serve(a.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			a.log.Error("admin server", "err", err)
		}
	}()
	if a.tap != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.tap.serve(a) }()
	}
	a.log.Info("proxy running", "inbound", a.InboundAddr().String(), "outbound", a.OutboundAddr().String(),
		"admin", a.AdminAddr().String(), "tap", a.TapAddr())

	select {
	case <-ctx.Done():
	case <-a.shutdown:
	}
	err := a.drain()
	a.closeListeners()
	a.admin.Close()
	if a.tap != nil {
		a.tap.stop()
	}
	wg.Wait()
	for _, d := range a.dirs {
		d.h1.Close()
	}
	if a.dest != nil {
		a.dest.Close()
	}
	return err
}

func (a *App) drain() error {
	a.log.Info("draining", "grace_period", a.cfg.ShutdownGracePeriod.String())
	a.tracker.Start()
	deadline, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownGracePeriod)
	defer cancel()
	var wg sync.WaitGroup
	for _, d := range a.dirs {
		d.h1.Drain()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.h2.Shutdown(deadline); err != nil {
				a.log.Warn("h2 shutdown", "direction", d.dir.String(), "err", err)
			}
		}()
	}
	err := a.tracker.Wait(deadline, a.cfg.ShutdownQuiet)
	if err != nil {
		n := a.tracker.CloseAll()
		err = fmt.Errorf("drain: grace period %s over, closed %d connections", a.cfg.ShutdownGracePeriod, n)
	}
	wg.Wait()
	a.log.Info("drained", "err", err)
	return err
}

func (a *App) closeListeners() {
	for _, d := range a.dirs {
		if d != nil {
			d.close()
		}
	}
	if a.adminLn != nil {
		a.adminLn.Close()
	}
	if a.tap != nil {
		a.tap.ln.Close()
	}
}
