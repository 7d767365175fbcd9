// Package identity is the proxy's side of weft identity: a Manager that keeps
// an X.509-SVID for the proxy's ServiceAccount, obtained from the identity
// service with the projected token and renewed before it expires, and the
// trust anchors peers are verified against. A Manager is a go-spiffe
// x509svid.Source and x509bundle.Source, so proxy/mtls and the spiffetls
// tlsconfig helpers use it directly.
package identity

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"

	identityv1 "github.com/weftmesh/weft/api/identity/v1"
	"github.com/weftmesh/weft/internal/pki"
)

// Errors of GetX509SVID.
var (
	ErrNotReady = errors.New("identity: no certificate yet")
	ErrExpired  = errors.New("identity: certificate expired")
)

// Manager obtains and renews the proxy's certificate. Create it with New and
// run it with Run (or Start).
type Manager struct {
	cfg    Config
	log    *slog.Logger
	key    *ecdsa.PrivateKey
	csr    []byte
	bundle atomic.Pointer[x509bundle.Bundle]
	svid   atomic.Pointer[x509svid.SVID]

	ready     chan struct{}
	readyOnce sync.Once
	refreshes atomic.Uint64
	failures  atomic.Uint64
	lastErr   atomic.Pointer[string]
	anchors   []byte // last TrustAnchorsFile content
}

// New validates cfg, loads the trust anchors and generates the proxy's key
// (ECDSA P-256, kept in memory for the process's life) and CSR. It does not
// contact the identity service.
func New(cfg Config) (*Manager, error) {
	if cfg.LocalID.IsZero() {
		return nil, errors.New("identity: local identity is required")
	}
	if cfg.TokenFile == "" {
		cfg.TokenFile = DefaultTokenFile
	}
	if cfg.ServiceAddr == "" {
		cfg.ServiceAddr = DefaultServiceAddr
	}
	if cfg.ServiceID.IsZero() {
		cfg.ServiceID = spiffeid.RequireFromString(DefaultServiceName)
	}
	setDefault(&cfg.RequestTimeout, DefaultRequestTimeout)
	setDefault(&cfg.BackoffMin, DefaultBackoffMin)
	setDefault(&cfg.BackoffMax, DefaultBackoffMax)
	setDefault(&cfg.PollInterval, DefaultPollInterval)
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = cfg.BackoffMin
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.With("identity", cfg.LocalID.String()), ready: make(chan struct{})}
	anchors := cfg.TrustAnchorsPEM
	if len(anchors) == 0 {
		if cfg.TrustAnchorsFile == "" {
			return nil, errors.New("identity: trust anchors are required (PEM or file)")
		}
		b, err := os.ReadFile(cfg.TrustAnchorsFile)
		if err != nil {
			return nil, fmt.Errorf("identity: read trust anchors: %w", err)
		}
		anchors, m.anchors = b, b
	}
	if err := m.SetTrustAnchors(anchors); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{cfg.LocalID.URL()}}, key)
	if err != nil {
		return nil, fmt.Errorf("identity: create CSR: %w", err)
	}
	m.key, m.csr = key, csr
	return m, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// LocalID is the proxy's own identity.
func (m *Manager) LocalID() spiffeid.ID { return m.cfg.LocalID }

// Ready is closed once the first certificate has been obtained. It stays
// closed if that certificate later expires (see Snapshot.Valid).
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// SetTrustAnchors replaces the trust anchors with the PEM roots in pemData
// (one or more; all must be CA certificates). On error the previous anchors
// stay.
func (m *Manager) SetTrustAnchors(pemData []byte) error {
	certs, err := pki.ParseCerts(pemData)
	if err != nil {
		return fmt.Errorf("identity: trust anchors: %w", err)
	}
	for _, c := range certs {
		if !c.IsCA {
			return fmt.Errorf("identity: trust anchor %q is not a CA certificate", c.Subject.CommonName)
		}
	}
	m.bundle.Store(x509bundle.FromX509Authorities(m.cfg.LocalID.TrustDomain(), certs))
	return nil
}

// GetX509BundleForTrustDomain implements x509bundle.Source: the trust
// anchors of the local trust domain.
func (m *Manager) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b := m.bundle.Load()
	if td != b.TrustDomain() {
		return nil, fmt.Errorf("identity: no trust anchors for trust domain %q", td)
	}
	return b, nil
}

// GetX509SVID implements x509svid.Source: the current certificate, or
// ErrNotReady before the first one, or ErrExpired (with the last renewal
// error) once it expired without being renewed.
func (m *Manager) GetX509SVID() (*x509svid.SVID, error) {
	s := m.svid.Load()
	if s == nil {
		return nil, fmt.Errorf("%w (%s)", ErrNotReady, m.lastError())
	}
	if na := s.Certificates[0].NotAfter; time.Now().After(na) {
		return nil, fmt.Errorf("%w at %s (%s)", ErrExpired, na.UTC().Format(time.RFC3339), m.lastError())
	}
	return s, nil
}

func (m *Manager) lastError() string {
	if p := m.lastErr.Load(); p != nil {
		return "last error: " + *p
	}
	return "no request completed yet"
}

// Snapshot is the Manager's state for metrics and readiness.
type Snapshot struct {
	// Ready is true once a first certificate was obtained.
	Ready bool
	// Valid is true while the current certificate has not expired.
	Valid bool
	// Expiry is the current certificate's NotAfter; zero before the first.
	// Exported as identity_cert_expiration_timestamp_seconds.
	Expiry time.Time
	// IssuerSHA256 is the hex SHA-256 of the DER of the certificate that
	// issued the current one (weft_identity_cert_issuer_info), "" before the
	// first or when the chain holds no issuer: `weft check --proxy` compares
	// it with the issuer Secret.
	IssuerSHA256 string
	// Refreshes counts certificates obtained (identity_cert_refresh_total).
	Refreshes uint64
	// Failures counts failed requests (identity_cert_refresh_failures_total).
	Failures uint64
	// LastError is the last failure's message; empty when the last request
	// succeeded or none was made.
	LastError string
}

// Snapshot returns the current state.
func (m *Manager) Snapshot() Snapshot {
	s := Snapshot{Refreshes: m.refreshes.Load(), Failures: m.failures.Load()}
	if p := m.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	if v := m.svid.Load(); v != nil {
		s.Ready = true
		s.Expiry = v.Certificates[0].NotAfter
		s.Valid = time.Now().Before(s.Expiry)
		if len(v.Certificates) > 1 {
			sum := sha256.Sum256(v.Certificates[1].Raw)
			s.IssuerSHA256 = hex.EncodeToString(sum[:])
		}
	}
	return s
}

// Start runs the Manager in a goroutine until ctx is done.
func (m *Manager) Start(ctx context.Context) {
	go func() { _ = m.Run(ctx) }()
}

// Run requests a certificate at once, then renews it at RenewFraction of its
// remaining lifetime, retrying failures with exponential back-off and
// jitter, until ctx is done. A failed renewal keeps the current certificate
// in use until it expires; the Manager keeps retrying after that. Run also
// polls TrustAnchorsFile when configured. It returns nil when ctx ends, or an
// error if the client cannot be built.
func (m *Manager) Run(ctx context.Context) error {
	tlsConf := tlsconfig.TLSClientConfig(m, tlsconfig.AuthorizeID(m.cfg.ServiceID))
	tlsConf.MinVersion = tls.VersionTLS13
	// gRPC's own reconnect back-off (up to 120 s) would make RPCs fail fast
	// long after the service is back; align it with ours.
	conn, err := grpc.NewClient(m.cfg.ServiceAddr,
		grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: m.cfg.BackoffMin, Multiplier: 2, Jitter: 0.2, MaxDelay: m.cfg.BackoffMax},
			MinConnectTimeout: m.cfg.RequestTimeout,
		}))
	if err != nil {
		return fmt.Errorf("identity: client for %s: %w", m.cfg.ServiceAddr, err)
	}
	defer conn.Close()
	client := identityv1.NewIdentityClient(conn)

	var poll <-chan time.Time
	if m.cfg.TrustAnchorsFile != "" && len(m.cfg.TrustAnchorsPEM) == 0 {
		t := time.NewTicker(m.cfg.PollInterval)
		defer t.Stop()
		poll = t.C
	}
	backoff := m.cfg.BackoffMin
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll:
			m.reloadAnchors()
			continue
		case <-timer.C:
		}
		var wait time.Duration
		if renewAt, err := m.refresh(ctx, client); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			m.failures.Add(1)
			msg := err.Error()
			m.lastErr.Store(&msg)
			wait = jitter(backoff)
			backoff = min(backoff*2, m.cfg.BackoffMax)
			m.log.Warn("certificate request failed; retrying", "err", err, "retryIn", wait.Round(time.Millisecond), "validUntil", m.Snapshot().Expiry)
		} else {
			m.lastErr.Store(nil)
			backoff = m.cfg.BackoffMin
			// Never closer than BackoffMin: certificates capped by an
			// expiring issuer get ever shorter, and must not turn renewal
			// into a busy loop against the identity service.
			wait = max(time.Until(renewAt), m.cfg.BackoffMin)
		}
		timer.Reset(wait)
	}
}

// jitter returns a duration uniformly in [d/2, d].
func jitter(d time.Duration) time.Duration {
	return d/2 + mrand.N(d/2+1)
}

// refresh requests one certificate and installs it; it returns when to renew.
func (m *Manager) refresh(ctx context.Context, client identityv1.IdentityClient) (time.Time, error) {
	tok, err := os.ReadFile(m.cfg.TokenFile)
	if err != nil {
		return time.Time{}, fmt.Errorf("read token: %w", err)
	}
	tok = bytes.TrimSpace(tok)
	if len(tok) == 0 {
		return time.Time{}, fmt.Errorf("token file %s is empty", m.cfg.TokenFile)
	}
	rctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	resp, err := client.Certify(rctx, &identityv1.CertifyRequest{
		Identity:                  m.cfg.LocalID.String(),
		Token:                     tok,
		CertificateSigningRequest: m.csr,
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("certify %s at %s: %w", m.cfg.LocalID, m.cfg.ServiceAddr, err)
	}
	svid, err := m.validate(resp.GetLeafCertificate(), resp.GetIntermediateCertificates())
	if err != nil {
		return time.Time{}, fmt.Errorf("certificate from %s: %w", m.cfg.ServiceAddr, err)
	}
	now := time.Now()
	na := svid.Certificates[0].NotAfter
	m.svid.Store(svid)
	m.refreshes.Add(1)
	m.readyOnce.Do(func() { close(m.ready) })
	renewAt := now.Add(time.Duration(float64(na.Sub(now)) * RenewFraction))
	m.log.Info("certificate obtained", "notAfter", na.UTC(), "renewAt", renewAt.UTC())
	return renewAt, nil
}

// validate checks the issued chain against the trust anchors, the identity
// and the key before it is used.
func (m *Manager) validate(leafDER []byte, intermediates [][]byte) (*x509svid.SVID, error) {
	certs := make([]*x509.Certificate, 0, 1+len(intermediates))
	for _, der := range append([][]byte{leafDER}, intermediates...) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
		certs = append(certs, c)
	}
	id, _, err := x509svid.Verify(certs, m)
	if err != nil {
		return nil, err
	}
	if id != m.cfg.LocalID {
		return nil, fmt.Errorf("issued for %s, not %s", id, m.cfg.LocalID)
	}
	if pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&m.key.PublicKey) {
		return nil, errors.New("issued for another key")
	}
	return &x509svid.SVID{ID: id, Certificates: certs, PrivateKey: m.key}, nil
}

func (m *Manager) reloadAnchors() {
	b, err := os.ReadFile(m.cfg.TrustAnchorsFile)
	if err != nil {
		m.log.Error("trust anchors not readable; keeping the loaded ones", "file", m.cfg.TrustAnchorsFile, "err", err)
		return
	}
	if bytes.Equal(b, m.anchors) {
		return
	}
	if err := m.SetTrustAnchors(b); err != nil {
		m.log.Error("trust anchors not loaded; keeping the previous ones", "file", m.cfg.TrustAnchorsFile, "err", err)
		return
	}
	m.anchors = b
	m.log.Info("trust anchors reloaded", "file", m.cfg.TrustAnchorsFile)
}
