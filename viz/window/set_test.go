package window

import (
	"testing"
	"time"
)

// TestViewFromTotals: a View answers from Totals as the window does, and
// sparklines of Totals (requests per step) are aligned to the span's end.
func TestViewFromTotals(t *testing.T) {
	t.Parallel()
	in := Key{Family: HTTP, Namespace: "demo", Kind: "Deployment", Name: "books", Dir: "inbound", TLS: true}
	var buckets [NumBuckets]float64
	buckets[5] = 100 // (5, 10] ms
	v := &View{Span: time.Minute, Step: 10 * time.Second,
		Pods: []PodInfo{{Namespace: "demo", Name: "books-1", Kind: "Deployment", Workload: "books", Meshed: true}},
		Series: []Totals{
			{Key: in, Requests: 60, Success: 54, Buckets: buckets, Spark: []float64{30, 30}},
			{Key: in, Requests: 40, Success: 36, Spark: []float64{10, 10, 10, 10, 0, 0}},
			{Key: Key{Family: TCP, Namespace: "demo", Kind: "Deployment", Name: "books", Dir: "inbound"}, Open: 3, Read: 600},
		}}
	rows := v.Stat(Query{Resource: Resource{Type: "deploy", Namespace: "demo"}, Window: time.Minute})
	if len(rows) != 1 {
		t.Fatalf("rows = %+v", rows)
	}
	r := rows[0]
	if r.Requests != 100 || *r.Success != 0.9 || r.RPS != 100.0/60 || r.TCPConn != 3 || r.ReadBps != 10 || r.Meshed != 1 || *r.TLSShare != 1 {
		t.Errorf("row = %+v", r)
	}
	if r.P50 == nil || *r.P50 <= 5 || *r.P50 > 10 {
		t.Errorf("p50 = %v", deref(r.P50))
	}
	want := []float64{1, 1, 1, 1, 3, 3} // per second: 10/10 s, then 30/10 s in the last two steps
	if len(r.Spark) != len(want) {
		t.Fatalf("spark = %v, want %v", r.Spark, want)
	}
	for i := range want {
		if r.Spark[i] != want[i] {
			t.Errorf("spark = %v, want %v", r.Spark, want)
			break
		}
	}
}
