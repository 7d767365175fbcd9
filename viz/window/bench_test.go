package window

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// benchPods builds 1 000 pods in 100 deployments (10 replicas each), each
// proxy exporting 20 label sets: 10 inbound (one per client identity) and
// 10 outbound (one per destination deployment), every one with a success
// and a failure response series, their histograms, and TCP series.
func benchPods(counter int) ([]PodInfo, []string) {
	pods := make([]PodInfo, 1000)
	texts := make([]string, 1000)
	for i := range pods {
		wl := fmt.Sprintf("app-%02d", i/10)
		pods[i] = PodInfo{Namespace: "bench", Name: fmt.Sprintf("%s-%d", wl, i%10), Kind: "Deployment", Workload: wl, Meshed: true}
		var b strings.Builder
		var sets []string
		for j := range 10 {
			sets = append(sets, fmt.Sprintf(`direction="inbound",authority="%s.bench.svc.cluster.local:80",target_addr="198.18.1.%d:80",tls="true",client_id="spiffe://weft.local/ns/bench/sa/client-%d"`, wl, i%250, j))
			d := fmt.Sprintf("app-%02d", (i/10+j+1)%100)
			sets = append(sets, fmt.Sprintf(`direction="outbound",authority="%s.bench.svc.cluster.local:80",target_addr="198.18.2.%d:80",tls="true",server_id="spiffe://weft.local/ns/bench/sa/%s",dst_namespace="bench",dst_service="%s",dst_deployment="%s"`, d, j, d, d, d))
		}
		b.WriteString("# TYPE response_total counter\n")
		for _, s := range sets {
			fmt.Fprintf(&b, "response_total{%s,status_code=\"200\",classification=\"success\",error=\"\"} %d\n", s, counter*10)
			fmt.Fprintf(&b, "response_total{%s,status_code=\"500\",classification=\"failure\",error=\"\"} %d\n", s, counter)
		}
		b.WriteString("# TYPE response_latency_ms histogram\n")
		for _, s := range sets {
			for _, c := range []string{`status_code="200",classification="success",error=""`, `status_code="500",classification="failure",error=""`} {
				cum := 0
				for k, le := range Bounds {
					if k < 8 {
						cum += counter
					}
					l := fmt.Sprint(le)
					if k == NumBuckets-1 {
						l = "+Inf"
					}
					fmt.Fprintf(&b, "response_latency_ms_bucket{%s,%s,le=%q} %d\n", s, c, l, cum)
				}
				fmt.Fprintf(&b, "response_latency_ms_sum{%s,%s} 0\nresponse_latency_ms_count{%s,%s} %d\n", s, c, s, c, cum)
			}
		}
		for _, f := range []string{"tcp_open_total", "tcp_read_bytes_total", "tcp_write_bytes_total"} {
			fmt.Fprintf(&b, "# TYPE %s counter\n", f)
			for _, s := range sets {
				fmt.Fprintf(&b, "%s{%s} %d\n", f, s, counter*100)
			}
		}
		b.WriteString("# TYPE tcp_open_connections gauge\n")
		for _, s := range sets {
			fmt.Fprintf(&b, "tcp_open_connections{%s} 3\n", s)
		}
		texts[i] = b.String()
	}
	return pods, texts
}

// BenchmarkScrapeRound measures the CPU of ingesting one scrape round of
// 1 000 pods × 20 label sets (parse, diff, add).
func BenchmarkScrapeRound(b *testing.B) {
	pods, t1 := benchPods(1)
	_, t2 := benchPods(2)
	w := New(Config{})
	w.SetPods(pods)
	tick := w.Begin(time.Now())
	for i, p := range pods {
		if err := w.Ingest(tick, p, strings.NewReader(t1[i])); err != nil {
			b.Fatal(err)
		}
	}
	var bytes int64
	for _, t := range t2 {
		bytes += int64(len(t))
	}
	b.SetBytes(bytes)
	b.ResetTimer()
	for n := range b.N {
		texts := t2
		if n%2 == 1 {
			texts = t1 // a "reset" every other round: the worst case
		}
		tick := w.Begin(time.Now())
		for i, p := range pods {
			if err := w.Ingest(tick, p, strings.NewReader(texts[i])); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkWindowMemory fills a full 1 h window at 10 s (360 ticks) of
// 1 000 pods × 20 label sets and reports the heap it holds.
func BenchmarkWindowMemory(b *testing.B) {
	pods, t1 := benchPods(1)
	_, t2 := benchPods(2)
	for range b.N {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		w := New(Config{})
		w.SetPods(pods)
		for _, texts := range [][]string{t1, t2} {
			tick := w.Begin(time.Now())
			for i, p := range pods {
				if err := w.Ingest(tick, p, strings.NewReader(texts[i])); err != nil {
					b.Fatal(err)
				}
			}
		}
		// Replay the last tick's points for the rest of the hour (parsing
		// 360 rounds would only cost time, not memory).
		w.mu.Lock()
		type kp struct {
			k Key
			p Point
			s *series
		}
		var last []kp
		for k, s := range w.series {
			var p Point
			s.point(s.slot(s.n-1), &p)
			p.Buckets = append([]byte(nil), p.Buckets...)
			last = append(last, kp{k: k, p: p})
		}
		w.mu.Unlock()
		for range w.ticks() - 1 {
			tick := w.Begin(time.Now())
			w.mu.Lock()
			for i := range last {
				p := last[i].p
				p.Tick = tick
				w.addTo(&last[i].s, last[i].k, &p)
			}
			w.mu.Unlock()
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		st := w.Stats()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(st.Series), "series")
		b.ReportMetric(float64(st.Points), "points")
		start := time.Now()
		rows := w.Stat(Query{Resource: Resource{Type: "deploy"}, Window: time.Hour})
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "stat-1h-ms")
		if len(rows) != 100 {
			b.Fatalf("rows = %d", len(rows))
		}
		runtime.KeepAlive(w)
	}
}
