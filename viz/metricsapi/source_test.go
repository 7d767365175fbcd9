package metricsapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// TestPrometheusSource: with a Prometheus URL the server scrapes no proxy,
// keeps the pod inventory, answers from Prometheus and says so; a failing
// Prometheus is a 502 with its error; a bad URL is refused at New.
func TestPrometheusSource(t *testing.T) {
	t.Parallel()
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"error","errorType":"unavailable","error":"tsdb not ready"}`)
	}))
	defer prom.Close()
	var scrapes atomic.Int32
	s, err := New(Config{Client: fake.NewClientset(pod("web-1", "web-abc", "abc")), Interval: time.Hour, PrometheusURL: prom.URL,
		Scrape: func(context.Context, *corev1.Pod) (io.ReadCloser, error) {
			scrapes.Add(1)
			return io.NopCloser(strings.NewReader("")), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.fact.Start(ctx.Done())
	s.fact.WaitForCacheSync(ctx.Done())
	s.Round(ctx)
	if n := scrapes.Load(); n != 0 {
		t.Errorf("%d proxies scraped with a Prometheus source", n)
	}
	if pods, _ := s.win.Inventory(); len(pods) != 1 || pods[0].Workload != "web" {
		t.Errorf("inventory = %+v", pods)
	}
	api := httptest.NewServer(s.Handler())
	defer api.Close()
	resp, err := http.Get(api.URL + StatPath + "?resource=deploy&namespace=demo")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body["error"], "unavailable: tsdb not ready") {
		t.Errorf("stat with Prometheus down = %d %v", resp.StatusCode, body)
	}
	resp, err = http.Get(api.URL + HealthPath)
	if err != nil {
		t.Fatal(err)
	}
	var h Health
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if h.Source != "prometheus "+prom.URL {
		t.Errorf("health source = %q", h.Source)
	}
	if _, err := New(Config{Client: fake.NewClientset(), PrometheusURL: "prometheus.monitoring:9090"}); err == nil || !strings.Contains(err.Error(), "want http:// or https://") {
		t.Errorf("bad URL: %v", err)
	}
}
