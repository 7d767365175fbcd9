package window

import (
	"math"
	"sort"
	"strings"
	"time"
)

// Query selects what Stat, Routes and Edges report.
type Query struct {
	Resource Resource  `json:"resource"`
	From     *Resource `json:"from,omitempty"`
	To       *Resource `json:"to,omitempty"`
	// Window is how far back to look (rounded to ticks; at least one).
	Window time.Duration `json:"window"`
}

// Signals are the golden signals of a group of series over a window. The
// pointer fields are nil without traffic.
type Signals struct {
	Requests  float64  `json:"requests"`
	Successes float64  `json:"successes"`
	Success   *float64 `json:"success"`
	RPS       float64  `json:"rps"`
	P50       *float64 `json:"latencyP50Ms"`
	P95       *float64 `json:"latencyP95Ms"`
	P99       *float64 `json:"latencyP99Ms"`
	TCPConn   float64  `json:"tcpConn"`
	ReadBps   float64  `json:"readBytesPerSec"`
	WriteBps  float64  `json:"writeBytesPerSec"`
	// TLSShare is the share of requests (or, without HTTP, of bytes) that
	// were mTLS; nil without traffic.
	TLSShare *float64 `json:"tlsShare"`
	// Spark is requests per second at every tick of the window, oldest first.
	Spark []float64 `json:"spark,omitempty"`
}

// Row is one resource's line of Stat.
type Row struct {
	Namespace string `json:"namespace,omitempty"`
	Type      string `json:"type"`
	Name      string `json:"name"`
	Pods      int    `json:"pods"`
	Meshed    int    `json:"meshed"`
	Signals
}

// acc accumulates points.
type acc struct {
	req, ok, areq, aok, tlsReq, tlsBytes, bytes float64
	opened, read, written, open                 float64
	buckets                                     [NumBuckets]float64
	spark                                       []float64
}

func (a *acc) add(p *Point, k *Key, last, first int64) {
	a.req += float64(p.Requests)
	a.ok += float64(p.Success)
	a.areq += float64(p.ActualRequests)
	a.aok += float64(p.ActualSuccess)
	a.opened += float64(p.Opened)
	a.read += float64(p.Read)
	a.written += float64(p.Written)
	a.bytes += float64(p.Read + p.Written)
	if k.TLS {
		a.tlsReq += float64(p.Requests)
		a.tlsBytes += float64(p.Read + p.Written)
	}
	if p.Tick == last {
		a.open += float64(p.Open)
	}
	eachBucket(p.Buckets, func(i int, n uint64) { a.buckets[i] += float64(n) })
	if a.spark != nil && k.Family != TCP {
		a.spark[p.Tick-first] += float64(p.Requests)
	}
}

func (a *acc) signals(seconds, interval float64) Signals {
	s := Signals{Requests: a.req, Successes: a.ok, RPS: a.req / seconds, TCPConn: a.open,
		ReadBps: a.read / seconds, WriteBps: a.written / seconds}
	if a.req > 0 {
		s.Success = ptr(a.ok / a.req)
		s.TLSShare = ptr(a.tlsReq / a.req)
	} else if a.bytes > 0 {
		s.TLSShare = ptr(a.tlsBytes / a.bytes)
	}
	s.P50, s.P95, s.P99 = quantile(&a.buckets, 0.5), quantile(&a.buckets, 0.95), quantile(&a.buckets, 0.99)
	for _, v := range a.spark {
		s.Spark = append(s.Spark, v/interval)
	}
	return s
}

func ptr(v float64) *float64 { return &v }

// Quantile estimates the q-quantile (0..1) in ms of per-bucket counts over
// Bounds, interpolating linearly inside the bucket as Prometheus'
// histogram_quantile does; the +Inf bucket answers the highest finite
// bound. NaN without samples.
func Quantile(b *[NumBuckets]float64, q float64) float64 {
	total := 0.0
	for _, n := range b {
		total += n
	}
	if total == 0 {
		return math.NaN()
	}
	rank, lower, below := q*total, 0.0, 0.0
	for i, n := range b {
		if below+n >= rank && n > 0 {
			if i == NumBuckets-1 {
				return lower
			}
			return lower + (Bounds[i]-lower)*(rank-below)/n
		}
		below += n
		if i < NumBuckets-1 {
			lower = Bounds[i]
		}
	}
	return lower
}

func quantile(b *[NumBuckets]float64, q float64) *float64 {
	v := Quantile(b, q)
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

// span returns the ticks a query covers: (first-1, last].
func (w *Window) span(d time.Duration) (first, last int64, seconds float64) {
	n := max(int64(d/w.cfg.Interval), 1)
	n = min(n, w.ticks())
	last = w.tick
	first = max(last-n+1, 1)
	return first, last, float64(last-first+1) * w.cfg.Interval.Seconds()
}

// SetServices sets the ClusterIP:port → "ns/name" map used to read
// authorities that are addresses as Services.
func (w *Window) SetServices(byAddr map[string]string) {
	w.mu.Lock()
	w.services = byAddr
	w.mu.Unlock()
}

func (w *Window) svcName(authority string) (ns, name string) {
	if v, ok := w.services[authority]; ok {
		ns, name, _ = strings.Cut(v, "/")
		return ns, name
	}
	return serviceOfAuthority(authority)
}

// Stat answers `viz stat`: one row per resource of q.Resource's type.
func (w *Window) Stat(q Query) []Row {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return stat(q, w.set(q.Window))
}

func stat(q Query, set *seriesSet) []Row {
	type rowKey struct{ ns, name string }
	accs := map[rowKey]*acc{}
	get := func(ns, name string) *acc {
		k := rowKey{ns, name}
		a := accs[k]
		if a == nil {
			a = &acc{}
			if set.spark > 0 {
				a.spark = make([]float64, set.spark)
			}
			accs[k] = a
		}
		return a
	}
	set.each(func(k *Key, fill func(a *acc)) {
		if k.Family == Route {
			return
		}
		var ns, name string
		var ok bool
		switch {
		case q.From != nil:
			if k.Dir != "outbound" || k.Pod != "" {
				return
			}
			if _, _, ok = q.From.owns(k); !ok {
				return
			}
			ns, name, ok = q.Resource.dst(k, set.svcName)
		case q.To != nil:
			if k.Dir != "outbound" {
				return
			}
			if _, _, ok = q.To.dst(k, set.svcName); !ok {
				return
			}
			ns, name, ok = q.Resource.owns(k)
		case q.Resource.Type == "svc":
			if k.Dir != "outbound" || k.Pod != "" {
				return
			}
			ns, name, ok = q.Resource.dst(k, set.svcName)
		default:
			if k.Dir != "inbound" {
				return
			}
			ns, name, ok = q.Resource.owns(k)
		}
		if !ok {
			return
		}
		fill(get(ns, name))
	})
	pods := map[rowKey][2]int{}
	if q.From == nil && q.Resource.Type != "svc" && q.Resource.Type != "authority" {
		for _, p := range set.pods {
			var k rowKey
			switch q.Resource.Type {
			case "po":
				k = rowKey{p.Namespace, p.Name}
			case "ns":
				k = rowKey{"", p.Namespace}
			default:
				if kinds[q.Resource.Type] != p.Kind {
					continue
				}
				k = rowKey{p.Namespace, p.Workload}
			}
			if (q.Resource.Namespace != "" && q.Resource.Type != "ns" && p.Namespace != q.Resource.Namespace) || (q.Resource.Name != "" && k.name != q.Resource.Name) {
				continue
			}
			c := pods[k]
			c[0]++
			if p.Meshed {
				c[1]++
			}
			pods[k] = c
			if q.To == nil {
				get(k.ns, k.name)
			}
		}
	}
	out := make([]Row, 0, len(accs))
	for k, a := range accs {
		c := pods[k]
		out = append(out, Row{Namespace: k.ns, Type: q.Resource.Type, Name: k.name, Pods: c[0], Meshed: c[1],
			Signals: a.signals(set.secs, set.interval)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}
