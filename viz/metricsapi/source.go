package metricsapi

import (
	"context"
	"net/http"

	"github.com/weftmesh/weft/viz/promsource"
	"github.com/weftmesh/weft/viz/window"
)

// Source answers the query API: the metrics window (the default) or an
// existing Prometheus (Config.PrometheusURL, package promsource). Both
// select rows with the same code (window.View) and give the same answers
// over the same traffic.
type Source interface {
	Stat(ctx context.Context, q window.Query) ([]window.Row, error)
	Routes(ctx context.Context, q window.Query) ([]window.RouteRow, error)
	Edges(ctx context.Context, q window.Query) ([]window.Edge, error)
}

// WindowSource answers from a metrics window.
type WindowSource struct{ W *window.Window }

// Stat implements Source.
func (s WindowSource) Stat(_ context.Context, q window.Query) ([]window.Row, error) {
	return s.W.Stat(q), nil
}

// Routes implements Source.
func (s WindowSource) Routes(_ context.Context, q window.Query) ([]window.RouteRow, error) {
	return s.W.Routes(q), nil
}

// Edges implements Source.
func (s WindowSource) Edges(_ context.Context, q window.Query) ([]window.Edge, error) {
	return s.W.Edges(q), nil
}

// newSource is the window, or Prometheus when cfg names one; then the
// window holds only the pod and Service inventory (no proxy is scraped).
func newSource(cfg *Config, win *window.Window) (Source, error) {
	if cfg.PrometheusURL == "" {
		return WindowSource{win}, nil
	}
	return promsource.New(promsource.Config{URL: cfg.PrometheusURL, Selector: cfg.PrometheusSelector, Inventory: win.Inventory, Step: cfg.Interval})
}

// Source is what answers the query API (the dashboard should read it,
// not Window, which holds only the inventory with a Prometheus source).
func (s *Server) Source() Source { return s.src }

// SourceName says where answers come from: "window" or the Prometheus URL.
func (s *Server) SourceName() string {
	if p, ok := s.src.(*promsource.Source); ok {
		return "prometheus " + p.URL()
	}
	return "window"
}

// answer writes v, or err as 502 (the source failed, not the request).
func answer(w http.ResponseWriter, v any, err error) {
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		writeJSONBody(w, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, v)
}
