package traffic

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	ok := func(context.Context) error { return nil }
	for _, cfg := range []Config{
		{},
		{Targets: []Target{{Name: "a", Rate: 0, Call: ok}}},
		{Targets: []Target{{Name: "a", Rate: MaxRate + 1, Call: ok}}},
		{Targets: []Target{{Name: "", Rate: 1, Call: ok}}},
		{Targets: []Target{{Name: "a", Rate: 1}}},
		{Targets: []Target{{Name: "a", Rate: 1, Call: ok}}, Duration: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v): want error", cfg)
		}
	}
}

// TestScheduleCount: a bounded run sends exactly the requests the clock schedules, i/rate < duration.
func TestScheduleCount(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	g, err := New(Config{
		Duration: 500 * time.Millisecond,
		Targets: []Target{
			{Name: "ok", Rate: 100, Call: HTTPGet(srv.Client(), srv.URL, "/")},
			{Name: "fail", Rate: 20, Call: HTTPGet(srv.Client(), srv.URL, "/fail")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	snap := g.Snapshot()
	if got := served.Load(); got != 60 {
		t.Errorf("server saw %d requests, want 50+10", got)
	}
	if s := snap[0]; s.Requests != 50 || s.Successes != 50 || s.Failures != 0 || s.InFlight != 0 {
		t.Errorf("ok target stats %+v, want 50 successes", s)
	}
	if s := snap[1]; s.Requests != 10 || s.Failures != 10 || !strings.Contains(s.LastError, "status 500") {
		t.Errorf("fail target stats %+v, want 10 failures with status 500", s)
	}
	if s := snap[0]; s.P50Ms <= 0 || s.P99Ms < s.P50Ms {
		t.Errorf("percentiles p50=%v p99=%v, want 0 < p50 <= p99", s.P50Ms, s.P99Ms)
	}
}

// TestOpenLoop: requests are sent on schedule even while earlier ones are still outstanding, so
// all of them are in flight together (a closed loop would have one).
func TestOpenLoop(t *testing.T) {
	const n = 10
	var arrived atomic.Int64
	var maxConcurrent atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := arrived.Add(1)
		if c > maxConcurrent.Load() {
			maxConcurrent.Store(c)
		}
		if c == n {
			once.Do(func() { close(release) })
		}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	g, err := New(Config{
		Duration: 100 * time.Millisecond, // rate 100 → exactly n scheduled
		Targets:  []Target{{Name: "blocked", Rate: 100, Call: HTTPGet(srv.Client(), srv.URL, "/")}},
		Timeout:  20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := maxConcurrent.Load(); got != n {
		t.Errorf("max requests outstanding at once = %d, want %d", got, n)
	}
	if s := g.Snapshot()[0]; s.Successes != n {
		t.Errorf("stats %+v, want %d successes", s, n)
	}
}

// TestMaxInFlightDrops: with MaxInFlight 2 and a backend that holds requests, the rest are dropped.
func TestMaxInFlightDrops(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	g, err := New(Config{
		Duration:    100 * time.Millisecond,
		MaxInFlight: 2,
		Timeout:     20 * time.Second,
		Targets:     []Target{{Name: "held", Rate: 100, Call: HTTPGet(srv.Client(), srv.URL, "/")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()
	for deadline := time.Now().Add(10 * time.Second); g.Snapshot()[0].Dropped < 8 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := g.Snapshot()[0]
	if s.Requests != 10 || s.Successes != 2 || s.Dropped != 8 {
		t.Errorf("stats %+v, want 10 requests: 2 successes, 8 dropped", s)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	var calls atomic.Int64
	g, err := New(Config{Targets: []Target{{Name: "a", Rate: 50, Call: func(context.Context) error {
		calls.Add(1)
		return nil
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); calls.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v, want context.Canceled", err)
	}
	if calls.Load() < 3 {
		t.Errorf("calls = %d before cancel, want >= 3", calls.Load())
	}
}

func TestStatsHandler(t *testing.T) {
	g, err := New(Config{Duration: 40 * time.Millisecond, Targets: []Target{{Name: "web GET /", Rate: 100, Call: func(context.Context) error { return nil }}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := g.StatsHandler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/stats", nil))
	var rep Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil || len(rep.Targets) != 1 || rep.Targets[0].Requests != 4 {
		t.Errorf("json stats %s (%v), want one target with 4 requests", rec.Body.String(), err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/stats?format=table", nil))
	if !strings.Contains(rec.Body.String(), "TARGET") || !strings.Contains(rec.Body.String(), "100.0%") {
		t.Errorf("table stats %q, want a header and 100.0%%", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/stats?reset=1", nil))
	if rec.Code != http.StatusNoContent {
		t.Errorf("reset status %d, want 204", rec.Code)
	}
	if s := g.Snapshot()[0]; s.Requests != 0 || s.P50Ms != 0 {
		t.Errorf("after reset %+v, want zero figures", s)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/stats?format=xml", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("format=xml status %d, want 400", rec.Code)
	}
}

func TestCheckTarget(t *testing.T) {
	tests := []struct {
		target string
		ok     bool
	}{
		{"http://web.demo.svc.cluster.local:8080", true},
		{"http://books:7000", true},
		{"http://books.demo:7000", false},
		{"authors.demo.svc.cluster.local:7001", true},
		{"http://127.0.0.1:7000", true},
		{"http://198.19.3.4", true},
		{"http://[::1]:80", true},
		{"http://localhost:1", true},
		{"http://example.com", false},
		{"http://web.demo.svc.other.local", false},
		{"http://8.8.8.8", false},
		{"10.0.0.1:7001", false},
		{"http://:80", false},
	}
	for _, tt := range tests {
		if err := CheckTarget(tt.target, "cluster.local"); (err == nil) != tt.ok {
			t.Errorf("CheckTarget(%q) = %v, want ok=%v", tt.target, err, tt.ok)
		}
	}
}

func TestDemoTargetsSkipsZeroRates(t *testing.T) {
	ts := DemoTargets(Endpoints{WebURL: "http://web:8080", BooksURL: "http://books:7000"}, Rates{WebIndex: 1, BooksFail: 2})
	if len(ts) != 2 || ts[0].Name != "web GET /" || ts[1].Name != "books GET /fail" {
		t.Errorf("targets %+v, want web GET / and books GET /fail", ts)
	}
	var total float64
	for _, r := range []float64{DefaultRates().WebIndex, DefaultRates().WebStream, DefaultRates().BooksList, DefaultRates().BooksFail, DefaultRates().BooksSlow, DefaultRates().AuthorsGet, DefaultRates().AuthorsList} {
		total += r
	}
	if total != 10 {
		t.Errorf("default total rate %v, want 10", total)
	}
}
