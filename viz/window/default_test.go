package window

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// clientText renders a client proxy's outbound side as weft's proxies
// record it: HTTP series per authority (target addresses split them), and
// route series only for requests that matched a profile route.
func clientText(httpOK, httpBad int, routes map[string][2]int) string {
	var b strings.Builder
	const auth = "books.demo.svc.cluster.local:80"
	for i, n := range []int{httpOK, httpBad} {
		class, code := "success", 200
		if i == 1 {
			class, code = "failure", 500
		}
		for _, target := range []string{"198.18.0.9:80", "198.18.0.10:80"} {
			l := fmt.Sprintf(`direction="outbound",authority=%q,target_addr=%q,tls="true",dst_namespace="demo",dst_service="books",dst_deployment="books",status_code="%d",classification=%q`, auth, target, code, class)
			half := n / 2
			if target == "198.18.0.10:80" {
				half = n - n/2
			}
			fmt.Fprintf(&b, "response_total{%s} %d\n", l, half)
			fmt.Fprintf(&b, "response_latency_ms_bucket{%s,le=\"10\"} %d\nresponse_latency_ms_bucket{%s,le=\"+Inf\"} %d\n", l, half, l, half)
		}
	}
	for name, n := range routes {
		for i, c := range n {
			class := "success"
			if i == 1 {
				class = "failure"
			}
			l := fmt.Sprintf(`direction="outbound",dst=%q,rt_route=%q,status_code="",classification=%q`, auth, name, class)
			fmt.Fprintf(&b, "route_response_total{%s} %d\nroute_actual_response_total{%s} %d\n", l, c, l, c)
			fmt.Fprintf(&b, "route_response_latency_ms_bucket{%s,le=\"10\"} %d\nroute_response_latency_ms_bucket{%s,le=\"+Inf\"} %d\n", l, c, l, c)
		}
	}
	return b.String()
}

func TestRoutesDefaultRow(t *testing.T) {
	t.Parallel()
	web := PodInfo{Namespace: "demo", Name: "web-1", Kind: "Deployment", Workload: "web", Meshed: true}
	type row struct {
		route    string
		requests float64
		success  float64
	}
	tests := []struct {
		name     string
		resource string
		to       string
		ok, bad  int
		routes   map[string][2]int // name → ok, failed
		want     []row
	}{
		{"unmatched requests are [DEFAULT]", "deploy/web", "svc/books", 40, 10, map[string][2]int{"GET /books": {20, 0}, "GET /fail": {0, 10}},
			[]row{{"GET /books", 20, 1}, {"GET /fail", 10, 0}, {DefaultRoute, 20, 1}}},
		{"without a profile everything is [DEFAULT]", "deploy/web", "svc/books", 30, 6, nil,
			[]row{{DefaultRoute, 36, 30.0 / 36}}},
		{"every request matched: no [DEFAULT]", "deploy/web", "svc/books", 20, 0, map[string][2]int{"GET /books": {20, 0}},
			[]row{{"GET /books", 20, 1}}},
		{"svc/NAME reads every client's side", "svc/books", "", 40, 10, map[string][2]int{"GET /books": {20, 0}, "GET /fail": {0, 10}},
			[]row{{"GET /books", 20, 1}, {"GET /fail", 10, 0}, {DefaultRoute, 20, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := New(Config{Interval: 10 * time.Second, Span: time.Hour})
			w.SetPods([]PodInfo{web})
			zero := map[string][2]int{}
			for name := range tt.routes {
				zero[name] = [2]int{}
			}
			for _, body := range []string{clientText(0, 0, zero), clientText(tt.ok, tt.bad, tt.routes)} {
				if err := w.Ingest(w.Begin(time.Unix(0, 0)), web, strings.NewReader(body)); err != nil {
					t.Fatal(err)
				}
			}
			q := Query{Window: time.Minute}
			q.Resource, _ = ParseResource(tt.resource, "demo")
			if tt.to != "" {
				to, _ := ParseResource(tt.to, "demo")
				q.To = &to
			}
			got := w.Routes(q)
			if len(got) != len(tt.want) {
				t.Fatalf("rows = %+v, want %+v", got, tt.want)
			}
			for i, r := range got {
				wr := tt.want[i]
				if r.Route != wr.route || r.Requests != wr.requests || r.Success == nil || *r.Success != wr.success || r.ActualRequests != wr.requests {
					t.Errorf("row %d = %s %v %v actual %v, want %+v", i, r.Route, r.Requests, deref(r.Success), r.ActualRequests, wr)
				}
				if r.P50 == nil || *r.P50 <= 5 || *r.P50 > 10 {
					t.Errorf("row %d p50 = %v, want within the (5,10] ms bucket", i, deref(r.P50))
				}
			}
		})
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
