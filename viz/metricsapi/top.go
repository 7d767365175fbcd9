package metricsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/viz/tap"
	"github.com/weftmesh/weft/viz/top"
)

// TopPath answers one bounded tap of a resource, aggregated as
// `weft viz top` does: the dashboard's live top panel.
const TopPath = "/api/v1/top"

// Bounds of one /api/v1/top request.
const (
	DefaultTopDuration = 5 * time.Second
	MaxTopDuration     = 10 * time.Second
	DefaultTopMax      = 500
	MaxTopMax          = 1000
	// DefaultTopConcurrency is how many top requests run at once; more are
	// answered 429.
	DefaultTopConcurrency = 2
)

// Tapper taps the meshed pods of t: the viz controller's tap Merger
// (viz/tap), which dials each proxy with the component's own identity. It
// calls emit for each event until ctx ends or limit requests ended (0: no
// limit). An error wrapping tap.ErrNotFound means t has no meshed pods;
// any other error means tap cannot serve now.
type Tapper interface {
	Tap(ctx context.Context, t tap.Target, req *tapv1.ObserveRequest, limit int, emit func(tap.Event) error) error
}

// TapFunc adapts a function to Tapper.
type TapFunc func(ctx context.Context, t tap.Target, req *tapv1.ObserveRequest, limit int, emit func(tap.Event) error) error

// Tap implements Tapper.
func (f TapFunc) Tap(ctx context.Context, t tap.Target, req *tapv1.ObserveRequest, limit int, emit func(tap.Event) error) error {
	return f(ctx, t, req, limit, emit)
}

// Top is /api/v1/top's answer.
type Top struct {
	Namespace string `json:"namespace"`
	Resource  string `json:"resource"` // plural, as RBAC names it (deployments)
	Name      string `json:"name"`
	Duration  string `json:"duration"`
	Max       int    `json:"max"`
	// Events is how many tap events arrived; Requests how many requests
	// ended within the tap (the rows' counts); Complete says the tap
	// stopped at Max requests rather than at Duration.
	Events   int      `json:"events"`
	Requests int      `json:"requests"`
	Complete bool     `json:"complete"`
	Rows     []TopRow `json:"rows"`
}

// TopRow is one top.Row; latencies are to the response's first byte, in
// microseconds and as top.Latency renders them.
type TopRow struct {
	Source      string    `json:"source"`
	Destination string    `json:"destination"`
	Method      string    `json:"method"`
	Path        string    `json:"path"`
	Count       int       `json:"count"`
	Successes   int       `json:"successes"`
	Success     float64   `json:"success"`
	BestUs      int64     `json:"bestUs"`
	WorstUs     int64     `json:"worstUs"`
	LastUs      int64     `json:"lastUs"`
	Latency     [3]string `json:"latency"` // best, worst, last
}

// topError is a JSON error with a machine-readable reason the page acts on.
type topError struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// Reasons of /api/v1/top's errors.
const (
	ReasonTapDisabled = "TapDisabled" // 503: the controller runs without tap
	ReasonTapNotReady = "TapNotReady" // 503: no component certificate yet, or the pods cannot be listed
	ReasonNotFound    = "NotFound"    // 404: no such resource, or no meshed pods
	ReasonBusy        = "Busy"        // 429: too many top requests at once
	ReasonBadRequest  = "BadRequest"  // 400
)

func writeTopError(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(topError{Error: msg, Reason: reason})
}

// topQuery is a parsed /api/v1/top request.
type topQuery struct {
	target   tap.Target
	duration time.Duration
	max      int
}

func parseTopQuery(r *http.Request) (topQuery, error) {
	v := r.URL.Query()
	q := topQuery{duration: DefaultTopDuration, max: DefaultTopMax}
	res, ns := v.Get("resource"), v.Get("namespace")
	if res == "" {
		return q, errors.New("missing resource: pass resource=TYPE/NAME (e.g. deploy/books)")
	}
	t, err := tap.ParseTarget(res, ns)
	if err != nil {
		return q, fmt.Errorf("resource: %w", err)
	}
	if t.Namespace == "" {
		return q, fmt.Errorf("missing namespace: pass namespace=NS with resource=%s", res)
	}
	q.target = t
	if d := v.Get("duration"); d != "" {
		if q.duration, err = time.ParseDuration(d); err != nil || q.duration <= 0 || q.duration > MaxTopDuration {
			return q, fmt.Errorf("duration %q: want a duration in (0, %s], e.g. 5s", d, MaxTopDuration)
		}
	}
	if m := v.Get("max"); m != "" {
		if q.max, err = strconv.Atoi(m); err != nil || q.max < 1 || q.max > MaxTopMax {
			return q, fmt.Errorf("max %q: want a number of requests from 1 to %d", m, MaxTopMax)
		}
	}
	return q, nil
}

// serveTop runs one bounded tap through Config.Tap and answers its top
// table. It taps with the viz component's identity: whoever reaches the
// viz Service (get services/proxy on weft-viz) may call it, see
// docs/viz-dashboard.md.
func (s *Server) serveTop(w http.ResponseWriter, r *http.Request) {
	q, err := parseTopQuery(r)
	if err != nil {
		writeTopError(w, http.StatusBadRequest, ReasonBadRequest, err.Error())
		return
	}
	if s.cfg.Tap == nil {
		writeTopError(w, http.StatusServiceUnavailable, ReasonTapDisabled,
			"tap is not enabled in this viz controller (it runs without --tap-addr): live top is unavailable; reinstall viz with tap (weft viz install | kubectl apply -f -)")
		return
	}
	select {
	case s.topSlots <- struct{}{}:
		defer func() { <-s.topSlots }()
	default:
		writeTopError(w, http.StatusTooManyRequests, ReasonBusy,
			fmt.Sprintf("%d live top requests are already running (the limit): try again in a few seconds", cap(s.topSlots)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), q.duration)
	defer cancel()
	table := &top.Table{}
	events := 0
	obs := &tapv1.ObserveRequest{Filter: &tapv1.Filter{}, Limit: uint32(q.max)}
	err = s.cfg.Tap.Tap(ctx, q.target, obs, q.max, func(ev tap.Event) error {
		events++
		table.Add(ev)
		return nil
	})
	switch {
	case errors.Is(err, tap.ErrNotFound):
		writeTopError(w, http.StatusNotFound, ReasonNotFound, err.Error())
		return
	case err != nil && r.Context().Err() == nil:
		writeTopError(w, http.StatusServiceUnavailable, ReasonTapNotReady, err.Error())
		return
	}
	out := Top{Namespace: q.target.Namespace, Resource: q.target.Resource, Name: q.target.Name,
		Duration: q.duration.String(), Max: q.max, Events: events, Complete: ctx.Err() == nil, Rows: []TopRow{}}
	for _, row := range table.Rows() {
		out.Requests += row.Count
		out.Rows = append(out.Rows, TopRow{Source: row.Source, Destination: row.Destination, Method: row.Method, Path: row.Path,
			Count: row.Count, Successes: row.Successes, Success: row.Success(),
			BestUs: row.Best.Microseconds(), WorstUs: row.Worst.Microseconds(), LastUs: row.Last.Microseconds(),
			Latency: [3]string{top.Latency(row.Best), top.Latency(row.Worst), top.Latency(row.Last)}})
	}
	writeJSON(w, out)
}
