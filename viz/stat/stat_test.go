package stat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// exposition renders proxy metrics in Linkerd's shape for given cumulative
// counts: ok successes and bad failures, latencies spread over the buckets.
func exposition(ok, bad int, le map[string]int, tcp int) string {
	var b strings.Builder
	b.WriteString("# TYPE response_total counter\n")
	fmt.Fprintf(&b, "response_total{direction=\"inbound\",authority=\"books:7000\",tls=\"true\",status_code=\"200\",classification=\"success\"} %d\n", ok)
	fmt.Fprintf(&b, "response_total{direction=\"inbound\",authority=\"books:7000\",tls=\"true\",status_code=\"500\",classification=\"failure\"} %d\n", bad)
	b.WriteString("response_total{direction=\"outbound\",authority=\"authors:7001\",tls=\"true\",status_code=\"200\",classification=\"success\"} 999\n")
	b.WriteString("# TYPE response_latency_ms histogram\n")
	total := 0
	for _, bound := range []string{"1", "5", "10", "50", "100"} {
		total += le[bound]
		fmt.Fprintf(&b, "response_latency_ms_bucket{direction=\"inbound\",le=\"%s\"} %d\n", bound, total)
	}
	fmt.Fprintf(&b, "response_latency_ms_bucket{direction=\"inbound\",le=\"+Inf\"} %d\n", total)
	fmt.Fprintf(&b, "response_latency_ms_sum{direction=\"inbound\"} 0\nresponse_latency_ms_count{direction=\"inbound\"} %d\n", total)
	b.WriteString("# TYPE tcp_open_connections gauge\n")
	fmt.Fprintf(&b, "tcp_open_connections{direction=\"inbound\"} %d\ntcp_open_connections{direction=\"outbound\"} 40\n", tcp)
	return b.String()
}

func TestParseAndDiff(t *testing.T) {
	t.Parallel()
	a, err := Parse(strings.NewReader(exposition(10, 0, map[string]int{"1": 10}, 2)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse(strings.NewReader(exposition(100, 10, map[string]int{"1": 10, "5": 50, "10": 40, "100": 10}, 3)))
	if err != nil {
		t.Fatal(err)
	}
	d := b.Sub(a)
	if d.Success != 90 || d.Failure != 10 || d.TCPOpen != 3 {
		t.Fatalf("diff = %+v (outbound must be ignored)", d)
	}
	// 100 new responses: 50 in (1,5], 40 in (5,10], 10 in (50,100].
	tests := []struct{ q, want float64 }{{0.5, 5}, {0.9, 10}, {0.95, 75}}
	for _, tt := range tests {
		if got := d.Quantile(tt.q); math.Abs(got-tt.want) > 0.01 {
			t.Errorf("q%.2f = %v, want %v", tt.q, got, tt.want)
		}
	}
	if restarted := a.Sub(b); restarted.Success != 10 {
		t.Errorf("a counter reset must count from zero, got %v", restarted.Success)
	}
	if !math.IsNaN((Sample{}).Quantile(0.5)) {
		t.Error("no traffic must give NaN")
	}
	if _, err := Parse(strings.NewReader("not metrics {{{")); err == nil {
		t.Error("garbage must fail to parse")
	}
}

// twoScrapes serves each pod's first and then second exposition.
type twoScrapes struct {
	mu    sync.Mutex
	calls map[string]int
	texts map[string][2]string
}

func (s *twoScrapes) Scrape(_ context.Context, p *corev1.Pod) (io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	texts, ok := s.texts[p.Name]
	if !ok {
		return nil, fmt.Errorf("no proxy on %s", p.Name)
	}
	n := s.calls[p.Name]
	s.calls[p.Name]++
	return io.NopCloser(strings.NewReader(texts[min(n, 1)])), nil
}

func pod(name, rs, hash string, meshed bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name, Labels: map[string]string{"pod-template-hash": hash},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: rs, Controller: new(bool)}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	*p.OwnerReferences[0].Controller = true
	if meshed {
		p.Annotations = map[string]string{"weft.io/proxy-version": "dev"}
	}
	return p
}

func TestCollectAggregatesPerWorkload(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(
		pod("books-1", "books-abc", "abc", true), pod("books-2", "books-abc", "abc", true),
		pod("legacy-1", "legacy-xyz", "xyz", false),
	)
	scr := &twoScrapes{calls: map[string]int{}, texts: map[string][2]string{
		"books-1": {exposition(0, 0, nil, 0), exposition(18, 2, map[string]int{"5": 20}, 1)},
		"books-2": {exposition(0, 0, nil, 0), exposition(20, 0, map[string]int{"5": 20}, 2)},
	}}
	rows, err := Collect(context.Background(), client, "demo", 100*time.Millisecond, scr)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows = %+v", rows)
	}
	books, legacy := rows[0], rows[1]
	if books.Name != "books" || books.Pods != 2 || books.Meshed != 2 || math.Abs(books.Success-0.95) > 1e-9 || math.Abs(books.RPS-400) > 1e-6 || books.TCPConn != 3 {
		t.Fatalf("books row = %+v", books)
	}
	if legacy.Meshed != 0 || !math.IsNaN(legacy.Success) {
		t.Fatalf("unmeshed row = %+v", legacy)
	}
	var out bytes.Buffer
	if err := WriteTable(&out, rows); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NAME", "deploy/books", "2/2", "95.00%", "400.0rps", "deploy/legacy", "0/1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCollectReportsScrapeFailures(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(pod("books-1", "books-abc", "abc", true))
	scr := &twoScrapes{calls: map[string]int{}, texts: map[string][2]string{}}
	rows, err := Collect(context.Background(), client, "demo", time.Millisecond, scr)
	if err == nil || !strings.Contains(err.Error(), "no proxy on books-1") {
		t.Fatalf("want the scrape error, got %v", err)
	}
	if len(rows) != 1 || rows[0].Meshed != 1 {
		t.Fatalf("rows still reported: %+v", rows)
	}
}
