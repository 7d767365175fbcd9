package promsource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftmesh/weft/proxy/app"
	"github.com/weftmesh/weft/proxy/config"
	"github.com/weftmesh/weft/viz/metricsapi"
	"github.com/weftmesh/weft/viz/window"
)

const booksHost = "books.demo.svc.cluster.local"

// startProxy runs a weft proxy on loopback whose connections all have orig
// as their original destination.
func startProxy(t *testing.T, orig netip.AddrPort, destination string) *app.App {
	t.Helper()
	cfg := config.Default()
	cfg.InboundAddrs = []string{"127.0.0.1:0"}
	cfg.OutboundAddrs = []string{"127.0.0.1:0"}
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.DetectTimeout = 200 * time.Millisecond
	cfg.ShutdownGracePeriod = 2 * time.Second
	cfg.ShutdownQuiet = 50 * time.Millisecond
	cfg.DestinationAddr = destination
	a, err := app.New(cfg, app.Options{
		OrigDst: func(net.Conn) (netip.AddrPort, error) { return orig, nil },
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("proxy did not stop")
		}
	})
	return a
}

func ownedPod(name, workload, ip string) *corev1.Pod {
	ctrl := true
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name, Labels: map[string]string{"pod-template-hash": "abc"},
			Annotations:     map[string]string{"weft.io/proxy-version": "dev"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: workload + "-abc", Controller: &ctrl}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip},
	}
}

// api is one metricsapi server's query API.
type api struct{ url string }

func (a api) get(t *testing.T, path string, params url.Values, out any) {
	t.Helper()
	resp, err := http.Get(a.url + path + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s?%s: %s: %s", path, params.Encode(), resp.Status, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v: %s", path, err, b)
	}
}

// startAPI runs a metricsapi server (window, or Prometheus with promURL)
// over the fake cluster, scraping through admin (pod name → address).
func startAPI(t *testing.T, ctx context.Context, client *fake.Clientset, admin map[string]string, promURL string) api {
	t.Helper()
	hc := &http.Client{Timeout: time.Second}
	s, err := metricsapi.New(metricsapi.Config{Client: client, Interval: time.Second, Span: 10 * time.Minute, PrometheusURL: promURL,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Scrape: func(ctx context.Context, p *corev1.Pod) (io.ReadCloser, error) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin[p.Name]+"/metrics", nil)
			resp, err := hc.Do(req)
			if err != nil {
				return nil, err
			}
			return resp.Body, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Scrape(ctx) }()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return api{srv.URL}
}

// TestPrometheusSourceAgreesWithWindow: a client proxy (deploy/web) calls
// a server proxy (deploy/books) in front of a backend on loopback; a real
// Prometheus and the metrics window scrape both proxies every second; the
// query API answers stat, routes and edges from either source, and both
// agree with each other and with the requests sent.
func TestPrometheusSourceAgreesWithWindow(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
		case "/ok":
			time.Sleep(3 * time.Millisecond)
			fmt.Fprint(w, "ok")
		default:
			fmt.Fprint(w, "other")
		}
	}))
	t.Cleanup(backend.Close)
	books := startProxy(t, netip.MustParseAddrPort(backend.Listener.Addr().String()), "")
	dest := startDestination(t, int32(books.InboundAddr().(*net.TCPAddr).Port))
	// The app's original destination would be the Service's ClusterIP; the
	// destination service resolves the request's authority.
	web := startProxy(t, netip.MustParseAddrPort("127.0.0.1:9"), dest)
	hc := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+web.OutboundAddr().String()+path, nil)
		req.Host = booksHost + ":80"
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s through the client proxy: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Warm-up, before anything scrapes: the destination service's answer
	// reaches the client proxy, and one request per path creates every
	// series, so the first scrape of both sources holds them all.
	deadline := time.Now().Add(15 * time.Second)
	for get("/ok") != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the client proxy never reached books")
		}
		time.Sleep(20 * time.Millisecond)
	}
	get("/fail")
	get("/other")

	admin := map[string]string{"web-1": web.AdminAddr().String(), "books-1": books.AdminAddr().String()}
	prom := startPrometheus(t, shippedScrapeConfig(t, map[string][2]string{
		admin["web-1"]:   {"web-1", "web"},
		admin["books-1"]: {"books-1", "books"},
	}))
	client := fake.NewClientset(ownedPod("web-1", "web", "198.18.0.1"), ownedPod("books-1", "books", "198.18.0.2"))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	apiStart := time.Now()
	win := startAPI(t, ctx, client, admin, "")
	pq := startAPI(t, ctx, client, admin, prom.URL)
	waitTargets(t, prom.URL, 2)
	time.Sleep(5 * time.Second) // both sources hold scrapes of the warm state

	sent := map[string]int{}
	send := func(path string) {
		want := 200
		if path == "/fail" {
			want = 500
		}
		if code := get(path); code != want {
			t.Fatalf("GET %s = %d, want %d", path, code, want)
		}
		sent[path]++
	}
	trafficStart := time.Now()
	paths := []string{"/ok", "/ok", "/ok", "/fail", "/other", "/other"}
	for i := range 300 {
		send(paths[i%len(paths)])
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(5 * time.Second) // the scrapes after the traffic, and the sparklines' 4 s rate ranges
	// The queries' window: everything the window holds (it began scraping
	// after apiStart), so it covers the warm state before the traffic even
	// as it slides while the queries run (the 5 s above are the slack).
	span := time.Duration(time.Since(apiStart)/time.Second-1) * time.Second
	t.Logf("window %s, traffic over the last %s", span, time.Since(trafficStart).Round(time.Millisecond))
	params := func(resource string, extra ...string) url.Values {
		v := url.Values{"resource": {resource}, "namespace": {"demo"}, "window": {span.String()}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	total := float64(sent["/ok"] + sent["/fail"] + sent["/other"])
	t.Logf("sent %v", sent)

	stat := func(resource string, extra ...string) (w, p []window.Row) {
		v := params(resource, extra...)
		t0 := time.Now()
		win.get(t, metricsapi.StatPath, v, &w)
		t1 := time.Now()
		pq.get(t, metricsapi.StatPath, v, &p)
		t.Logf("stat %s %v answered in %s from the window, %s from prometheus", resource, extra, t1.Sub(t0).Round(time.Microsecond), time.Since(t1).Round(time.Microsecond))
		return w, p
	}
	for _, tc := range []struct {
		resource string
		extra    []string
		want     map[string]float64 // row → requests sent
	}{
		{"deploy", nil, map[string]float64{"books": total, "web": 0}},
		{"deploy", []string{"to", "deploy/books"}, map[string]float64{"web": total}},
		{"deploy", []string{"from", "deploy/web"}, map[string]float64{"books": total}},
		{"svc", nil, map[string]float64{"books": total}},
		{"po", nil, map[string]float64{"books-1": total, "web-1": 0}},
		{"ns", nil, map[string]float64{"demo": total}},
		{"deploy/books", nil, map[string]float64{"books": total}},
	} {
		w, p := stat(tc.resource, tc.extra...)
		name := fmt.Sprint("stat ", tc.resource, " ", tc.extra)
		agreeRows(t, name, w, p, func(r window.Row) string { return r.Name }, func(r window.Row) window.Signals { return r.Signals }, tc.want)
		for i := range w {
			if i < len(p) && (w[i].Pods != p[i].Pods || w[i].Meshed != p[i].Meshed) {
				t.Errorf("%s %s: meshed %d/%d from the window, %d/%d from prometheus", name, w[i].Name, w[i].Meshed, w[i].Pods, p[i].Meshed, p[i].Pods)
			}
		}
	}
	for _, tc := range []struct {
		resource string
		extra    []string
	}{{"deploy/web", []string{"to", "svc/books"}}, {"svc/books", nil}} {
		var w, p []window.RouteRow
		v := params(tc.resource, tc.extra...)
		win.get(t, metricsapi.RoutesPath, v, &w)
		pq.get(t, metricsapi.RoutesPath, v, &p)
		want := map[string]float64{"GET /ok": float64(sent["/ok"]), "GET /fail": float64(sent["/fail"]), window.DefaultRoute: float64(sent["/other"])}
		agreeRows(t, fmt.Sprint("routes ", tc.resource, " ", tc.extra), w, p, func(r window.RouteRow) string { return r.Route },
			func(r window.RouteRow) window.Signals { return r.Signals }, want)
		for i := range min(len(w), len(p)) {
			if !near(w[i].ActualRequests, p[i].ActualRequests) {
				t.Errorf("routes %s %s: actual requests %.1f from the window, %.1f from prometheus", tc.resource, w[i].Route, w[i].ActualRequests, p[i].ActualRequests)
			}
		}
	}
	var we, pe []window.Edge
	win.get(t, metricsapi.EdgesPath, params("deploy"), &we)
	pq.get(t, metricsapi.EdgesPath, params("deploy"), &pe)
	agreeRows(t, "edges deploy", we, pe, func(e window.Edge) string { return e.Src + " -> " + e.Dst },
		func(e window.Edge) window.Signals { return e.Signals }, map[string]float64{"web -> books": total})
	checkShipped(t, prom.URL)
	for i := range min(len(we), len(pe)) {
		if we[i].Secured != pe[i].Secured || we[i].SrcNamespace != pe[i].SrcNamespace || we[i].DstNamespace != pe[i].DstNamespace {
			t.Errorf("edge %d: window %+v, prometheus %+v", i, we[i], pe[i])
		}
	}
}

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
