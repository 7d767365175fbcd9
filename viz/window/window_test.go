package window

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// proxyText renders an exposition in the proxy's shape: inbound traffic
// served (ok successes, bad failures, all latencies in the (5,10] ms
// bucket), outbound to the dst deployment, one route, and TCP.
type traffic struct {
	ok, bad, out, routeOK, routeBad, routeActual, opened, open, read int
	dst                                                              string
}

func proxyText(t traffic) string {
	var b strings.Builder
	in := `direction="inbound",authority="web.demo.svc.cluster.local:80",target_addr="198.18.0.5:80",tls="true",client_id="spiffe://weft.local/ns/demo/sa/client"`
	out := `direction="outbound",authority="198.19.0.20:80",target_addr="198.18.0.9:80",tls="true",server_id="spiffe://weft.local/ns/demo/sa/` + t.dst + `",dst_namespace="demo",dst_service="` + t.dst + `",dst_deployment="` + t.dst + `",dst_pod="` + t.dst + `-1"`
	b.WriteString("# TYPE response_total counter\n")
	fmt.Fprintf(&b, "response_total{%s,status_code=\"200\",classification=\"success\",error=\"\"} %d\n", in, t.ok)
	fmt.Fprintf(&b, "response_total{%s,status_code=\"500\",classification=\"failure\",error=\"\"} %d\n", in, t.bad)
	fmt.Fprintf(&b, "response_total{%s,status_code=\"200\",classification=\"success\",error=\"\"} %d\n", out, t.out)
	b.WriteString("# TYPE response_latency_ms histogram\n")
	for _, s := range []struct {
		l string
		n int
	}{{in + `,status_code="200",classification="success",error=""`, t.ok}, {in + `,status_code="500",classification="failure",error=""`, t.bad}, {out + `,status_code="200",classification="success",error=""`, t.out}} {
		for _, le := range []string{"1", "5"} {
			fmt.Fprintf(&b, "response_latency_ms_bucket{%s,le=%q} 0\n", s.l, le)
		}
		for _, le := range []string{"10", "+Inf"} {
			fmt.Fprintf(&b, "response_latency_ms_bucket{%s,le=%q} %d\n", s.l, le, s.n)
		}
		fmt.Fprintf(&b, "response_latency_ms_sum{%s} 0\nresponse_latency_ms_count{%s} %d\n", s.l, s.l, s.n)
	}
	b.WriteString("# TYPE route_response_total counter\n")
	fmt.Fprintf(&b, "route_response_total{direction=\"inbound\",dst=\"web.demo.svc.cluster.local:80\",rt_route=\"GET /books\",status_code=\"200\",classification=\"success\"} %d\n", t.routeOK)
	fmt.Fprintf(&b, "route_response_total{direction=\"inbound\",dst=\"web.demo.svc.cluster.local:80\",rt_route=\"GET /books\",status_code=\"500\",classification=\"failure\"} %d\n", t.routeBad)
	b.WriteString("# TYPE route_actual_response_total counter\n")
	fmt.Fprintf(&b, "route_actual_response_total{direction=\"inbound\",dst=\"web.demo.svc.cluster.local:80\",rt_route=\"GET /books\",status_code=\"200\",classification=\"success\"} %d\n", t.routeActual)
	b.WriteString("# TYPE tcp_open_total counter\n")
	fmt.Fprintf(&b, "tcp_open_total{%s} %d\n", in, t.opened)
	b.WriteString("# TYPE tcp_open_connections gauge\n")
	fmt.Fprintf(&b, "tcp_open_connections{%s} %d\n", in, t.open)
	b.WriteString("# TYPE tcp_read_bytes_total counter\n")
	fmt.Fprintf(&b, "tcp_read_bytes_total{%s} %d\n", in, t.read)
	return b.String()
}

var web1 = PodInfo{Namespace: "demo", Name: "web-1", Kind: "Deployment", Workload: "web", Meshed: true}

func ingest(t testing.TB, w *Window, tick int64, p PodInfo, tr traffic) {
	t.Helper()
	if err := w.Ingest(tick, p, strings.NewReader(proxyText(tr))); err != nil {
		t.Fatal(err)
	}
}

func TestRatesSuccessAndCounterReset(t *testing.T) {
	t.Parallel()
	w := New(Config{Interval: 10 * time.Second, Span: time.Hour})
	w.SetPods([]PodInfo{web1, {Namespace: "demo", Name: "legacy-1", Kind: "Deployment", Workload: "legacy"}})
	now := time.Unix(0, 0)
	// Baseline: large counters from before the window — must not count.
	ingest(t, w, w.Begin(now), web1, traffic{ok: 5000, bad: 50, dst: "books"})
	ingest(t, w, w.Begin(now), web1, traffic{ok: 5090, bad: 60, opened: 3, open: 2, read: 1000, dst: "books"})
	// The proxy restarts: counters start again from zero.
	ingest(t, w, w.Begin(now), web1, traffic{ok: 100, bad: 0, open: 1, dst: "books"})
	rows := w.Stat(Query{Resource: Resource{Type: "deploy", Namespace: "demo"}, Window: time.Minute})
	if len(rows) != 2 {
		t.Fatalf("rows = %+v", rows)
	}
	legacy, web := rows[0], rows[1]
	if legacy.Name != "legacy" || legacy.Pods != 1 || legacy.Meshed != 0 || legacy.Success != nil {
		t.Errorf("legacy = %+v", legacy)
	}
	// Two ticks (20 s) of data: 90+10 then 100 after the reset.
	if web.Requests != 200 || web.Successes != 190 {
		t.Fatalf("web requests %v successes %v, want 200/190", web.Requests, web.Successes)
	}
	if got := web.RPS; math.Abs(got-200.0/20) > 1e-9 {
		t.Errorf("rps = %v, want %v (2 ticks of 10s)", got, 200.0/20)
	}
	if web.TCPConn != 1 {
		t.Errorf("tcp conn = %v, want the last tick's gauge 1", web.TCPConn)
	}
	if web.P50 == nil || *web.P50 <= 5 || *web.P50 > 10 {
		t.Errorf("p50 = %v, want in (5,10]", web.P50)
	}
	if web.TLSShare == nil || *web.TLSShare != 1 {
		t.Errorf("tls share = %v", web.TLSShare)
	}
	for _, v := range web.Spark {
		if v < 0 || v > 11 {
			t.Errorf("spark has a spike or negative rate: %v", web.Spark)
		}
	}
	// Nothing in the window goes negative after the reset.
	for _, r := range w.Stat(Query{Resource: Resource{Type: "po"}, Window: time.Hour}) {
		if r.RPS < 0 || r.Requests < 0 {
			t.Errorf("negative row %+v", r)
		}
	}
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	var b [NumBuckets]float64
	if !math.IsNaN(Quantile(&b, 0.5)) {
		t.Error("no samples must be NaN")
	}
	b[bucketIndex(5)] = 50  // (4,5]
	b[bucketIndex(10)] = 40 // (5,10]
	b[bucketIndex(100)] = 10
	tests := []struct{ q, want float64 }{{0.5, 5}, {0.9, 10}, {0.95, 75}, {0.25, 4.5}}
	for _, tt := range tests {
		if got := Quantile(&b, tt.q); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("q%.2f = %v, want %v", tt.q, got, tt.want)
		}
	}
	var inf [NumBuckets]float64
	inf[NumBuckets-1] = 3
	if got := Quantile(&inf, 0.99); got != 50000 {
		t.Errorf("+Inf only = %v, want the highest finite bound", got)
	}
}

func TestFromToRoutesEdges(t *testing.T) {
	t.Parallel()
	w := New(Config{})
	books := PodInfo{Namespace: "demo", Name: "books-1", Kind: "Deployment", Workload: "books", Meshed: true}
	w.SetPods([]PodInfo{web1, books})
	w.SetServices(map[string]string{"198.19.0.20:80": "demo/books"})
	now := time.Unix(0, 0)
	ingest(t, w, w.Begin(now), web1, traffic{dst: "books"})
	ingest(t, w, w.Begin(now), books, traffic{dst: "authors"})
	ingest(t, w, w.Begin(now), web1, traffic{out: 40, routeOK: 18, routeBad: 2, routeActual: 25, dst: "books"})
	ingest(t, w, w.Begin(now), books, traffic{out: 7, dst: "authors"})
	q := func(r, from, to string) []Row {
		res, _ := ParseResource(r, "demo")
		qq := Query{Resource: res, Window: time.Minute}
		if from != "" {
			f, _ := ParseResource(from, "demo")
			qq.From = &f
		}
		if to != "" {
			x, _ := ParseResource(to, "demo")
			qq.To = &x
		}
		return w.Stat(qq)
	}
	if rows := q("deploy", "", "deploy/books"); len(rows) != 1 || rows[0].Name != "web" || rows[0].Requests != 40 {
		t.Errorf("--to deploy/books = %+v", rows)
	}
	if rows := q("deploy", "deploy/web", ""); len(rows) != 1 || rows[0].Name != "books" || rows[0].Requests != 40 {
		t.Errorf("--from deploy/web = %+v", rows)
	}
	if rows := q("deploy", "", "svc/authors"); len(rows) != 1 || rows[0].Name != "books" || rows[0].Requests != 7 {
		t.Errorf("--to svc/authors = %+v", rows)
	}
	if rows := q("svc", "", ""); len(rows) != 2 || rows[0].Name != "authors" || rows[1].Name != "books" {
		t.Errorf("stat svc = %+v", rows)
	}
	if rows := q("ns", "", ""); len(rows) != 1 || rows[0].Name != "demo" || rows[0].Pods != 2 {
		t.Errorf("stat ns = %+v", rows)
	}
	res, _ := ParseResource("svc/web", "demo")
	routes := w.Routes(Query{Resource: res, Window: time.Minute})
	if len(routes) != 1 || routes[0].Route != "GET /books" || routes[0].Requests != 20 || *routes[0].Success != 0.9 || routes[0].ActualRequests != 25 {
		t.Errorf("routes = %+v", routes)
	}
	edges := w.Edges(Query{Resource: Resource{Type: "deploy", Namespace: "demo"}, Window: time.Minute})
	if len(edges) != 2 || edges[0].Src != "books" || edges[0].Dst != "authors" || edges[1].Src != "web" || edges[1].Dst != "books" || !edges[1].Secured || edges[1].ServerID == "" {
		t.Errorf("edges = %+v", edges)
	}
}

func TestParseResource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Resource
		err  bool
	}{
		{"deploy", Resource{Type: "deploy", Namespace: "demo"}, false},
		{"deployment/web", Resource{Type: "deploy", Name: "web", Namespace: "demo"}, false},
		{"po/web-1", Resource{Type: "po", Name: "web-1", Namespace: "demo"}, false},
		{"ns/demo", Resource{Type: "ns", Name: "demo"}, false},
		{"au", Resource{Type: "authority", Namespace: "demo"}, false},
		{"cronjob/x", Resource{}, true},
		{"deploy/a/b", Resource{}, true},
	}
	for _, tt := range tests {
		got, err := ParseResource(tt.in, "demo")
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseResource(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestSpanTrimsAndBoundsSeries(t *testing.T) {
	t.Parallel()
	w := New(Config{Interval: 10 * time.Second, Span: time.Minute, MaxSeries: 4})
	w.SetPods([]PodInfo{web1})
	for i := range 20 {
		ingest(t, w, w.Begin(time.Unix(int64(i*10), 0)), web1, traffic{ok: i * 10, out: i, opened: i, dst: "books"})
	}
	st := w.Stats()
	if st.Series > 4 || st.Dropped == 0 {
		t.Errorf("series %d dropped %d: the cap must hold", st.Series, st.Dropped)
	}
	if st.Points > st.Series*6 {
		t.Errorf("points %d beyond the 6-tick span of %d series", st.Points, st.Series)
	}
}
