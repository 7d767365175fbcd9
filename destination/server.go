package destination

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	"github.com/weftmesh/weft/destination/profiles"
	"github.com/weftmesh/weft/destination/watcher"
	"github.com/weftmesh/weft/internal/ctlserver"
)

// Config configures the destination service.
type Config struct {
	Client    kubernetes.Interface
	Dynamic   dynamic.Interface
	Discovery discovery.DiscoveryInterface // nil: assume the ServiceProfile CRD exists
	// ListenAddr for gRPC; "" means ":8086".
	ListenAddr string
	// AdminAddr serves /metrics, /ready, /live; "" means ":9996".
	AdminAddr string
	// ClusterDomain; "" means cluster.local.
	ClusterDomain string
	// TrustDomain of meshed pods' identities; "" means cluster.local.
	TrustDomain string
	// SelfTestAuthority is the Service the admin /selftest resolves with a
	// real Get and GetProfile; "" means kubernetes.default.svc.<domain>:443.
	SelfTestAuthority string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Server implements destinationv1.DestinationServer.
type Server struct {
	destinationv1.UnimplementedDestinationServer
	cfg      Config
	eps      *watcher.Watcher
	profiles *profiles.Watcher
	tr       translator
	reg      *prometheus.Registry
	metrics  *metrics
	log      *slog.Logger
	ready    chan struct{}
}

// New validates cfg and builds the service; Run starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil || cfg.Dynamic == nil {
		return nil, errors.New("destination: kubernetes clients are required")
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ":8086"
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = ":9996"
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = "cluster.local"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SelfTestAuthority == "" {
		cfg.SelfTestAuthority = "kubernetes.default.svc." + cfg.ClusterDomain + ":443"
	}
	td, err := spiffeid.TrustDomainFromString(cfg.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("trust domain %q: %w", cfg.TrustDomain, err)
	}
	reg := prometheus.NewRegistry()
	s := &Server{cfg: cfg, tr: translator{td: td}, reg: reg, metrics: newMetrics(reg), log: cfg.Logger, ready: make(chan struct{})}
	s.eps = watcher.New(watcher.Config{Client: cfg.Client, ClusterDomain: cfg.ClusterDomain, Logger: cfg.Logger})
	s.profiles = profiles.New(cfg.Dynamic, cfg.Discovery, cfg.Logger)
	s.profiles.OnInvalid = func(profiles.Key, error) { s.metrics.invalid.Inc() }
	return s, nil
}

// Run listens on the configured addresses and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	return ctlserver.Run(ctx, s.serverConfig(), s.api(), s.watch)
}

// Serve starts the watchers and serves on the given listeners until ctx is
// done. gRPC is answered once the watchers have synced, when the admin
// /ready endpoint turns 200.
func (s *Server) Serve(ctx context.Context, lis, admin net.Listener) error {
	return ctlserver.Serve(ctx, s.serverConfig(), s.api(), lis, admin, s.watch)
}

func (s *Server) serverConfig() ctlserver.Config {
	return ctlserver.Config{
		Name: "destination", Addr: s.cfg.ListenAddr, AdminAddr: s.cfg.AdminAddr,
		Gatherer: s.reg, Logger: s.log,
		// Drain 0: streams are long-lived; end them and proxies reconnect
		// to another replica.
		Ready: func() error {
			select {
			case <-s.ready:
				return nil
			default:
				return errors.New("informers syncing")
			}
		},
		SelfTests: s.selfTests(),
	}
}

// watch runs the Kubernetes watchers until ctx is done.
func (s *Server) watch(ctx context.Context) error {
	if err := s.eps.Start(ctx); err != nil {
		return fmt.Errorf("watch endpoints: %w", err)
	}
	defer s.eps.Shutdown()
	if err := s.profiles.Start(ctx); err != nil {
		return fmt.Errorf("watch profiles: %w", err)
	}
	close(s.ready)
	<-ctx.Done()
	return nil
}

func (s *Server) api() ctlserver.API {
	// A proxy holds two streams per target it talks to: allow many per
	// connection; requests are a path each.
	gs := ctlserver.NewGRPC(ctlserver.Limits{MaxRecvMsg: 64 << 10, MaxStreams: 10000}, nil)
	destinationv1.RegisterDestinationServer(gs, s)
	return &syncedAPI{API: ctlserver.GRPC(gs), ready: s.ready, stopped: make(chan struct{})}
}

// syncedAPI accepts only once the watchers have synced, so no proxy is
// told a Service has no endpoints because the cache was still empty.
type syncedAPI struct {
	ctlserver.API
	ready   <-chan struct{}
	once    sync.Once
	stopped chan struct{}
}

func (a *syncedAPI) Serve(lis net.Listener) error {
	select {
	case <-a.ready:
		return a.API.Serve(lis)
	case <-a.stopped:
		lis.Close()
		return ctlserver.ErrStopped
	}
}

func (a *syncedAPI) Stop(ctx context.Context) {
	a.once.Do(func() { close(a.stopped) })
	a.API.Stop(ctx)
}

// Get streams endpoint updates for a Service authority or an IP address.
func (s *Server) Get(req *destinationv1.GetDestination, stream grpc.ServerStreamingServer[destinationv1.Update]) error {
	t, err := parseTarget(req.GetPath(), s.cfg.ClusterDomain)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	s.metrics.subscribers.WithLabelValues("get").Inc()
	defer s.metrics.subscribers.WithLabelValues("get").Dec()
	if t.IP.IsValid() {
		svc, isService, pod := s.eps.LookupIP(t.IP)
		if !isService {
			return s.streamPod(stream, t, pod)
		}
		t.Service = svc
	}
	return s.streamService(stream, t)
}

func (s *Server) streamService(stream grpc.ServerStreamingServer[destinationv1.Update], t target) error {
	sub := s.eps.Subscribe(t.Service, t.Port)
	defer sub.Close()
	opaque := s.eps.ServiceOpaquePorts(t.Service)[t.Port]
	ch, _ := sub.Next()
	for {
		for _, u := range s.tr.updates(ch, opaque) {
			if err := stream.Send(u); err != nil {
				return err
			}
			s.metrics.updates.WithLabelValues("get").Inc()
		}
		if !ch.At.IsZero() {
			s.metrics.lag.Observe(time.Since(ch.At).Seconds())
		}
		var ok bool
		for !ok {
			select {
			case <-stream.Context().Done():
				return nil
			case <-sub.C:
				ch, ok = sub.Next()
			}
		}
	}
}

// streamPod answers an ip:port lookup of a pod (or an unknown address) with
// that single endpoint, then holds the stream open.
func (s *Server) streamPod(stream grpc.ServerStreamingServer[destinationv1.Update], t target, pod *watcher.Pod) error {
	var u *destinationv1.Update
	if pod == nil {
		u = &destinationv1.Update{Update: &destinationv1.Update_NoEndpoints{NoEndpoints: &destinationv1.NoEndpoints{}}}
	} else {
		a := watcher.Address{AddrPort: netipAddrPort(t), Pod: pod}
		u = &destinationv1.Update{Update: &destinationv1.Update_Add{Add: &destinationv1.AddSet{
			Addrs:        []*destinationv1.WeightedAddr{s.tr.weightedAddr(a, false)},
			MetricLabels: map[string]string{"namespace": pod.Namespace},
		}}}
	}
	if err := stream.Send(u); err != nil {
		return err
	}
	s.metrics.updates.WithLabelValues("get").Inc()
	<-stream.Context().Done()
	return nil
}

// GetProfile streams the route profile of a Service authority or an address.
func (s *Server) GetProfile(req *destinationv1.GetDestination, stream grpc.ServerStreamingServer[destinationv1.DestinationProfile]) error {
	t, err := parseTarget(req.GetPath(), s.cfg.ClusterDomain)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	s.metrics.subscribers.WithLabelValues("get_profile").Inc()
	defer s.metrics.subscribers.WithLabelValues("get_profile").Dec()
	if t.IP.IsValid() {
		svc, isService, pod := s.eps.LookupIP(t.IP)
		if !isService {
			return s.podProfile(stream, t, pod)
		}
		t.Service = svc
	}
	name := fqdn(t.Service, s.cfg.ClusterDomain)
	sub := s.profiles.Subscribe(profiles.Key{Namespace: t.Service.Namespace, Name: name})
	defer sub.Close()
	for {
		if err := stream.Send(s.profileFor(name, t, sub.Current())); err != nil {
			return err
		}
		s.metrics.updates.WithLabelValues("get_profile").Inc()
		select {
		case <-stream.Context().Done():
			return nil
		case <-sub.C:
		}
	}
}

// profileFor completes a (possibly absent) profile with what the Service
// itself declares. The shared translated profile is never modified.
func (s *Server) profileFor(name string, t target, p *destinationv1.DestinationProfile) *destinationv1.DestinationProfile {
	out := &destinationv1.DestinationProfile{FullyQualifiedName: name, RetryBudget: profiles.DefaultRetryBudget()}
	if p != nil {
		out.Routes, out.RetryBudget, out.DstOverrides = p.Routes, p.RetryBudget, p.DstOverrides
	}
	out.OpaqueProtocol = s.eps.ServiceOpaquePorts(t.Service)[t.Port]
	return out
}

func (s *Server) podProfile(stream grpc.ServerStreamingServer[destinationv1.DestinationProfile], t target, pod *watcher.Pod) error {
	out := &destinationv1.DestinationProfile{RetryBudget: profiles.DefaultRetryBudget()}
	if pod != nil {
		out.OpaqueProtocol = pod.OpaquePorts[t.Port]
		out.Endpoint = s.tr.weightedAddr(watcher.Address{AddrPort: netipAddrPort(t), Pod: pod}, out.OpaqueProtocol)
	}
	if err := stream.Send(out); err != nil {
		return err
	}
	s.metrics.updates.WithLabelValues("get_profile").Inc()
	<-stream.Context().Done()
	return nil
}
