package promsource_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/weftmesh/weft/viz/window"
)

// near reports whether two request counts agree within 10 % (Prometheus'
// increase extrapolates to the span's ends) plus two requests.
func near(a, b float64) bool {
	return math.Abs(a-b) <= 0.1*math.Max(math.Abs(a), math.Abs(b))+2
}

// agreeRows checks that both sources return the same rows in the same
// order with the same signals (within margins), and that the requests
// match what was sent.
func agreeRows[R any](t *testing.T, name string, w, p []R, id func(R) string, sig func(R) window.Signals, want map[string]float64) {
	t.Helper()
	if len(w) != len(want) || len(p) != len(want) {
		t.Errorf("%s: %d rows from the window, %d from prometheus, want %d (%v)\nwindow: %+v\nprometheus: %+v", name, len(w), len(p), len(want), want, w, p)
		return
	}
	for i := range w {
		wi, pi := id(w[i]), id(p[i])
		if wi != pi {
			t.Errorf("%s row %d: %q from the window, %q from prometheus", name, i, wi, pi)
			continue
		}
		ws, ps := sig(w[i]), sig(p[i])
		sentN, ok := want[wi]
		if !ok {
			t.Errorf("%s: unexpected row %q", name, wi)
		}
		t.Logf("%s %s: sparkline %d points %.1f | %d points %.1f requests", name, wi, len(ws.Spark), sum(ws.Spark), len(ps.Spark), sum(ps.Spark))
		t.Logf("%s %s: requests %.1f | %.1f (sent %.0f), success %v | %v, p50 %v | %v, p95 %v | %v, p99 %v | %v ms (window | prometheus)", name, wi, ws.Requests, ps.Requests, sentN, val(ws.Success), val(ps.Success), val(ws.P50), val(ps.P50), val(ws.P95), val(ps.P95), val(ws.P99), val(ps.P99))
		if !near(ws.Requests, sentN) || !near(ps.Requests, sentN) {
			t.Errorf("%s %s: requests %.1f from the window, %.1f from prometheus, %.0f sent", name, wi, ws.Requests, ps.Requests, sentN)
		}
		if math.Abs(ws.RPS-ps.RPS) > 0.1*math.Max(ws.RPS, ps.RPS)+0.2 {
			t.Errorf("%s %s: rps %.2f from the window, %.2f from prometheus", name, wi, ws.RPS, ps.RPS)
		}
		if !ratioNear(ws.Success, ps.Success, 0.03) || !ratioNear(ws.TLSShare, ps.TLSShare, 0.03) {
			t.Errorf("%s %s: success %v / mTLS %v from the window, %v / %v from prometheus", name, wi, val(ws.Success), val(ws.TLSShare), val(ps.Success), val(ps.TLSShare))
		}
		// p50 and p95 within a quarter (both interpolate inside the same
		// buckets); p99 of a few hundred requests is decided by one or two
		// outliers, whose bucket Prometheus' extrapolation may tip, so only
		// its presence and magnitude are compared.
		for _, l := range []struct {
			q      string
			w, p   *float64
			strict bool
		}{{"p50", ws.P50, ps.P50, true}, {"p95", ws.P95, ps.P95, true}, {"p99", ws.P99, ps.P99, false}} {
			switch {
			case (l.w == nil) != (l.p == nil):
			case l.w == nil:
				continue
			case l.strict && math.Abs(*l.w-*l.p) <= 0.25*math.Max(*l.w, *l.p)+1:
				continue
			case !l.strict && math.Max(*l.w, *l.p) <= 10*math.Min(*l.w, *l.p)+1:
				continue
			}
			t.Errorf("%s %s: latency %s %v ms from the window, %v ms from prometheus", name, wi, l.q, val(l.w), val(l.p))
		}
		// Sparklines: Prometheus' points are rates over sliding 4 s ranges,
		// each extrapolated, so their sum only approximates the requests.
		if sw, sp := sum(ws.Spark), sum(ps.Spark); len(ws.Spark) != len(ps.Spark) || math.Abs(sw-sp) > 0.25*math.Max(sw, sp)+2 {
			t.Errorf("%s %s: sparkline of %d points (%.1f requests) from the window, %d (%.1f) from prometheus", name, wi, len(ws.Spark), sum(ws.Spark), len(ps.Spark), sum(ps.Spark))
		}
		if ws.TCPConn != ps.TCPConn {
			t.Errorf("%s %s: tcp connections %.0f from the window, %.0f from prometheus", name, wi, ws.TCPConn, ps.TCPConn)
		}
		if math.Abs(ws.ReadBps-ps.ReadBps) > 0.1*math.Max(ws.ReadBps, ps.ReadBps)+1 {
			t.Errorf("%s %s: read %.1f B/s from the window, %.1f from prometheus", name, wi, ws.ReadBps, ps.ReadBps)
		}
	}
}

// sum is the requests of a sparkline at 1 s resolution.
func sum(rps []float64) float64 {
	n := 0.0
	for _, v := range rps {
		n += v
	}
	return n
}

func ratioNear(a, b *float64, d float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) <= d
}

func val(p *float64) any {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", *p)
}

// waitTargets waits until Prometheus scraped n targets successfully.
func waitTargets(t *testing.T, base string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(`count(up{job="weft-proxy"} == 1)`))
		if err == nil {
			var r struct {
				Data struct {
					Result []struct {
						Value [2]any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if len(r.Data.Result) == 1 && r.Data.Result[0].Value[1] == fmt.Sprint(n) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus never scraped %d proxies", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
