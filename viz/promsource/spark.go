package promsource

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/weftmesh/weft/viz/window"
)

// series is one element of a range vector.
type series struct {
	Metric map[string]string
	Values []float64 // one per step, oldest first; 0 where Prometheus had none
}

// queryRange evaluates q at n steps of step ending at end, through
// /api/v1/query_range.
func (s *Source) queryRange(ctx context.Context, q string, end time.Time, step time.Duration, n int) ([]series, error) {
	start := end.Add(-time.Duration(n-1) * step)
	form := url.Values{"query": {q}, "start": {promTime(start)}, "end": {promTime(end)}, "step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	var r struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	if err := s.call(ctx, "/api/v1/query_range", "range query", q, form, &r); err != nil {
		return nil, err
	}
	out := make([]series, 0, len(r.Result))
	for _, e := range r.Result {
		sr := series{Metric: e.Metric, Values: make([]float64, n)}
		for _, v := range e.Values {
			t, _ := v[0].(float64)
			str, _ := v[1].(string)
			x, err := strconv.ParseFloat(str, 64)
			if err != nil {
				return nil, fmt.Errorf("prometheus range query %q: value %v: %w", q, v[1], err)
			}
			// Steps are counted from start; rounding absorbs float time.
			i := int((t-float64(start.UnixMilli())/1000)/step.Seconds() + 0.5)
			if i >= 0 && i < n {
				sr.Values[i] = x
			}
		}
		out = append(out, sr)
	}
	return out, nil
}

// sparks adds requests per step over span to the HTTP entries of b (the
// window's sparklines): rate(response_total[4 steps]) × step at every
// step. Four steps, as Grafana's $__rate_interval with a scrape interval of
// one step: the range holds enough samples when Prometheus scrapes at
// least every two steps (the shipped scrape configuration and the viz
// default are both 10 s).
func (s *Source) sparks(ctx context.Context, b *builder, span time.Duration, now time.Time) error {
	n := max(int(span/s.step), 1)
	by := append(append([]string(nil), targetLabels...), peerLabels...)
	q := "sum by (" + strings.Join(by, ", ") + ") (rate(response_total{" + s.sel + "}[" +
		strconv.FormatInt(max(int64(4*s.step/time.Second), 1), 10) + "s])) * " + strconv.FormatFloat(s.step.Seconds(), 'f', -1, 64)
	res, err := s.queryRange(ctx, q, now, s.step, n)
	if err != nil {
		return fmt.Errorf("ask prometheus for sparklines: %w", err)
	}
	for _, sr := range res {
		if e := b.byKey[signature(window.HTTP, sr.Metric)]; e != nil {
			e.t.Spark = sr.Values
		}
	}
	return nil
}
