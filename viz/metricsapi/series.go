package metricsapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/weftmesh/weft/viz/window"
)

// SeriesPath answers one named resource's time series from the source
// (the window, or Prometheus).
const SeriesPath = "/api/v1/series"

// defaultSeriesWindow is how far back SeriesPath looks without window=.
const defaultSeriesWindow = 10 * time.Minute

// Series is SeriesPath's answer: requests per second at every tick of the
// window (oldest first, IntervalSeconds apart, the last one the latest
// scrape round), as the resource served them (Inbound) and as it sent them
// to anything (Outbound).
type Series struct {
	Resource        window.Resource `json:"resource"`
	IntervalSeconds float64         `json:"intervalSeconds"`
	Inbound         []float64       `json:"inbound"`
	Outbound        []float64       `json:"outbound"`
}

// serveSeries answers GET SeriesPath?resource=TYPE/NAME&namespace=NS
// [&window=10m]; from and to are refused (the series are the resource's
// own).
func (s *Server) serveSeries(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("window") == "" {
		v := r.URL.Query()
		v.Set("window", defaultSeriesWindow.String())
		r.URL.RawQuery = v.Encode()
	}
	q, err := parseQuery(r)
	if err != nil {
		badRequest(w, err)
		return
	}
	if q.Resource.Name == "" || q.From != nil || q.To != nil {
		badRequest(w, fmt.Errorf("series needs one named resource (resource=deploy/NAME) and no from or to"))
		return
	}
	out, err := seriesOf(r.Context(), s.src, s.win.Interval(), q)
	answer(w, out, err)
}

// seriesOf reads q.Resource's series: its inbound row's spark, and the sum
// of the sparks of everything it called (per authority, which every
// outbound series has).
func seriesOf(ctx context.Context, src Source, interval time.Duration, q window.Query) (Series, error) {
	out := Series{Resource: q.Resource, IntervalSeconds: interval.Seconds(), Inbound: []float64{}, Outbound: []float64{}}
	in, err := src.Stat(ctx, q)
	if err != nil {
		return out, err
	}
	for _, row := range in {
		out.Inbound = row.Spark
	}
	from := q.Resource
	dst := window.Query{Resource: window.Resource{Type: "authority"}, From: &from, Window: q.Window}
	called, err := src.Stat(ctx, dst)
	if err != nil {
		return out, err
	}
	for _, row := range called {
		if len(out.Outbound) < len(row.Spark) {
			out.Outbound = append(out.Outbound, make([]float64, len(row.Spark)-len(out.Outbound))...)
		}
		for i, v := range row.Spark {
			out.Outbound[i] += v
		}
	}
	if len(out.Inbound) == 0 {
		out.Inbound = make([]float64, len(out.Outbound))
	}
	return out, nil
}
