// Package metricsapi runs the viz extension's metrics window: it discovers
// meshed pods with an informer, scrapes every proxy's /metrics on the pod
// network each interval into a window.Window, and serves the read-only
// query API (/api/v1/stat, /api/v1/routes, /api/v1/edges) that
// `weft viz stat|routes|edges` reach through the API server's service
// proxy, and the dashboard (viz/web) with its live top (/api/v1/top, one
// bounded tap through Config.Tap).
package metricsapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"

	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/internal/workload"
	"github.com/weftmesh/weft/viz/window"
)

// AdminPort is the proxies' admin port, which serves /metrics.
const AdminPort = 4191

// Port is the port the API listens on in the viz Deployment; AdminAddrPort
// serves /ready, /live and /metrics.
const (
	Port          = 8084
	AdminAddrPort = 9994
)

// Defaults of Config.Interval and Config.Span.
const (
	DefaultInterval = 10 * time.Second
	DefaultSpan     = time.Hour
)

// Config configures a Server.
type Config struct {
	Client kubernetes.Interface
	// Interval between scrape rounds (default 10s); Span of the window
	// (default 1h).
	Interval, Span time.Duration
	// MaxSeries bounds the window (default window's).
	MaxSeries int
	// Scrape fetches a pod's proxy metrics; default GET
	// http://POD_IP:4191/metrics.
	Scrape func(ctx context.Context, pod *corev1.Pod) (io.ReadCloser, error)
	// Concurrency is how many pods are scraped at once (default 32).
	Concurrency int
	// ListenAddr of the query API (default ":8084"); AdminAddr of /ready,
	// /live and /metrics (default ":9994"). Used by Run only.
	ListenAddr, AdminAddr string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// PrometheusURL, when set, makes queries go to that Prometheus
	// (package promsource) instead of the window: proxies are not
	// scraped, the informers only keep the pod and Service inventory.
	// PrometheusSelector narrows its series ("" is promsource's default).
	PrometheusURL, PrometheusSelector string
	// Tap runs the live top panel's taps (GET /api/v1/top); nil answers
	// 503 "tap is not enabled". TopConcurrency bounds the taps running at
	// once (0: DefaultTopConcurrency); more are answered 429.
	Tap            Tapper
	TopConcurrency int
}

// Server owns the window and its scraper.
type Server struct {
	cfg  Config
	win  *window.Window
	src  Source
	pods listersv1.PodLister
	svcs listersv1.ServiceLister
	fact informers.SharedInformerFactory

	synced   chan struct{} // closed once the informers have synced
	topSlots chan struct{} // one per running /api/v1/top tap

	mu        sync.Mutex
	lastErrs  int
	lastRound time.Duration
}

// New validates cfg and returns a Server; Run starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("metricsapi: Config.Client is required")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Interval < time.Second {
		return nil, fmt.Errorf("metricsapi: scrape interval %s is below 1s", cfg.Interval)
	}
	if cfg.Span == 0 {
		cfg.Span = DefaultSpan
	}
	if cfg.Span < cfg.Interval {
		return nil, fmt.Errorf("metricsapi: window span %s is shorter than the interval %s", cfg.Span, cfg.Interval)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 32
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ":" + strconv.Itoa(Port)
	}
	if cfg.AdminAddr == "" {
		cfg.AdminAddr = ":" + strconv.Itoa(AdminAddrPort)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TopConcurrency <= 0 {
		cfg.TopConcurrency = DefaultTopConcurrency
	}
	if cfg.Scrape == nil {
		hc := &http.Client{Timeout: cfg.Interval}
		cfg.Scrape = func(ctx context.Context, pod *corev1.Pod) (io.ReadCloser, error) {
			u := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(AdminPort)) + "/metrics"
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return nil, fmt.Errorf("scrape %s: %w", u, err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				return nil, fmt.Errorf("scrape %s/%s: %w", pod.Namespace, pod.Name, err)
			}
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				return nil, fmt.Errorf("scrape %s/%s: %s", pod.Namespace, pod.Name, resp.Status)
			}
			return resp.Body, nil
		}
	}
	fact := informers.NewSharedInformerFactory(cfg.Client, 0)
	s := &Server{cfg: cfg, fact: fact, synced: make(chan struct{}), topSlots: make(chan struct{}, cfg.TopConcurrency),
		win:  window.New(window.Config{Interval: cfg.Interval, Span: cfg.Span, MaxSeries: cfg.MaxSeries}),
		pods: fact.Core().V1().Pods().Lister(), svcs: fact.Core().V1().Services().Lister()}
	src, err := newSource(&cfg, s.win)
	if err != nil {
		return nil, fmt.Errorf("metricsapi: %w", err)
	}
	s.src = src
	return s, nil
}

// Window is the server's window (for tests and the dashboard).
func (s *Server) Window() *window.Window { return s.win }

// Scrape syncs the informers and scrapes every interval until ctx ends.
func (s *Server) Scrape(ctx context.Context) error {
	s.fact.Start(ctx.Done())
	for typ, ok := range s.fact.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("metricsapi: sync %v informer: %w", typ, ctx.Err())
		}
	}
	close(s.synced)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		s.Round(ctx)
		select {
		case <-ctx.Done():
			s.fact.Shutdown()
			return nil
		case <-t.C:
		}
	}
}

// Round runs one scrape round of every running meshed pod.
func (s *Server) Round(ctx context.Context) {
	start := time.Now()
	pods, _ := s.pods.List(labels.Everything())
	infos := make([]window.PodInfo, 0, len(pods))
	var meshed []*corev1.Pod
	var meshedInfo []window.PodInfo
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		kind, name := workload.Owner(p)
		_, isMeshed := p.Annotations[annotations.ProxyVersion]
		infos = append(infos, window.PodInfo{Namespace: p.Namespace, Name: p.Name, Kind: kind, Workload: name, Meshed: isMeshed})
		if isMeshed && p.Status.PodIP != "" {
			meshed = append(meshed, p)
			meshedInfo = append(meshedInfo, infos[len(infos)-1])
		}
	}
	s.win.SetPods(infos)
	s.win.SetServices(s.serviceAddrs())
	if s.cfg.PrometheusURL != "" {
		return // Prometheus scrapes; the window keeps the inventory only
	}
	tick := s.win.Begin(start)
	sem := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := 0
	for i, p := range meshed {
		info := meshedInfo[i]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := s.scrapeOne(ctx, tick, p, info); err != nil {
				mu.Lock()
				errs++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.mu.Lock()
	s.lastErrs, s.lastRound = errs, time.Since(start)
	s.mu.Unlock()
}

func (s *Server) scrapeOne(ctx context.Context, tick int64, p *corev1.Pod, info window.PodInfo) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Interval)
	defer cancel()
	rc, err := s.cfg.Scrape(ctx, p)
	if err != nil {
		return err
	}
	defer rc.Close()
	return s.win.Ingest(tick, info, io.LimitReader(rc, 64<<20))
}

// serviceAddrs maps every ClusterIP:port to its Service's ns/name, so that
// authorities that are addresses read as Services.
func (s *Server) serviceAddrs() map[string]string {
	svcs, _ := s.svcs.List(labels.Everything())
	out := map[string]string{}
	for _, svc := range svcs {
		for _, ip := range svc.Spec.ClusterIPs {
			if ip == "" || ip == corev1.ClusterIPNone {
				continue
			}
			for _, port := range svc.Spec.Ports {
				out[net.JoinHostPort(ip, strconv.Itoa(int(port.Port)))] = svc.Namespace + "/" + svc.Name
			}
		}
	}
	return out
}
