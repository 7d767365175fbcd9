package window

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

var timeZero = time.Unix(0, 0)

func itoa(n int) string { return strconv.Itoa(n) }

func TestParserLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, line string
		keep       bool
		metric     metric
		value, le  float64
		success    bool
		labels     map[keyLabel]string
		err        string
	}{
		{name: "comment", line: "# TYPE response_total counter"},
		{name: "blank", line: ""},
		{name: "other metric", line: `process_cpu_seconds_total{x="y"} 1.5`},
		{name: "counter", line: `response_total{direction="inbound",authority="web:80",tls="true",classification="success",status_code="200"} 42`,
			keep: true, metric: mResponse, value: 42, le: math.Inf(1), success: true,
			labels: map[keyLabel]string{lDirection: "inbound", lAuthority: "web:80", lTLS: "true"}},
		{name: "route dst is the authority", line: `route_response_total{dst="books.demo.svc.cluster.local:7000",rt_route="GET /books/{id}",classification="failure"} 3`,
			keep: true, metric: mRouteResponse, value: 3, le: math.Inf(1),
			labels: map[keyLabel]string{lAuthority: "books.demo.svc.cluster.local:7000", lRoute: "GET /books/{id}"}},
		{name: "escapes", line: `tcp_open_total{authority="a\"b\\c\nd"} 7`,
			keep: true, metric: mTCPOpened, value: 7, le: math.Inf(1), labels: map[keyLabel]string{lAuthority: "a\"b\\c\nd"}},
		{name: "bucket", line: `response_latency_ms_bucket{direction="outbound",le="2.5"} 9`,
			keep: true, metric: mLatencyBucket, value: 9, le: 2.5, labels: map[keyLabel]string{lDirection: "outbound"}},
		{name: "inf bucket and timestamp", line: `response_latency_ms_bucket{le="+Inf"} 1e3 1700000000000`,
			keep: true, metric: mLatencyBucket, value: 1000, le: math.Inf(1)},
		{name: "no labels", line: `tcp_open_connections 2`, keep: true, metric: mTCPOpen, value: 2, le: math.Inf(1)},
		{name: "unterminated", line: `response_total{direction="inbound} 1`, err: "unterminated"},
		{name: "no value", line: `response_total`, err: "has no value"},
		{name: "bad value", line: `response_total{} x1`, err: `value "x1" is not a number`},
		{name: "malformed label", line: `response_total{direction=inbound} 1`, err: "malformed label"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p parser
			keep, err := p.line([]byte(tc.line))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || keep != tc.keep {
				t.Fatalf("keep = %v, err = %v", keep, err)
			}
			if !keep {
				return
			}
			s := &p.s
			if s.metric != tc.metric || s.value != tc.value || s.le != tc.le || s.success != tc.success {
				t.Errorf("sample = metric %d value %v le %v success %v", s.metric, s.value, s.le, s.success)
			}
			for l := range numKeyLabels {
				if got := string(s.labels[l]); got != tc.labels[l] {
					t.Errorf("label %d = %q, want %q", l, got, tc.labels[l])
				}
			}
		})
	}
}

// TestHistogramWithoutInf: a histogram whose +Inf bucket is missing counts
// the rest of _count there.
func TestHistogramWithoutInf(t *testing.T) {
	t.Parallel()
	w := New(Config{})
	w.SetPods([]PodInfo{web1})
	text := func(n int) string {
		l := `direction="inbound",authority="web.demo.svc.cluster.local:80",classification="success"`
		return "response_total{" + l + "} " + itoa(n) + "\n" +
			"response_latency_ms_bucket{" + l + `,le="10"} ` + itoa(n/2) + "\n" +
			"response_latency_ms_count{" + l + "} " + itoa(n) + "\n"
	}
	for _, n := range []int{0, 10} {
		if err := w.Ingest(w.Begin(timeZero), web1, strings.NewReader(text(n))); err != nil {
			t.Fatal(err)
		}
	}
	rows := w.Stat(Query{Resource: Resource{Type: "deploy", Namespace: "demo"}, Window: time.Hour})
	if len(rows) != 1 || rows[0].Requests != 10 || rows[0].P99 == nil || *rows[0].P99 != 50000 {
		t.Fatalf("rows = %+v", rows)
	}
}

// TestSeriesRing: the ring grows to the span, wraps without losing the
// newest points, merges points of one tick and widens bucket slots.
func TestSeriesRing(t *testing.T) {
	t.Parallel()
	s := &series{key: Key{Family: HTTP}}
	var sum [NumBuckets]uint64
	for tick := int64(1); tick <= 30; tick++ {
		sum = [NumBuckets]uint64{}
		sum[int(tick)%NumBuckets] = uint64(tick)
		if tick > 20 {
			sum[0], sum[NumBuckets-1] = 1000, 70000 // wider slot
		}
		s.add(&Point{Tick: tick, Requests: uint32(tick), Success: 1, Buckets: encodeBuckets(nil, &sum)}, 12)
	}
	s.add(&Point{Tick: 30, Requests: 5, Buckets: encodeBuckets(nil, &sum)}, 12)
	if s.n != 12 || s.capacity() != 12 {
		t.Fatalf("n %d cap %d, want 12 (the span)", s.n, s.capacity())
	}
	var ticks []int64
	var last Point
	s.each(0, 100, func(p *Point) {
		ticks = append(ticks, p.Tick)
		last = *p
		last.Buckets = append([]byte(nil), p.Buckets...)
	})
	if len(ticks) != 12 || ticks[0] != 19 || ticks[11] != 30 {
		t.Fatalf("ticks = %v, want 19..30", ticks)
	}
	if last.Requests != 35 || last.Success != 1 {
		t.Errorf("merged point = %+v", last)
	}
	var got [NumBuckets]uint64
	eachBucket(last.Buckets, func(i int, n uint64) { got[i] += n })
	if got[0] != 2000 || got[NumBuckets-1] != 140000 || got[30%NumBuckets] != 60 {
		t.Errorf("merged buckets = %v", got)
	}
	var early Point
	s.each(19, 19, func(p *Point) { early = *p })
	eachBucket(early.Buckets, func(i int, n uint64) {
		if i != 19 || n != 19 {
			t.Errorf("tick 19 bucket %d = %d after widening", i, n)
		}
	})
	s.trim(28)
	if s.n != 2 {
		t.Errorf("after trim: %d points, want 2", s.n)
	}
}
