package window

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/weftmesh/weft/proxy/metrics"
)

// NumBuckets is the number of latency buckets, +Inf included.
const NumBuckets = len(metrics.LatencyBucketsMs) + 1

// Bounds are the latency buckets' upper bounds in ms (the proxy's
// response_latency_ms buckets); the last is +Inf.
var Bounds = func() [NumBuckets]float64 {
	var b [NumBuckets]float64
	for i, v := range metrics.LatencyBucketsMs {
		b[i] = float64(v)
	}
	b[NumBuckets-1] = math.Inf(1)
	return b
}()

// bucketIndex maps an upper bound to the first of Bounds at or above it.
func bucketIndex(le float64) int {
	for i, b := range Bounds {
		if le <= b {
			return i
		}
	}
	return NumBuckets - 1
}

// cumulative holds one pod's counters for one Key, summed over status codes.
type cumulative struct {
	req, ok, areq, aok, opened, read, written, open float64
	buckets                                         [NumBuckets]float64
}

// Begin starts a new tick (one scrape round) at now and trims points that
// fell out of the span. It returns the tick to pass to Ingest.
func (w *Window) Begin(now time.Time) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tick < 0 {
		w.start = now
	}
	w.tick++
	oldest := w.tick - w.ticks()
	for k, s := range w.series {
		i := 0
		for i < len(s.points) && s.points[i].Tick <= oldest {
			i++
		}
		if i > 0 {
			s.points = append(s.points[:0], s.points[i:]...)
		}
		if len(s.points) == 0 {
			delete(w.series, k)
		}
	}
	return w.tick
}

// Ingest adds one pod's scrape, taken at tick, to the window.
func (w *Window) Ingest(tick int64, pod PodInfo, r io.Reader) error {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return fmt.Errorf("parse metrics of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := w.aggregate(pod, families)
	id := pod.Namespace + "/" + pod.Name
	prev, seen := w.prev[id]
	w.prev[id] = cur
	if !seen {
		return nil // the baseline
	}
	reset := false
	for k, c := range cur {
		if p := prev[k]; p != nil && wentBack(c, p) {
			reset = true
			break
		}
	}
	for k, c := range cur {
		var d Point
		if p := prev[k]; p != nil && !reset {
			d = diff(c, p)
		} else {
			d = diff(c, &cumulative{})
		}
		d.Tick = tick
		if empty(&d) {
			continue
		}
		w.add(k, &d)
		if k.Family != Route {
			w.add(Key{Family: k.Family, Namespace: k.Namespace, Kind: k.Kind, Name: k.Name, Pod: pod.Name, Dir: k.Dir}, &d)
		}
	}
	return nil
}

func (w *Window) aggregate(pod PodInfo, families map[string]*dto.MetricFamily) map[Key]*cumulative {
	cur := map[Key]*cumulative{}
	get := func(f Family, m *dto.Metric) *cumulative {
		k := w.key(f, pod, m)
		c := cur[k]
		if c == nil {
			c = &cumulative{}
			cur[k] = c
		}
		return c
	}
	for _, m := range families["response_total"].GetMetric() {
		c := get(HTTP, m)
		v := m.GetCounter().GetValue()
		c.req += v
		if label(m, "classification") == "success" {
			c.ok += v
		}
	}
	for _, m := range families["response_latency_ms"].GetMetric() {
		addBuckets(get(HTTP, m), m.GetHistogram())
	}
	for _, m := range families["route_response_total"].GetMetric() {
		c := get(Route, m)
		v := m.GetCounter().GetValue()
		c.req += v
		if label(m, "classification") == "success" {
			c.ok += v
		}
	}
	for _, m := range families["route_actual_response_total"].GetMetric() {
		c := get(Route, m)
		v := m.GetCounter().GetValue()
		c.areq += v
		if label(m, "classification") == "success" {
			c.aok += v
		}
	}
	for _, m := range families["route_response_latency_ms"].GetMetric() {
		addBuckets(get(Route, m), m.GetHistogram())
	}
	for _, m := range families["tcp_open_total"].GetMetric() {
		get(TCP, m).opened += m.GetCounter().GetValue()
	}
	for _, m := range families["tcp_open_connections"].GetMetric() {
		get(TCP, m).open += m.GetGauge().GetValue()
	}
	for _, m := range families["tcp_read_bytes_total"].GetMetric() {
		get(TCP, m).read += m.GetCounter().GetValue()
	}
	for _, m := range families["tcp_write_bytes_total"].GetMetric() {
		get(TCP, m).written += m.GetCounter().GetValue()
	}
	return cur
}

// addBuckets adds a cumulative histogram as per-bucket counts.
func addBuckets(c *cumulative, h *dto.Histogram) {
	below := 0.0
	sawInf := false
	for _, b := range h.GetBucket() {
		n := float64(b.GetCumulativeCount())
		c.buckets[bucketIndex(b.GetUpperBound())] += n - below
		below = n
		sawInf = sawInf || math.IsInf(b.GetUpperBound(), 1)
	}
	if !sawInf {
		c.buckets[NumBuckets-1] += float64(h.GetSampleCount()) - below
	}
}

var dstKinds = [...]struct{ label, kind string }{
	{"dst_deployment", "Deployment"}, {"dst_statefulset", "StatefulSet"}, {"dst_daemonset", "DaemonSet"},
	{"dst_job", "Job"}, {"dst_replicaset", "ReplicaSet"},
}

func (w *Window) key(f Family, pod PodInfo, m *dto.Metric) Key {
	k := Key{Family: f, Namespace: w.intern(pod.Namespace), Kind: w.intern(pod.Kind), Name: w.intern(pod.Workload)}
	for _, l := range m.GetLabel() {
		v := l.GetValue()
		switch l.GetName() {
		case "direction":
			k.Dir = w.intern(v)
		case "authority", "dst":
			k.Authority = w.intern(v)
		case "tls":
			k.TLS = v == "true"
		case "client_id":
			k.ClientID = w.intern(v)
		case "server_id":
			k.ServerID = w.intern(v)
		case "dst_namespace":
			k.DstNamespace = w.intern(v)
		case "dst_service":
			k.DstService = w.intern(v)
		case "rt_route":
			k.Route = w.intern(v)
		case "dst_pod":
			if k.DstKind == "" {
				k.DstKind, k.DstName = "Pod", w.intern(v)
			}
		default:
			for _, d := range dstKinds {
				if l.GetName() == d.label && (k.DstKind == "" || k.DstKind == "Pod") {
					k.DstKind, k.DstName = d.kind, w.intern(v)
				}
			}
		}
	}
	return k
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func wentBack(c, p *cumulative) bool {
	if c.req < p.req || c.ok < p.ok || c.areq < p.areq || c.aok < p.aok || c.opened < p.opened || c.read < p.read || c.written < p.written {
		return true
	}
	for i := range c.buckets {
		if c.buckets[i] < p.buckets[i] {
			return true
		}
	}
	return false
}

func sat32(v float64) uint32 { return uint32(min(max(v, 0), math.MaxUint32)) }
func sat64(v float64) uint64 { return uint64(min(max(v, 0), math.MaxUint64/2)) }

func diff(c, p *cumulative) Point {
	d := Point{
		Requests: sat32(c.req - p.req), Success: sat32(c.ok - p.ok),
		ActualRequests: sat32(c.areq - p.areq), ActualSuccess: sat32(c.aok - p.aok),
		Opened: sat32(c.opened - p.opened), Open: sat32(c.open),
		Read: sat64(c.read - p.read), Written: sat64(c.written - p.written),
	}
	for i := range c.buckets {
		if n := sat32(c.buckets[i] - p.buckets[i]); n > 0 {
			d.Buckets = binary.AppendUvarint(binary.AppendUvarint(d.Buckets, uint64(i)), uint64(n))
		}
	}
	return d
}

func empty(d *Point) bool {
	return d.Requests == 0 && d.ActualRequests == 0 && d.Opened == 0 && d.Open == 0 && d.Read == 0 && d.Written == 0 && len(d.Buckets) == 0
}

// eachBucket calls f for every (index, count) pair of encoded buckets.
func eachBucket(b []byte, f func(i int, n uint64)) {
	for len(b) > 0 {
		i, n1 := binary.Uvarint(b)
		if n1 <= 0 {
			return
		}
		c, n2 := binary.Uvarint(b[n1:])
		if n2 <= 0 {
			return
		}
		if i < uint64(NumBuckets) {
			f(int(i), c)
		}
		b = b[n1+n2:]
	}
}

// add merges d into k's series at d.Tick.
func (w *Window) add(k Key, d *Point) {
	s := w.series[k]
	if s == nil {
		if len(w.series) >= w.cfg.MaxSeries {
			w.dropped++
			return
		}
		s = &series{key: k}
		w.series[k] = s
	}
	n := len(s.points)
	if n == 0 || s.points[n-1].Tick != d.Tick {
		p := *d
		p.Buckets = append([]byte(nil), d.Buckets...)
		s.points = append(s.points, p)
		return
	}
	last := &s.points[n-1]
	last.Requests += d.Requests
	last.Success += d.Success
	last.ActualRequests += d.ActualRequests
	last.ActualSuccess += d.ActualSuccess
	last.Opened += d.Opened
	last.Open += d.Open
	last.Read += d.Read
	last.Written += d.Written
	if len(d.Buckets) > 0 {
		var sum [NumBuckets]uint64
		eachBucket(last.Buckets, func(i int, n uint64) { sum[i] += n })
		eachBucket(d.Buckets, func(i int, n uint64) { sum[i] += n })
		last.Buckets = last.Buckets[:0]
		for i, n := range sum {
			if n > 0 {
				last.Buckets = binary.AppendUvarint(binary.AppendUvarint(last.Buckets, uint64(i)), n)
			}
		}
	}
}
