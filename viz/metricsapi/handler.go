package metricsapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/weftmesh/weft/viz/web"
	"github.com/weftmesh/weft/viz/window"
)

// API paths.
const (
	StatPath   = "/api/v1/stat"
	RoutesPath = "/api/v1/routes"
	EdgesPath  = "/api/v1/edges"
	HealthPath = "/healthz"
)

// Handler serves the read-only query API. Every endpoint is GET only and
// answers JSON; parameters: resource (TYPE[/NAME]), namespace ("" = all),
// from, to (TYPE/NAME), window (a Go duration, default 1m).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StatPath, func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r)
		if err != nil {
			badRequest(w, err)
			return
		}
		rows, err := s.src.Stat(r.Context(), q)
		answer(w, rows, err)
	})
	mux.HandleFunc("GET "+RoutesPath, func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r)
		if err != nil {
			badRequest(w, err)
			return
		}
		if q.Resource.Name == "" {
			badRequest(w, fmt.Errorf("routes needs a named resource: svc/NAME or deploy/NAME"))
			return
		}
		rows, err := s.src.Routes(r.Context(), q)
		answer(w, rows, err)
	})
	mux.HandleFunc("GET "+EdgesPath, func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r)
		if err != nil {
			badRequest(w, err)
			return
		}
		rows, err := s.src.Edges(r.Context(), q)
		answer(w, rows, err)
	})
	mux.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		h := Health{Source: s.SourceName(), Window: s.win.Stats(), LastRoundErrors: s.lastErrs, LastRound: s.lastRound.String(), Interval: s.cfg.Interval.String()}
		s.mu.Unlock()
		writeJSON(w, h)
	})
	mux.HandleFunc("GET "+SeriesPath, s.serveSeries)
	mux.HandleFunc("GET "+TopPath, s.serveTop) // live top (top.go)
	mux.Handle("/", web.Handler())             // the dashboard (docs/viz-dashboard.md)
	return securityHeaders(mux)
}

// Health is /healthz's answer.
type Health struct {
	// Source is "window" or "prometheus URL".
	Source          string       `json:"source"`
	Window          window.Stats `json:"window"`
	LastRoundErrors int          `json:"lastRoundErrors"`
	LastRound       string       `json:"lastRound"`
	Interval        string       `json:"interval"`
}

func parseQuery(r *http.Request) (window.Query, error) {
	v := r.URL.Query()
	ns := v.Get("namespace")
	res := v.Get("resource")
	if res == "" {
		return window.Query{}, fmt.Errorf("missing resource: pass resource=TYPE[/NAME]")
	}
	rr, err := window.ParseResource(res, ns)
	if err != nil {
		return window.Query{}, err
	}
	q := window.Query{Resource: rr, Window: time.Minute}
	if d := v.Get("window"); d != "" {
		if q.Window, err = time.ParseDuration(d); err != nil || q.Window <= 0 {
			return window.Query{}, fmt.Errorf("window %q is not a positive duration such as 1m", d)
		}
	}
	for _, f := range []struct {
		name string
		dst  **window.Resource
	}{{"from", &q.From}, {"to", &q.To}} {
		x := v.Get(f.name)
		if x == "" {
			continue
		}
		fr, err := window.ParseResource(x, ns)
		if err != nil {
			return window.Query{}, fmt.Errorf("%s: %w", f.name, err)
		}
		if fns := v.Get(f.name + "Namespace"); fns != "" {
			fr.Namespace = fns
		}
		*f.dst = &fr
	}
	if q.From != nil && q.To != nil {
		return window.Query{}, fmt.Errorf("pass --from or --to, not both")
	}
	return q, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	writeJSONBody(w, v)
}

func writeJSONBody(w http.ResponseWriter, v any) { _ = json.NewEncoder(w).Encode(v) }

func badRequest(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// securityHeaders sets headers on every answer: no framing, no sniffing,
// a strict CSP (only same-origin scripts and styles), no referrer.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}
