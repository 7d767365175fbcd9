// Package stat computes the golden metrics of meshed workloads — success
// rate, requests per second, latency percentiles and open TCP connections —
// from their proxies' own /metrics, without a Prometheus server: two scrapes a
// window apart, differenced, aggregated per workload.
package stat

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is what one scrape of one proxy says about its inbound traffic
// (requests served by the pod), as cumulative counters.
type Sample struct {
	Success, Failure float64
	// Buckets maps a latency upper bound in ms (+Inf included) to the
	// cumulative count of responses at or below it.
	Buckets map[float64]float64
	// TCPOpen is the number of open inbound TCP connections now.
	TCPOpen float64
}

// Parse reads a proxy's Prometheus text exposition.
func Parse(r io.Reader) (Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Sample{}, fmt.Errorf("parse proxy metrics: %w", err)
	}
	s := Sample{Buckets: map[float64]float64{}}
	for _, m := range inbound(families["response_total"]) {
		switch label(m, "classification") {
		case "success":
			s.Success += m.GetCounter().GetValue()
		case "failure":
			s.Failure += m.GetCounter().GetValue()
		}
	}
	for _, m := range inbound(families["response_latency_ms"]) {
		sawInf := false
		for _, b := range m.GetHistogram().GetBucket() {
			s.Buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			sawInf = sawInf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !sawInf {
			s.Buckets[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
		}
	}
	for _, m := range inbound(families["tcp_open_connections"]) {
		s.TCPOpen += m.GetGauge().GetValue()
	}
	return s, nil
}

func inbound(f *dto.MetricFamily) []*dto.Metric {
	if f == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.GetMetric() {
		if label(m, "direction") == "inbound" {
			out = append(out, m)
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Add accumulates o into s (several pods of one workload).
func (s *Sample) Add(o Sample) {
	s.Success += o.Success
	s.Failure += o.Failure
	s.TCPOpen += o.TCPOpen
	if s.Buckets == nil {
		s.Buckets = map[float64]float64{}
	}
	for le, c := range o.Buckets {
		s.Buckets[le] += c
	}
}

// Sub returns the traffic between an earlier sample prev and s. A counter
// that went backwards (the proxy restarted) counts from zero.
func (s Sample) Sub(prev Sample) Sample {
	d := Sample{TCPOpen: s.TCPOpen, Buckets: map[float64]float64{}}
	d.Success = delta(s.Success, prev.Success)
	d.Failure = delta(s.Failure, prev.Failure)
	for le, c := range s.Buckets {
		d.Buckets[le] = delta(c, prev.Buckets[le])
	}
	return d
}

func delta(now, before float64) float64 {
	if now < before {
		return now
	}
	return now - before
}

// Quantile estimates the q-quantile (0..1) of latency in ms from cumulative
// buckets, interpolating linearly inside the bucket (as Prometheus'
// histogram_quantile). NaN when there is no sample.
func (s Sample) Quantile(q float64) float64 {
	bounds := make([]float64, 0, len(s.Buckets))
	for le := range s.Buckets {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return math.NaN()
	}
	total := s.Buckets[bounds[len(bounds)-1]]
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, le := range bounds {
		c := s.Buckets[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return lower // the highest finite bound is all we know
			}
			if c == below {
				return le
			}
			return lower + (le-lower)*(rank-below)/(c-below)
		}
		lower, below = le, c
	}
	return lower
}

// Total is the number of responses.
func (s Sample) Total() float64 { return s.Success + s.Failure }

// formatMs renders a latency like Linkerd's viz stat ("3ms", "-" when none).
func formatMs(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(math.Round(v), 'f', -1, 64) + "ms"
}
