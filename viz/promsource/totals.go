package promsource

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weftmesh/weft/viz/window"
)

// Labels the window keys series on (viz/window/parse.go), besides the
// target labels naming the scraped pod.
var (
	targetLabels = []string{"namespace", "pod", "deployment", "statefulset", "daemonset", "k8s_job"}
	peerLabels   = []string{"direction", "authority", "tls", "client_id", "server_id", "dst_namespace", "dst_service",
		"dst_pod", "dst_deployment", "dst_statefulset", "dst_daemonset", "dst_job", "dst_replicaset"}
	routeLabels = []string{"direction", "dst", "rt_route"}
)

// dstKinds are the dst_* workload labels in the window's precedence order.
var dstKinds = []struct{ label, kind string }{
	{"dst_deployment", "Deployment"}, {"dst_statefulset", "StatefulSet"}, {"dst_daemonset", "DaemonSet"},
	{"dst_job", "Job"}, {"dst_replicaset", "ReplicaSet"}, {"dst_pod", "Pod"},
}

// field says which Totals field a metric feeds.
type field uint8

const (
	fResponses field = iota // Requests, and Success when classification="success"
	fActual                 // ActualRequests, ActualSuccess
	fBuckets                // cumulative le buckets
	fOpened
	fOpen // a gauge: its value now, not an increase
	fRead
	fWritten
)

// metricQuery is one PromQL query and what its answer feeds.
type metricQuery struct {
	family window.Family
	metric string
	field  field
}

var metricQueries = []metricQuery{
	{window.HTTP, "response_total", fResponses},
	{window.HTTP, "response_latency_ms_bucket", fBuckets},
	{window.Route, "route_response_total", fResponses},
	{window.Route, "route_actual_response_total", fActual},
	{window.Route, "route_response_latency_ms_bucket", fBuckets},
	{window.TCP, "tcp_open_total", fOpened},
	{window.TCP, "tcp_open_connections", fOpen},
	{window.TCP, "tcp_read_bytes_total", fRead},
	{window.TCP, "tcp_write_bytes_total", fWritten},
}

// promQL renders q's expression over span (whole seconds, at least 1).
func (q metricQuery) promQL(sel string, span time.Duration) string {
	by := targetLabels
	if q.family == window.Route {
		by = append(append([]string(nil), by...), routeLabels...)
	} else {
		by = append(append([]string(nil), by...), peerLabels...)
	}
	switch q.field {
	case fResponses, fActual:
		by = append(by, "classification")
	case fBuckets:
		by = append(by, "le")
	}
	v := q.metric + "{" + sel + "}"
	if q.field != fOpen {
		v = "increase(" + v + "[" + strconv.FormatInt(max(int64(span/time.Second), 1), 10) + "s])"
	}
	return "sum by (" + strings.Join(by, ", ") + ") (" + v + ")"
}

// view asks Prometheus for the families' totals over span (and, with
// spark, requests per step) and returns the window.View that answers from
// them.
func (s *Source) view(ctx context.Context, span time.Duration, spark bool, fams ...window.Family) (*window.View, error) {
	pods, svcs := s.inv()
	owners := make(map[string]window.PodInfo, len(pods))
	for _, p := range pods {
		owners[p.Namespace+"/"+p.Name] = p
	}
	now := s.now()
	var qs []metricQuery
	for _, q := range metricQueries {
		for _, f := range fams {
			if q.family == f {
				qs = append(qs, q)
			}
		}
	}
	answers := make([][]sample, len(qs))
	errs := make([]error, len(qs))
	var wg sync.WaitGroup
	for i, q := range qs {
		wg.Go(func() { answers[i], errs[i] = s.query(ctx, q.promQL(s.sel, span), now) })
	}
	wg.Wait()
	b := builder{owners: owners, byKey: map[string]*entry{}}
	for i, q := range qs {
		if errs[i] != nil {
			return nil, fmt.Errorf("ask prometheus for %s: %w", q.metric, errs[i])
		}
		for _, smp := range answers[i] {
			b.add(q, smp)
		}
	}
	v := &window.View{Pods: pods, Services: svcs, Span: span}
	if spark {
		if err := s.sparks(ctx, &b, span, now); err != nil {
			return nil, err
		}
		v.Step = s.step
	}
	v.Series = b.totals()
	return v, nil
}

// entry is one series' totals and, for histograms, its cumulative buckets
// by bound.
type entry struct {
	t   window.Totals
	pod string
	cum map[float64]float64
}

type builder struct {
	owners map[string]window.PodInfo
	byKey  map[string]*entry
	order  []string
}

// signature identifies a series: family and every label but
// classification and le.
func signature(f window.Family, m map[string]string) string {
	var b strings.Builder
	b.WriteByte(byte('0' + f))
	names := make([]string, 0, len(m))
	for n := range m {
		if n != "classification" && n != "le" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(m[n])
		b.WriteByte(0)
	}
	return b.String()
}

func (b *builder) add(q metricQuery, smp sample) {
	if math.IsNaN(smp.Value) || smp.Value <= 0 {
		return
	}
	m := smp.Metric
	sig := signature(q.family, m)
	e := b.byKey[sig]
	if e == nil {
		e = &entry{t: window.Totals{Key: b.key(q.family, m)}, pod: m["pod"]}
		b.byKey[sig] = e
		b.order = append(b.order, sig)
	}
	t := &e.t
	success := m["classification"] == "success"
	switch q.field {
	case fResponses:
		t.Requests += smp.Value
		if success {
			t.Success += smp.Value
		}
	case fActual:
		t.ActualRequests += smp.Value
		if success {
			t.ActualSuccess += smp.Value
		}
	case fBuckets:
		le, err := strconv.ParseFloat(m["le"], 64)
		if err != nil {
			return
		}
		if e.cum == nil {
			e.cum = map[float64]float64{}
		}
		e.cum[le] += smp.Value
	case fOpened:
		t.Opened += smp.Value
	case fOpen:
		t.Open += smp.Value
	case fRead:
		t.Read += smp.Value
	case fWritten:
		t.Written += smp.Value
	}
}

// key is the window's Key of a series: the pod's workload from the
// inventory (else the target labels), the peer or route labels.
func (b *builder) key(f window.Family, m map[string]string) window.Key {
	k := window.Key{Family: f, Namespace: m["namespace"], Dir: m["direction"]}
	if p, ok := b.owners[m["namespace"]+"/"+m["pod"]]; ok {
		k.Kind, k.Name = p.Kind, p.Workload
	} else {
		k.Kind, k.Name = "Pod", m["pod"]
		for _, o := range []struct{ label, kind string }{{"deployment", "Deployment"}, {"statefulset", "StatefulSet"}, {"daemonset", "DaemonSet"}, {"k8s_job", "Job"}} {
			if v := m[o.label]; v != "" {
				k.Kind, k.Name = o.kind, v
				break
			}
		}
	}
	if f == window.Route {
		k.Authority, k.Route = m["dst"], m["rt_route"]
		return k
	}
	k.Authority, k.TLS = m["authority"], m["tls"] == "true"
	k.ClientID, k.ServerID = m["client_id"], m["server_id"]
	k.DstNamespace, k.DstService = m["dst_namespace"], m["dst_service"]
	for _, d := range dstKinds {
		if v := m[d.label]; v != "" {
			k.DstKind, k.DstName = d.kind, v
			break
		}
	}
	return k
}

// totals returns the workload series and, for HTTP and TCP, every pod's
// per-direction rollup (Key.Pod set, peer labels empty), as the window
// keeps them for `stat po`.
func (b *builder) totals() []window.Totals {
	out := make([]window.Totals, 0, 2*len(b.order))
	for _, sig := range b.order {
		e := b.byKey[sig]
		if e.cum != nil {
			perBucket(&e.t.Buckets, e.cum)
		}
		out = append(out, e.t)
		if e.t.Key.Family == window.Route {
			continue
		}
		k := e.t.Key
		r := e.t
		r.Key = window.Key{Family: k.Family, Namespace: k.Namespace, Kind: k.Kind, Name: k.Name, Pod: e.pod, Dir: k.Dir}
		out = append(out, r)
	}
	return out
}

// perBucket turns cumulative counts by upper bound into the window's
// per-bucket counts over window.Bounds.
func perBucket(dst *[window.NumBuckets]float64, cum map[float64]float64) {
	les := make([]float64, 0, len(cum))
	for le := range cum {
		les = append(les, le)
	}
	sort.Float64s(les)
	below := 0.0
	for _, le := range les {
		n := cum[le] - below
		below = max(below, cum[le])
		if n <= 0 {
			continue
		}
		i := sort.SearchFloat64s(window.Bounds[:], le)
		dst[min(i, window.NumBuckets-1)] += n
	}
}
