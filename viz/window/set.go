package window

import (
	"strings"
	"time"
)

// seriesSet is what Stat, Routes and Edges read: the window's series over a
// query's span, or Totals that another source (Prometheus) computed. The
// query logic — which series belong to which row — exists once, here and
// in query.go and routes.go, for every source.
type seriesSet struct {
	// each calls f for every series with a function that adds the
	// series' figures over the span to an acc.
	each     func(f func(k *Key, fill func(a *acc)))
	pods     []PodInfo
	svcName  func(authority string) (ns, name string)
	secs     float64 // the span in seconds
	interval float64 // the resolution in seconds (sparklines)
	spark    int64   // sparkline points; 0: none
}

// set is the window's series over the last d (call under w.mu).
func (w *Window) set(d time.Duration) *seriesSet {
	first, last, secs := w.span(d)
	return &seriesSet{
		each: func(f func(k *Key, fill func(a *acc))) {
			for _, s := range w.series {
				k := &s.key
				f(k, func(a *acc) { s.each(first, last, func(p *Point) { a.add(p, k, last, first) }) })
			}
		},
		pods: w.pods, svcName: w.svcName, secs: secs, interval: w.cfg.Interval.Seconds(),
		spark: max(last-first+1, 0),
	}
}

// Totals are one series' sums over a query's span, as a source other than
// the window computes them: counters are increases over the span, Open is
// the gauge at its end, Buckets are per-bucket (not cumulative) counts.
type Totals struct {
	Key                           Key
	Requests, Success             float64
	ActualRequests, ActualSuccess float64
	Opened, Open, Read, Written   float64
	Buckets                       [NumBuckets]float64
	// Spark is requests per View.Step, oldest first, ending with the span
	// (optional; shorter slices are aligned to the end).
	Spark []float64
}

func (a *acc) addTotals(t *Totals) {
	a.req += t.Requests
	a.ok += t.Success
	a.areq += t.ActualRequests
	a.aok += t.ActualSuccess
	a.opened += t.Opened
	a.open += t.Open
	a.read += t.Read
	a.written += t.Written
	a.bytes += t.Read + t.Written
	if t.Key.TLS {
		a.tlsReq += t.Requests
		a.tlsBytes += t.Read + t.Written
	}
	for i, n := range t.Buckets {
		a.buckets[i] += n
	}
	if a.spark != nil && t.Key.Family != TCP {
		off := len(a.spark) - len(t.Spark)
		for i, n := range t.Spark {
			if off+i >= 0 {
				a.spark[off+i] += n
			}
		}
	}
}

// View is a set of Totals with the inventory the queries need: it answers
// Stat, Routes and Edges exactly as the window does over its own series.
type View struct {
	Series []Totals
	// Pods is the pod inventory (the MESHED column).
	Pods []PodInfo
	// Services maps ClusterIP:port to "ns/name".
	Services map[string]string
	// Span is the duration the totals cover.
	Span time.Duration
	// Step is the resolution of the Totals' Spark; 0 means no sparklines.
	Step time.Duration
}

func (v *View) set() *seriesSet {
	interval, spark := 1.0, int64(0)
	if v.Step > 0 {
		interval, spark = v.Step.Seconds(), max(int64(v.Span/v.Step), 1)
	}
	return &seriesSet{
		each: func(f func(k *Key, fill func(a *acc))) {
			for i := range v.Series {
				t := &v.Series[i]
				f(&t.Key, func(a *acc) { a.addTotals(t) })
			}
		},
		pods: v.Pods, secs: max(v.Span.Seconds(), 1), interval: interval, spark: spark,
		svcName: func(authority string) (string, string) {
			if s, ok := v.Services[authority]; ok {
				ns, name, _ := strings.Cut(s, "/")
				return ns, name
			}
			return serviceOfAuthority(authority)
		},
	}
}

// Stat is Window.Stat over v.
func (v *View) Stat(q Query) []Row { return stat(q, v.set()) }

// Routes is Window.Routes over v.
func (v *View) Routes(q Query) []RouteRow { return routes(q, v.set()) }

// Edges is Window.Edges over v.
func (v *View) Edges(q Query) []Edge { return edges(q, v.set()) }

// Inventory returns the pods and the Service addresses last set (a source
// that does not scrape still keeps them in the window).
func (w *Window) Inventory() ([]PodInfo, map[string]string) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.pods, w.services
}
