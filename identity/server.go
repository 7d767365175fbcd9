package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	identityv1 "github.com/weftmesh/weft/api/identity/v1"
)

// Source feeds issuer credentials into the service until ctx is done.
type Source interface {
	Run(ctx context.Context, l loader) error
}

// Config configures the identity server.
type Config struct {
	Service ServiceConfig
	// ListenAddr for gRPC over TLS; "" means ":8080".
	ListenAddr string
	// AdminAddr serves /metrics, /ready and /live; "" means ":9990".
	AdminAddr string
	// Source of issuer credentials. Required.
	Source Source
	// Namespace and ServiceAccount the identity service itself runs as: its
	// own serving certificate is an SVID for them (proxies verify it against
	// the anchors). "" means "weft" and "weft-identity".
	Namespace, ServiceAccount string
	// DNSNames added to the serving certificate; nil means
	// weft-identity.<ns>.svc and weft-identity.<ns>.svc.cluster.local.
	DNSNames []string
}

// Server serves Certify over TLS with a certificate it issues to itself.
type Server struct {
	cfg     Config
	svc     *Service
	reg     *prometheus.Registry
	selfID  spiffeid.ID
	log     *slog.Logger
	mu      sync.Mutex
	serving *tls.Certificate
	renewAt time.Time
}

// New builds a Server; it does not listen until Run.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("identity: a credentials source is required")
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ":8080"
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = ":9990"
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "weft"
	}
	if cfg.ServiceAccount == "" {
		cfg.ServiceAccount = "weft-identity"
	}
	if cfg.DNSNames == nil {
		base := cfg.ServiceAccount + "." + cfg.Namespace + ".svc"
		cfg.DNSNames = []string{base, base + ".cluster.local"}
	}
	reg := prometheus.NewRegistry()
	cfg.Service.Registerer = reg
	svc, err := NewService(cfg.Service)
	if err != nil {
		return nil, err
	}
	selfID, err := spiffeid.FromSegments(svc.TrustDomain(), "ns", cfg.Namespace, "sa", cfg.ServiceAccount)
	if err != nil {
		return nil, fmt.Errorf("own identity: %w", err)
	}
	s := &Server{cfg: cfg, svc: svc, reg: reg, selfID: selfID, log: svc.log}
	svc.OnReload(func(*Credentials) { s.invalidateServing() })
	return s, nil
}

// Service exposes the Certify logic (for tests and embedding).
func (s *Server) Service() *Service { return s.svc }

// Run serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lis, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.ListenAddr, err)
	}
	admin, err := net.Listen("tcp", s.cfg.AdminAddr)
	if err != nil {
		lis.Close()
		return fmt.Errorf("listen %s: %w", s.cfg.AdminAddr, err)
	}
	return s.Serve(ctx, lis, admin)
}

// Serve serves on the given listeners until ctx is done (Run listens first).
func (s *Server) Serve(ctx context.Context, lis, admin net.Listener) error {
	srcErr := make(chan error, 1)
	go func() { srcErr <- s.cfg.Source.Run(ctx, s.svc) }()
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: s.getCertificate,
	})))
	identityv1.RegisterIdentityServer(gs, s.svc)
	hs := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(admin)
	go gs.Serve(lis)
	s.log.Info("identity serving", "addr", lis.Addr().String(), "admin", admin.Addr().String(), "self", s.selfID.String())
	var err error
	select {
	case <-ctx.Done():
	case err = <-srcErr:
		if err != nil {
			err = fmt.Errorf("credentials source: %w", err)
		}
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		gs.Stop()
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutdownCtx)
	return err
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/live", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "live") })
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if _, err := s.svc.Credentials(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

func (s *Server) invalidateServing() {
	s.mu.Lock()
	s.serving = nil
	s.mu.Unlock()
}

// getCertificate returns the service's own SVID, issuing a new one when the
// issuer changed or 70 % of the current one's lifetime has passed.
func (s *Server) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving != nil && time.Now().Before(s.renewAt) {
		return s.serving, nil
	}
	creds, err := s.svc.Credentials()
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	now := time.Now()
	req := &x509.CertificateRequest{URIs: []*url.URL{s.selfID.URL()}, DNSNames: s.cfg.DNSNames}
	leaf, err := creds.signLeaf(req, key.Public(), s.svc.cfg.Lifetime, s.svc.cfg.ClockSkew, now)
	if err != nil {
		return nil, err
	}
	cert := &tls.Certificate{Certificate: append([][]byte{leaf.Raw}, creds.chainDER()...), PrivateKey: key, Leaf: leaf}
	s.serving = cert
	s.renewAt = now.Add(leaf.NotAfter.Sub(now) * 7 / 10)
	return cert, nil
}
