package promsource

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftmesh/weft/viz/window"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{"http://prometheus.monitoring.svc.cluster.local:9090", "http://prometheus.monitoring.svc.cluster.local:9090", ""},
		{"https://prom.example/prefix/", "https://prom.example/prefix", ""},
		{"prometheus:9090", "", "want http:// or https://"},
		{"ftp://prom", "", "want http:// or https://"},
		{"http://", "", "has no host"},
		{"http://:9090", "", "has no host"},
		{"http://p:9090/?q=up", "", "base URL only"},
		{"http://user:pw@p:9090", "", "base URL only"},
		{"http://p:0", "", `port "0" is not 1-65535`},
		{"http://p:9090/%zz", "", "invalid URL escape"},
	}
	for _, tt := range tests {
		got, err := CheckURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("CheckURL(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CheckURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestPerBucket(t *testing.T) {
	t.Parallel()
	var got [window.NumBuckets]float64
	// Cumulative counts as Prometheus sums them (le="+Inf" included); a
	// bound between the proxy's (7) lands in the next bucket up.
	perBucket(&got, map[float64]float64{1: 2, 5: 2, 7: 3, 10: 6, math.Inf(1): 7})
	want := map[int]float64{0: 2, 5: 4, window.NumBuckets - 1: 1}
	for i, n := range got {
		if n != want[i] {
			t.Errorf("bucket %d (le %v) = %v, want %v", i, window.Bounds[i], n, want[i])
		}
	}
}

// TestQueriesAndErrors: the PromQL sent (one query per metric of the
// families asked, the selector in each), the answers turned into rows, and
// Prometheus' errors passed on with the query.
func TestQueriesAndErrors(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var queries []string
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		q := r.FormValue("query")
		mu.Lock()
		defer mu.Unlock()
		queries = append(queries, q)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case fail:
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"status":"error","errorType":"bad_data","error":"parse error"}`))
		case strings.Contains(q, "(increase(response_total{"):
			w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[
				{"metric":{"namespace":"demo","pod":"books-1","direction":"inbound","classification":"success","tls":"true"},"value":[1,"90"]},
				{"metric":{"namespace":"demo","pod":"books-1","direction":"inbound","classification":"failure","tls":"true"},"value":[1,"10"]}]}}`))
		default:
			w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
		}
	}))
	defer srv.Close()
	s, err := New(Config{URL: srv.URL, Selector: `job="mesh"`, Now: func() time.Time { return time.Unix(1000, 0) },
		Inventory: func() ([]window.PodInfo, map[string]string) {
			return []window.PodInfo{{Namespace: "demo", Name: "books-1", Kind: "Deployment", Workload: "books", Meshed: true}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	q := window.Query{Resource: window.Resource{Type: "deploy", Namespace: "demo"}, Window: time.Minute}
	rows, err := s.Stat(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Name != "books" || rows[0].Requests != 100 || *rows[0].Success != 0.9 || *rows[0].TLSShare != 1 || rows[0].Meshed != 1 {
		t.Errorf("rows = %+v", rows)
	}
	if len(queries) != 6 { // HTTP: responses, buckets; TCP: 4
		t.Errorf("%d queries for stat, want 6: %q", len(queries), queries)
	}
	for _, qq := range queries {
		if !strings.Contains(qq, `{job="mesh"}`) || !strings.Contains(qq, "sum by (namespace, pod, ") {
			t.Errorf("query %q lacks the selector or the grouping", qq)
		}
		if !strings.Contains(qq, "tcp_open_connections") && !strings.Contains(qq, "[60s]") {
			t.Errorf("query %q is not an increase over the 60s window", qq)
		}
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	if _, err := s.Routes(context.Background(), q); err == nil || !strings.Contains(err.Error(), "bad_data: parse error") {
		t.Errorf("routes error = %v, want Prometheus' error", err)
	}
	if _, err := New(Config{URL: "prometheus:9090", Inventory: func() ([]window.PodInfo, map[string]string) { return nil, nil }}); err == nil {
		t.Error("a URL without scheme was accepted")
	}
}
