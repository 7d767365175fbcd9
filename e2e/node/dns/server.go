// Package dns is the local cluster's DNS server: the Kubernetes DNS-based service discovery
// specification (the semantics of CoreDNS's kubernetes plugin) for the cluster domain, answered
// from Service and EndpointSlice informers. It is authoritative for the cluster domain and the
// reverse zones and refuses every other name: it never forwards anywhere.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Config configures a Server.
type Config struct {
	// Client reads Services and EndpointSlices. Required.
	Client kubernetes.Interface
	// ListenAddr is the host:port served on both UDP and TCP, e.g. "198.18.0.1:53". With port 0
	// one free port is chosen for both. Required.
	ListenAddr string
	// ClusterDomain is the zone answered from the cluster; "" means "cluster.local".
	ClusterDomain string
	// Logger receives the server's log as is; nil means slog.Default() with component=dns.
	Logger *slog.Logger
}

// Server answers DNS queries for the cluster domain.
type Server struct {
	listenAddr string
	zone       string // lower-case, fully qualified cluster domain
	serial     uint32
	log        *slog.Logger
	factory    informers.SharedInformerFactory
	index      *index

	mu     sync.Mutex
	isSync bool
}

// New validates cfg and returns a Server; it does not contact the apiserver or listen yet.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("dns: Client is required")
	}
	if _, _, err := net.SplitHostPort(cfg.ListenAddr); err != nil {
		return nil, fmt.Errorf("dns: listen address %q: %w", cfg.ListenAddr, err)
	}
	domain := cfg.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	zone := mdns.CanonicalName(domain)
	if _, ok := mdns.IsDomainName(zone); !ok || zone == "." || strings.Contains(domain, "..") {
		return nil, fmt.Errorf("dns: invalid cluster domain %q", cfg.ClusterDomain)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default().With("component", "dns")
	}
	factory := informers.NewSharedInformerFactory(cfg.Client, 0)
	idx, err := newIndex(factory)
	if err != nil {
		return nil, fmt.Errorf("dns: index informers: %w", err)
	}
	return &Server{
		listenAddr: cfg.ListenAddr,
		zone:       zone,
		serial:     uint32(time.Now().Unix()),
		log:        log,
		factory:    factory,
		index:      idx,
	}, nil
}

// Run listens on ListenAddr (UDP and TCP) and serves until ctx is done. Until the informers
// have synced, names it is authoritative for are answered SERVFAIL.
func (s *Server) Run(ctx context.Context) error {
	pc, ln, err := s.listen()
	if err != nil {
		return err
	}
	return s.serve(ctx, pc, ln)
}

// listen binds UDP and TCP on the same address; with port 0 it retries a few times until both
// get the same free port.
func (s *Server) listen() (net.PacketConn, net.Listener, error) {
	host, port, _ := net.SplitHostPort(s.listenAddr)
	var lastErr error
	for range 10 {
		pc, err := net.ListenPacket("udp", s.listenAddr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: listen udp %s: %w", s.listenAddr, err)
		}
		addr := pc.LocalAddr().(*net.UDPAddr)
		tcpAddr := s.listenAddr
		if port == "0" {
			tcpAddr = net.JoinHostPort(host, fmt.Sprint(addr.Port))
		}
		ln, err := net.Listen("tcp", tcpAddr)
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
		if port != "0" {
			break
		}
	}
	return nil, nil, fmt.Errorf("dns: listen tcp %s: %w", s.listenAddr, lastErr)
}

// serve runs the informers and both DNS servers on the given sockets until ctx is done.
func (s *Server) serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.factory.Start(ctx.Done())
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), s.index.synced...) {
			s.mu.Lock()
			s.isSync = true
			s.mu.Unlock()
			s.log.Info("dns caches synced", "zone", s.zone)
		}
	}()
	udp := &mdns.Server{PacketConn: pc, Handler: s, ReadTimeout: 5 * time.Second}
	tcp := &mdns.Server{Listener: ln, Handler: s, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	errc := make(chan error, 2)
	for _, srv := range []*mdns.Server{udp, tcp} {
		go func() { errc <- srv.ActivateAndServe() }()
	}
	s.log.Info("dns serving", "addr", pc.LocalAddr().String())
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("dns: serve: %w", err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	_ = udp.ShutdownContext(sctx)
	_ = tcp.ShutdownContext(sctx)
	// A server that had not started yet ignores Shutdown; closing its socket stops it.
	pc.Close()
	ln.Close()
	cancel()
	s.factory.Shutdown()
	return err
}

func (s *Server) synced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.isSync
}
