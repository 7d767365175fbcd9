// Package promsource answers the viz query API (stat, routes, edges) from an
// existing Prometheus that scrapes the proxies, instead of the viz
// extension's own window. It asks Prometheus, with PromQL over
// /api/v1/query, for the increase over the query's span of every proxy
// series the window keeps (summed by the labels the window keys on),
// turns the answers into window.Totals and lets window.View select and
// aggregate the rows — the same code that answers from the window, so
// both sources give the same answers over the same traffic.
//
// The Prometheus series must carry the target labels `namespace` and
// `pod` (manifests' scrape configuration sets them, as Linkerd's does);
// the pod's workload is read from the viz controller's pod informer, or
// from the `deployment`, `statefulset`, `daemonset` and `k8s_job` target
// labels for pods that are gone.
package promsource

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/weftmesh/weft/viz/window"
)

// DefaultSelector picks the proxies' series: the scrape job of
// manifests' Prometheus configuration.
const DefaultSelector = `job="weft-proxy"`

// Config configures a Source.
type Config struct {
	// URL is Prometheus' base URL, e.g.
	// http://prometheus.monitoring.svc.cluster.local:9090.
	URL string
	// Selector holds label matchers added to every query (without
	// braces); "" means DefaultSelector.
	Selector string
	// Inventory returns the pods (MESHED column, workload of each pod) and
	// the ClusterIP:port → "ns/name" map of Services. Required.
	Inventory func() ([]window.PodInfo, map[string]string)
	// Client; nil means one with a 30 s timeout.
	Client *http.Client
	// Now is the evaluation time; nil means time.Now.
	Now func() time.Time
	// Step is the resolution of stat's sparklines (the window's scrape
	// interval); 0 means none.
	Step time.Duration
}

// Source queries Prometheus. It is safe for concurrent use.
type Source struct {
	base string
	sel  string
	inv  func() ([]window.PodInfo, map[string]string)
	hc   *http.Client
	now  func() time.Time
	step time.Duration
}

// New validates cfg.
func New(cfg Config) (*Source, error) {
	base, err := CheckURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Inventory == nil {
		return nil, fmt.Errorf("promsource: Config.Inventory is required")
	}
	s := &Source{base: base, sel: cfg.Selector, inv: cfg.Inventory, hc: cfg.Client, now: cfg.Now, step: cfg.Step}
	if s.sel == "" {
		s.sel = DefaultSelector
	}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// URL is the Prometheus base URL queried.
func (s *Source) URL() string { return s.base }

// Stat answers `viz stat` (see window.Window.Stat).
func (s *Source) Stat(ctx context.Context, q window.Query) ([]window.Row, error) {
	v, err := s.view(ctx, q.Window, s.step > 0, window.HTTP, window.TCP)
	if err != nil {
		return nil, err
	}
	return v.Stat(q), nil
}

// Routes answers `viz routes` (see window.Window.Routes).
func (s *Source) Routes(ctx context.Context, q window.Query) ([]window.RouteRow, error) {
	v, err := s.view(ctx, q.Window, false, window.Route, window.HTTP)
	if err != nil {
		return nil, err
	}
	return v.Routes(q), nil
}

// Edges answers `viz edges` (see window.Window.Edges).
func (s *Source) Edges(ctx context.Context, q window.Query) ([]window.Edge, error) {
	v, err := s.view(ctx, q.Window, false, window.HTTP, window.TCP)
	if err != nil {
		return nil, err
	}
	return v.Edges(q), nil
}
