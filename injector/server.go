package injector

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/internal/ctlserver"
)

// ValuesKey is the key of the weft-config ConfigMap holding Values as JSON.
const ValuesKey = "values"

// Config configures the injector server.
type Config struct {
	Client kubernetes.Interface
	// Namespace of the control plane (where weft-config lives); "" means "weft".
	Namespace string
	// ConfigMap holding the install values; "" means "weft-config".
	ConfigMap string
	// CertFile and KeyFile are the webhook's serving certificate; they are
	// re-read when they change on disk.
	CertFile, KeyFile string
	// ListenAddr; "" means ":8443". AdminAddr; "" means ":9995".
	ListenAddr, AdminAddr string
	Logger                *slog.Logger
}

// Server serves the webhook at /inject over TLS.
type Server struct {
	cfg     Config
	reg     *prometheus.Registry
	reviews *prometheus.CounterVec
	certs   certReloader
	log     *slog.Logger
}

// New validates cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("injector: a kubernetes client is required")
	}
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("injector: --tls-cert-file and --tls-key-file are required")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "weft"
	}
	if cfg.ConfigMap == "" {
		cfg.ConfigMap = "weft-config"
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ":8443"
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = ":9995"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, reg: prometheus.NewRegistry(), log: cfg.Logger, certs: certReloader{cert: cfg.CertFile, key: cfg.KeyFile}}
	s.reviews = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weft_injector_reviews_total", Help: "Admission reviews by outcome (injected, skipped, denied, error).",
	}, []string{"outcome"})
	s.reg.MustRegister(s.reviews)
	if _, err := s.certs.get(nil); err != nil {
		return nil, err
	}
	return s, nil
}

// Run listens and serves until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	return ctlserver.Run(ctx, s.serverConfig(), s.api())
}

// Serve serves on the given listeners until ctx is done.
func (s *Server) Serve(ctx context.Context, lis, admin net.Listener) error {
	return ctlserver.Serve(ctx, s.serverConfig(), s.api(), lis, admin)
}

// drain is how long admission reviews in flight may finish on shutdown.
const drain = 10 * time.Second

func (s *Server) serverConfig() ctlserver.Config {
	return ctlserver.Config{
		Name: "injector", Addr: s.cfg.ListenAddr, AdminAddr: s.cfg.AdminAddr,
		Gatherer: s.reg, Drain: drain, Logger: s.log,
		SelfTests: []ctlserver.SelfTest{{Name: SelfTestServedCertificate, Run: servedCertificate}},
	}
}

func (s *Server) api() ctlserver.API {
	wh := &Webhook{
		Namespaces: &kubeNamespaces{client: s.cfg.Client},
		Values:     &configMapValues{client: s.cfg.Client, ns: s.cfg.Namespace, name: s.cfg.ConfigMap, ttl: 5 * time.Second},
		Logger:     s.log,
		Observe:    func(o string) { s.reviews.WithLabelValues(o).Inc() },
	}
	mux := http.NewServeMux()
	mux.Handle("/inject", wh)
	// The API server sends AdmissionReviews of whole pods: allow its
	// default 3 MiB request body through the 30 s read limit.
	return ctlserver.HTTPS(ctlserver.NewHTTP(ctlserver.Limits{Handshake: 5 * time.Second}, mux,
		&tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.get}))
}

// SelfTestServedCertificate is the self-test whose detail is the PEM chain
// the webhook really serves (`weft check` verifies it with the caBundle the
// API server uses).
const SelfTestServedCertificate = "served-certificate"

func servedCertificate(ctx context.Context, addr string) (string, error) {
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the checker verifies what is returned
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("dial the webhook at %s: %w", addr, err)
	}
	defer c.Close()
	var out []byte
	for _, cert := range c.(*tls.Conn).ConnectionState().PeerCertificates {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	return string(out), nil
}

// certReloader re-reads the key pair when either file changes. A change is a
// different inode, size or modification time: Secret volumes and atomic
// writes replace files by rename, which always gives a new inode, so two
// updates within one mtime tick are still seen.
type certReloader struct {
	cert, key string
	mu        sync.Mutex
	stamp     [2]fileStamp
	cur       *tls.Certificate
}

type fileStamp struct {
	ino  uint64
	size int64
	mod  time.Time
}

func stampOf(st os.FileInfo) fileStamp {
	fs := fileStamp{size: st.Size(), mod: st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		fs.ino = sys.Ino
	}
	return fs
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var mt [2]fileStamp
	for i, p := range []string{c.cert, c.key} {
		st, err := os.Stat(p)
		if err != nil {
			if c.cur != nil {
				return c.cur, nil
			}
			return nil, fmt.Errorf("webhook certificate: %w", err)
		}
		mt[i] = stampOf(st)
	}
	if c.cur != nil && mt == c.stamp {
		return c.cur, nil
	}
	pair, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		if c.cur != nil {
			return c.cur, nil // keep serving the previous pair while files are half-written
		}
		return nil, fmt.Errorf("webhook certificate: %w", err)
	}
	c.cur, c.stamp = &pair, mt
	return c.cur, nil
}

type kubeNamespaces struct{ client kubernetes.Interface }

func (k *kubeNamespaces) Annotations(ctx context.Context, ns string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := k.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get namespace %s: %w", ns, err)
	}
	return n.Annotations, nil
}

// configMapValues reads Values from the weft-config ConfigMap, cached for ttl.
type configMapValues struct {
	client   kubernetes.Interface
	ns, name string
	ttl      time.Duration
	mu       sync.Mutex
	at       time.Time
	cur      Values
}

func (c *configMapValues) Values() (Values, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < c.ttl {
		return c.cur, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cm, err := c.client.CoreV1().ConfigMaps(c.ns).Get(ctx, c.name, metav1.GetOptions{})
	if err != nil {
		return Values{}, fmt.Errorf("read %s/%s: %w", c.ns, c.name, err)
	}
	v := DefaultValues()
	if err := json.Unmarshal([]byte(cm.Data[ValuesKey]), &v); err != nil {
		return Values{}, fmt.Errorf("parse %s/%s key %q: %w", c.ns, c.name, ValuesKey, err)
	}
	if err := v.Validate(); err != nil {
		return Values{}, fmt.Errorf("%s/%s: %w", c.ns, c.name, err)
	}
	c.cur, c.at = v, time.Now()
	return v, nil
}
