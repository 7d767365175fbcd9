package tap

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
)

// Config configures the tap API server; every zero value is documented.
type Config struct {
	// Client reads pods, workloads, the front-proxy ConfigMap and
	// weft-config, and creates SubjectAccessReviews. Required.
	Client kubernetes.Interface
	// ListenAddr of the HTTPS server the API server calls. Required.
	ListenAddr string
	// CertFile and KeyFile are the serving certificate (the APIService's
	// caBundle signed it). Required.
	CertFile, KeyFile string
	// Identity makes the component's own mTLS credentials to dial proxies
	// with. Required (see IdentityFromConfigMap).
	Identity func(ctx context.Context) (*MTLSSource, error)
	// Refresh is how often the front-proxy ConfigMap is re-read, and how
	// long to wait between failed attempts at it and at Identity; 0 means
	// 30s.
	Refresh time.Duration
	// Follow is how often a tap re-lists its pods; 0 means 2s.
	Follow time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Server serves tap.weft.io/v1alpha1.
type Server struct {
	cfg    Config
	cert   tls.Certificate
	authn  atomic.Pointer[RequestHeader]
	source atomic.Pointer[MTLSSource]
	// notReady says why source is nil.
	notReady atomic.Pointer[string]
	sources  *podIPs
}

// New checks cfg and loads the serving certificate.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("tap: a Kubernetes client is required")
	case cfg.ListenAddr == "":
		return nil, errors.New("tap: a listen address is required")
	case cfg.Identity == nil:
		return nil, errors.New("tap: an identity source is required")
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tap: serving certificate: %w", err)
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, cert: cert, sources: &podIPs{client: cfg.Client, ttl: 30 * time.Second}}
	msg := "obtaining the component's certificate from the identity service"
	s.notReady.Store(&msg)
	return s, nil
}

// Handler is the API's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler {
	return &Handler{Client: s.cfg.Client, Authn: s.authn.Load, Merger: s.merger}
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("tap: listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	go s.loadAuthn(ctx)
	go s.loadIdentity(ctx)
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// The handler verifies the front-proxy certificate itself, against
		// the CA it re-reads from the API server.
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{s.cert}, ClientAuth: tls.RequestClientCert},
		ErrorLog:  slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.cfg.Logger.Info("tap API serving", "addr", ln.Addr().String())
	err := srv.ServeTLS(ln, "", "")
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("tap: serve: %w", err)
}

func (s *Server) loadAuthn(ctx context.Context) {
	for {
		wait := s.cfg.Refresh
		rh, err := LoadRequestHeader(ctx, s.cfg.Client)
		if err != nil {
			s.cfg.Logger.Warn("tap: front-proxy configuration", "err", err)
			if s.authn.Load() == nil {
				wait = min(wait, 5*time.Second)
			}
		} else {
			s.authn.Store(rh)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (s *Server) loadIdentity(ctx context.Context) {
	for {
		src, err := s.cfg.Identity(ctx)
		if err == nil {
			s.source.Store(src)
			s.cfg.Logger.Info("tap: component identity requested from the identity service")
			return
		}
		msg := err.Error()
		s.notReady.Store(&msg)
		s.cfg.Logger.Warn("tap: component identity", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(s.cfg.Refresh, 10*time.Second)):
		}
	}
}

// merger resolves t to its meshed pods now and returns the merger that
// follows them.
func (s *Server) merger(ctx context.Context, t Target) (*Merger, error) {
	src := s.source.Load()
	if src == nil {
		return nil, fmt.Errorf("tap is not ready: %s", *s.notReady.Load())
	}
	if err := src.Ready(); err != nil {
		return nil, fmt.Errorf("tap is not ready: the component's own certificate: %w", err)
	}
	ps, err := Selector(ctx, s.cfg.Client, t)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	pods, err := MeshedPods(ctx, s.cfg.Client, ps)
	if err != nil {
		return nil, err
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("%w: %s/%s in namespace %s has no running meshed pods to tap (inject it: kubectl get %s %s -n %s -o yaml | weft inject - | kubectl apply -f -)",
			ErrNotFound, t.Resource, t.Name, t.Namespace, t.Resource, t.Name, t.Namespace)
	}
	first := true
	return &Merger{
		Source: src, Follow: s.cfg.Follow,
		Pods: func(ctx context.Context) ([]corev1.Pod, error) {
			if first {
				first = false
				return pods, nil
			}
			return MeshedPods(ctx, s.cfg.Client, ps)
		},
		OnError: func(pod string, err error) { s.cfg.Logger.Info("tap: pod stream ended", "pod", pod, "err", err) },
		Enrich:  s.sources.enrich,
	}, nil
}

// MTLSSource is the Source of a running server.
var _ Source = (*MTLSSource)(nil)

// Merger resolves t to its meshed pods now and returns the merger that
// follows them, as the aggregated API taps: for the component's other
// callers (the dashboard's live top, viz/metricsapi), which authorize on
// their own.
func (s *Server) Merger(ctx context.Context, t Target) (*Merger, error) { return s.merger(ctx, t) }
