// Package window keeps a rolling, bounded window of the mesh's golden
// signals, read from every meshed proxy's own /metrics: requests, successes,
// latency histogram buckets, TCP connections and bytes, per workload,
// direction, authority, destination workload, identities and route, at a
// fixed resolution (10 s by default) for a fixed span (1 h by default).
//
// Each scrape is parsed line by line (no metric families are built) and
// aggregated per pod and label set into cumulative counters,
// differenced against the pod's previous scrape (a counter that went
// backwards means the proxy restarted: the new value counts from zero, as
// Prometheus' rate does) and added to the workload's series at the current
// tick. A pod's first scrape only sets its baseline, so a pod that appears
// never produces a spike. Series hold only the ticks that carried traffic,
// in dense rings of fixed-size points (store.go) trimmed to the span;
// label values are interned; MaxSeries bounds the number of series.
// BenchmarkWindowMemory and BenchmarkScrapeRound measure the cost
// (docs/viz.md has the figures).
package window

import (
	"sync"
	"time"
)

// Family says which metric family a series comes from.
type Family uint8

// Families.
const (
	HTTP  Family = iota // request/response_total, response_latency_ms
	Route               // route_* (ServiceProfile routes)
	TCP                 // tcp_*
)

// Key is the identity of one series. Workload series have Pod empty; every
// pod also has per-direction rollup series (Pod set, labels empty) that
// answer `stat po`.
type Key struct {
	Family                Family
	Namespace, Kind, Name string // the scraped pod's workload
	Pod                   string
	Dir                   string // "inbound" or "outbound"
	Authority             string // authority label (route series: dst)
	DstNamespace          string
	DstKind, DstName      string // from dst_deployment, dst_statefulset, …
	DstService            string
	ClientID, ServerID    string
	TLS                   bool
	Route                 string // rt_route; "" outside route series
}

// Point is one tick of a series: deltas over the tick except Open, a gauge.
type Point struct {
	Tick                          int64
	Requests, Success             uint32 // responses (routes: after retries)
	ActualRequests, ActualSuccess uint32 // route attempts, retries included
	Opened, Open                  uint32 // TCP connections opened, open now
	Read, Written                 uint64 // TCP bytes
	// Buckets holds the latency histogram's non-zero buckets as
	// (index, count) varint pairs; indexes into Bounds.
	Buckets []byte
}

// PodInfo is what the window knows of a pod from the informer.
type PodInfo struct {
	Namespace, Name, Kind, Workload string
	Meshed                          bool
}

// Config sizes the window.
type Config struct {
	// Interval is the scrape interval and the resolution (default 10s).
	Interval time.Duration
	// Span is how far back the window reaches (default 1h).
	Span time.Duration
	// MaxSeries caps the number of series (default 100 000); label sets
	// beyond it are dropped and counted in Stats.
	MaxSeries int
}

// Window is safe for concurrent use.
type Window struct {
	cfg Config

	mu       sync.RWMutex
	tick     int64     // the last tick ingested
	start    time.Time // time of tick 0
	series   map[Key]*series
	prev     map[string]*podState // by namespace/pod
	pods     []PodInfo
	dropped  uint64
	strs     map[string]string // interned label values
	services map[string]string // ClusterIP:port → ns/name

	// Scratch space of Ingest, used under mu.
	parser   parser
	lineBuf  [4096]byte
	bscratch []byte
}

// New returns an empty window.
func New(cfg Config) *Window {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Span <= 0 {
		cfg.Span = time.Hour
	}
	if cfg.MaxSeries <= 0 {
		cfg.MaxSeries = 100_000
	}
	return &Window{cfg: cfg, series: map[Key]*series{}, prev: map[string]*podState{}, strs: map[string]string{}, tick: -1}
}

// Interval is the window's resolution.
func (w *Window) Interval() time.Duration { return w.cfg.Interval }

// ticks is the number of ticks the span holds.
func (w *Window) ticks() int64 { return int64(w.cfg.Span / w.cfg.Interval) }

// Stats describe the window's size.
type Stats struct {
	Series, Points int
	Pods           int
	Dropped        uint64
	Tick           int64
}

// Stats returns the window's size.
func (w *Window) Stats() Stats {
	w.mu.RLock()
	defer w.mu.RUnlock()
	st := Stats{Series: len(w.series), Pods: len(w.prev), Dropped: w.dropped, Tick: w.tick}
	for _, s := range w.series {
		st.Points += s.n
	}
	return st
}

// SetPods replaces the pod inventory (meshed and not), used for the MESHED
// column and to forget the baselines of pods that are gone.
func (w *Window) SetPods(pods []PodInfo) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pods = pods
	alive := make(map[string]bool, len(pods))
	for _, p := range pods {
		alive[p.Namespace+"/"+p.Name] = true
	}
	for id := range w.prev {
		if !alive[id] {
			delete(w.prev, id)
		}
	}
}

// intern returns the window's copy of b as a string, so that label values
// repeated across series and scrapes are stored once (and converting b does
// not allocate once it is known).
func (w *Window) intern(b []byte) string {
	if v, ok := w.strs[string(b)]; ok {
		return v
	}
	s := string(b)
	if len(w.strs) < 1_000_000 {
		w.strs[s] = s
	}
	return s
}
