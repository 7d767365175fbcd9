package promsource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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
