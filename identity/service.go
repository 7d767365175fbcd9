// Package identity is weft's certificate issuer. A proxy proves its
// ServiceAccount with a projected token (audience identity.weft.io); the
// service checks it with the Kubernetes TokenReview API, checks that the token,
// the requested SPIFFE ID and the CSR name the same workload, and signs a
// short-lived X.509-SVID.
package identity

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/weftmesh/weft/api/identity/v1"
)

// Defaults.
const (
	DefaultTrustDomain      = "cluster.local"
	DefaultLifetime         = 24 * time.Hour
	DefaultClockSkew        = 20 * time.Second
	DefaultMaxConcurrent    = 64
	DefaultQueueWait        = 2 * time.Second
	DefaultExpiryWarnWithin = 30 * 24 * time.Hour
)

// ServiceConfig configures the Certify logic.
type ServiceConfig struct {
	// TrustDomain of issued SPIFFE IDs; "" means DefaultTrustDomain.
	TrustDomain string
	// Lifetime of issued certificates; 0 means DefaultLifetime.
	Lifetime time.Duration
	// ClockSkew backdates NotBefore; 0 means DefaultClockSkew.
	ClockSkew time.Duration
	// MaxConcurrent bounds requests being served at once; 0 means
	// DefaultMaxConcurrent. A request that waits longer than QueueWait for a
	// slot is refused with ResourceExhausted.
	MaxConcurrent int
	// QueueWait; 0 means DefaultQueueWait.
	QueueWait time.Duration
	// Reviewer authenticates tokens. Required.
	Reviewer TokenReviewer
	// Registerer receives the metrics; nil means a private registry.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now; nil means time.Now.
	Now func() time.Time
}

// Service implements identityv1.IdentityServer.
type Service struct {
	identityv1.UnimplementedIdentityServer
	td       spiffeid.TrustDomain
	cfg      ServiceConfig
	slots    chan struct{}
	creds    issuerHolder
	metrics  *metrics
	log      *slog.Logger
	onReload []func(*Credentials)
}

// NewService validates cfg and returns a Service with no issuer loaded: it
// answers Unavailable until Load succeeds.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Reviewer == nil {
		return nil, fmt.Errorf("identity: a token reviewer is required")
	}
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = DefaultTrustDomain
	}
	td, err := spiffeid.TrustDomainFromString(cfg.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("trust domain %q: %w", cfg.TrustDomain, err)
	}
	setDefault(&cfg.Lifetime, DefaultLifetime)
	setDefault(&cfg.ClockSkew, DefaultClockSkew)
	setDefault(&cfg.QueueWait, DefaultQueueWait)
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		td:      td,
		cfg:     cfg,
		slots:   make(chan struct{}, cfg.MaxConcurrent),
		metrics: newMetrics(cfg.Registerer),
		log:     cfg.Logger,
	}, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// TrustDomain is the trust domain the service issues in.
func (s *Service) TrustDomain() spiffeid.TrustDomain { return s.td }

// OnReload registers fn to run after each successful Load (before Load returns).
func (s *Service) OnReload(fn func(*Credentials)) { s.onReload = append(s.onReload, fn) }

// Load validates and installs a new issuer and trust bundle. A failed load
// keeps the previous credentials; both outcomes are logged and counted.
func (s *Service) Load(issuerCertPEM, issuerKeyPEM, anchorsPEM []byte) error {
	now := s.cfg.Now()
	creds, err := ParseCredentials(issuerCertPEM, issuerKeyPEM, anchorsPEM, now)
	if err != nil {
		s.metrics.reloads.WithLabelValues("failure").Inc()
		s.log.Error("issuer not loaded; keeping the previous one", "err", err)
		return err
	}
	s.creds.store(creds)
	s.metrics.reloads.WithLabelValues("success").Inc()
	s.metrics.issuerExpiry.Set(float64(creds.Issuer.Cert.NotAfter.Unix()))
	s.metrics.anchorExpiry.Set(float64(earliestExpiry(creds).Unix()))
	s.metrics.issuerLoadedT.Set(float64(now.Unix()))
	s.log.Info("issuer loaded",
		"issuer", creds.Issuer.Cert.Subject.CommonName,
		"notBefore", creds.Issuer.Cert.NotBefore.UTC(), "notAfter", creds.Issuer.Cert.NotAfter.UTC(),
		"anchors", len(creds.Anchors))
	if left := creds.Issuer.Cert.NotAfter.Sub(now); left < DefaultExpiryWarnWithin {
		s.log.Warn("issuer certificate expires soon: rotate it", "notAfter", creds.Issuer.Cert.NotAfter.UTC(), "left", left.Round(time.Minute))
	}
	for _, fn := range s.onReload {
		fn(creds)
	}
	return nil
}

func earliestExpiry(c *Credentials) time.Time {
	t := c.Anchors[0].NotAfter
	for _, a := range c.Anchors[1:] {
		if a.NotAfter.Before(t) {
			t = a.NotAfter
		}
	}
	return t
}

// Credentials returns the current credentials, or ErrNotReady.
func (s *Service) Credentials() (*Credentials, error) { return s.creds.load() }

// Certify implements identityv1.IdentityServer.
func (s *Service) Certify(ctx context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
	start := time.Now()
	resp, err := s.certify(ctx, req)
	s.metrics.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		s.metrics.refused.WithLabelValues(refusalReason(err)).Inc()
		s.log.Warn("certificate refused", "identity", req.GetIdentity(), "err", err)
		return nil, grpcError(err)
	}
	s.metrics.issued.Inc()
	return resp, nil
}

func (s *Service) certify(ctx context.Context, req *identityv1.CertifyRequest) (*identityv1.CertifyResponse, error) {
	release, err := s.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	creds, err := s.creds.load()
	if err != nil {
		return nil, err
	}
	requested, err := spiffeid.FromString(req.GetIdentity())
	if err != nil {
		return nil, &InvalidRequestError{Reason: fmt.Sprintf("identity %q: %v", req.GetIdentity(), err)}
	}
	username, err := s.cfg.Reviewer.Review(ctx, string(req.GetToken()))
	if err != nil {
		return nil, err
	}
	proven, err := ServiceAccountID(s.td, username)
	if err != nil {
		return nil, err
	}
	if requested != proven {
		return nil, &MismatchError{What: "requested identity", Got: requested.String(), Expected: proven.String()}
	}
	csr, err := validateCSR(req.GetCertificateSigningRequest(), proven)
	if err != nil {
		return nil, err
	}
	leaf, err := creds.signLeaf(csr, csr.PublicKey, s.cfg.Lifetime, s.cfg.ClockSkew, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	return &identityv1.CertifyResponse{
		LeafCertificate:          leaf.Raw,
		IntermediateCertificates: creds.chainDER(),
		ValidUntil:               timestamppb.New(leaf.NotAfter),
	}, nil
}

// acquire takes a concurrency slot, waiting at most QueueWait.
func (s *Service) acquire(ctx context.Context) (func(), error) {
	select {
	case s.slots <- struct{}{}:
	default:
		t := time.NewTimer(s.cfg.QueueWait)
		defer t.Stop()
		select {
		case s.slots <- struct{}{}:
		case <-t.C:
			return nil, ErrOverloaded
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.metrics.inflight.Inc()
	return func() {
		s.metrics.inflight.Dec()
		<-s.slots
	}, nil
}
