package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	identityv1 "github.com/weftmesh/weft/api/identity/v1"
	"github.com/weftmesh/weft/internal/ctlserver"
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
	return ctlserver.Run(ctx, s.serverConfig(), s.api(), s.source)
}

// Serve serves on the given listeners until ctx is done (Run listens first).
func (s *Server) Serve(ctx context.Context, lis, admin net.Listener) error {
	return ctlserver.Serve(ctx, s.serverConfig(), s.api(), lis, admin, s.source)
}

// drain is how long Certify calls in flight may finish on shutdown.
const drain = 10 * time.Second

func (s *Server) serverConfig() ctlserver.Config {
	return ctlserver.Config{
		Name: "identity", Addr: s.cfg.ListenAddr, AdminAddr: s.cfg.AdminAddr,
		Gatherer: s.reg, Drain: drain, Logger: s.log,
		Ready: func() error {
			_, err := s.svc.Credentials()
			return err
		},
		SelfTests: []ctlserver.SelfTest{{Name: SelfTestIssuer, Run: s.selfTestIssuer}},
	}
}

func (s *Server) api() ctlserver.API {
	// Certify messages carry one CSR and a token: 64 KiB is ample.
	gs := ctlserver.NewGRPC(ctlserver.Limits{MaxRecvMsg: 64 << 10, MaxStreams: 100}, &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: s.getCertificate,
	})
	identityv1.RegisterIdentityServer(gs, s.svc)
	return ctlserver.GRPC(gs)
}

// source feeds the issuer credentials; its failure ends the server.
func (s *Server) source(ctx context.Context) error {
	if err := s.cfg.Source.Run(ctx, s.svc); err != nil {
		return fmt.Errorf("credentials source: %w", err)
	}
	return nil
}

// SelfTestIssuer is the self-test whose detail is the PEM of the issuer
// certificate the service has loaded (`weft check` compares it with the
// issuer Secret).
const SelfTestIssuer = "issuer-loaded"

func (s *Server) selfTestIssuer(context.Context, string) (string, error) {
	creds, err := s.svc.Credentials()
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: creds.Issuer.Cert.Raw})), nil
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
