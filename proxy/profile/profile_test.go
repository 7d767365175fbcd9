package profile

import (
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
)

func TestRouteMatching(t *testing.T) {
	t.Parallel()
	p, err := Compile(&destinationv1.DestinationProfile{FullyQualifiedName: "books.demo.svc.cluster.local", Routes: []*destinationv1.Route{
		route("GET /books/{id}", all(method("GET"), path(`/books/\d+`)), true, 0),
		route("POST /books", all(method("POST"), path("/books")), false, 0),
		route("any /authors", anyOf(path("/authors"), path("/authors/.*")), false, 0),
		route("not GET /admin", all(path("/admin/.*"), not(method("GET"))), false, 0),
		route("nested", anyOf(all(method("PUT"), path("/x")), all(method("DELETE"), not(path("/x")))), false, 0),
		route("catch-all books", path("/books.*"), false, 0),
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ method, path, want string }{
		{"GET", "/books/12", "GET /books/{id}"},
		{"GET", "/books/12/x", "catch-all books"}, // whole-path match, not a prefix
		{"GET", "/x/books/12", ""},                // anchored at the start too
		{"HEAD", "/books/12", "catch-all books"},  // method mismatch falls through
		{"POST", "/books", "POST /books"},         // first match wins over catch-all
		{"GET", "/authors", "any /authors"},
		{"GET", "/authors/7", "any /authors"},
		{"GET", "/authorsX", ""},
		{"POST", "/admin/users", "not GET /admin"},
		{"GET", "/admin/users", ""},
		{"PUT", "/x", "nested"},
		{"PUT", "/y", ""},
		{"DELETE", "/y", "nested"},
		{"DELETE", "/x", ""},
		{"get", "/books/1", "catch-all books"}, // methods are case-sensitive
	}
	for _, tt := range tests {
		if got := p.Match(tt.method, tt.path).RouteName(); got != tt.want {
			t.Errorf("%s %s: route %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
	var nilProfile *Profile
	if nilProfile.Match("GET", "/") != nil {
		t.Error("nil profile matched")
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    *destinationv1.DestinationProfile
		want string
	}{
		{"bad regex", &destinationv1.DestinationProfile{Routes: []*destinationv1.Route{route("x", path("(["), false, 0)}}, "routes[0].condition.pathRegex"},
		{"nested bad regex", &destinationv1.DestinationProfile{Routes: []*destinationv1.Route{route("x", all(method("GET"), not(path("a**"))), false, 0)}}, "routes[0].condition.all[1].not.pathRegex"},
		{"empty method", &destinationv1.DestinationProfile{Routes: []*destinationv1.Route{route("x", method(""), false, 0)}}, "method: empty"},
		{"status min > max", &destinationv1.DestinationProfile{Routes: []*destinationv1.Route{route("x", nil, false, 0,
			&destinationv1.ResponseClass{Condition: status(500, 400)})}}, "responseClasses[0].condition.status"},
		{"split without weight", &destinationv1.DestinationProfile{DstOverrides: []*destinationv1.WeightedDst{{Authority: "a.b:80"}}}, "no positive weight"},
		{"split bad authority", &destinationv1.DestinationProfile{DstOverrides: []*destinationv1.WeightedDst{{Authority: "a.b", Weight: 1}}}, "want host:port"},
	}
	for _, tt := range tests {
		_, err := Compile(tt.p, Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
	p, err := Compile(nil, Options{})
	if err != nil || len(p.Routes) != 0 || p.Budget == nil || p.Split != nil {
		t.Fatalf("nil profile compiles to an empty one with the default budget: %+v %v", p, err)
	}
}

func TestResponseClasses(t *testing.T) {
	t.Parallel()
	p, err := Compile(&destinationv1.DestinationProfile{Routes: []*destinationv1.Route{
		route("classified", path("/c"), false, 0,
			&destinationv1.ResponseClass{Condition: status(503, 503), IsFailure: false}, // first class wins
			&destinationv1.ResponseClass{Condition: rany(status(500, 599), status(429, 429)), IsFailure: true},
			&destinationv1.ResponseClass{Condition: rall(status(400, 499), rnot(status(404, 404))), IsFailure: true},
		),
		route("plain", path("/p"), false, 0),
		route("defaults", path("/d"), false, 0, &destinationv1.ResponseClass{Condition: status(0, 0), IsFailure: true}),
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, plain, d := p.Match("GET", "/c"), p.Match("GET", "/p"), p.Match("GET", "/d")
	tests := []struct {
		name     string
		r        *Route
		status   int
		grpc     int
		proxyErr bool
		want     bool
	}{
		{"503 declared success", c, 503, -1, false, false},
		{"500 failure", c, 500, -1, false, true},
		{"429 failure", c, 429, -1, false, true},
		{"404 not a failure", c, 404, -1, false, false},
		{"403 failure", c, 403, -1, false, true},
		{"200 unmatched → default", c, 200, -1, false, false},
		{"proxy error always fails", c, 503, -1, true, true},
		{"plain 502", plain, 502, -1, false, true},
		{"plain 404", plain, 404, -1, false, false},
		{"plain grpc unavailable", plain, 200, 14, false, true},
		{"plain grpc not found", plain, 200, 5, false, false},
		{"no route 500", nil, 500, -1, false, true},
		{"no response", nil, 0, -1, false, true},
		{"unset range 100..599", d, 200, -1, false, true},
	}
	for _, tt := range tests {
		if got := tt.r.Failed(tt.status, tt.grpc, tt.proxyErr); got != tt.want {
			t.Errorf("%s: Failed = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBudgetArithmetic(t *testing.T) {
	t.Parallel()
	t.Run("1000 failing requests in one window", func(t *testing.T) {
		c := &fakeClock{}
		b := NewBudget(0.2, 10, 10*time.Second, c.now)
		retries := 0
		for i := 0; i < 1000; i++ {
			b.Deposit()
			for b.Withdraw() { // every attempt fails: retry while the budget lets us
				retries++
			}
			c.advance(time.Millisecond)
		}
		// ratio × requests + minPerSecond × ttl = 200 + 100
		if retries > 300 || retries < 290 {
			t.Fatalf("retries %d, want 290..300 (≤ 0.2×1000 + 10×10)", retries)
		}
	})
	t.Run("reserve alone", func(t *testing.T) {
		c := &fakeClock{}
		b := NewBudget(0.2, 10, 10*time.Second, c.now)
		if got := b.Available(); got != 100 {
			t.Fatalf("fresh budget allows %d, want the reserve 10/s × 10 s = 100", got)
		}
		n := 0
		for b.Withdraw() {
			n++
		}
		if n != 100 {
			t.Fatalf("withdrew %d, want 100", n)
		}
		c.advance(5 * time.Second)
		if b.Withdraw() {
			t.Fatal("withdrawals expire only after the TTL")
		}
		c.advance(5*time.Second + time.Second)
		if got := b.Available(); got != 100 {
			t.Fatalf("after the TTL the reserve is whole again: %d", got)
		}
	})
	t.Run("deposits and ratio", func(t *testing.T) {
		c := &fakeClock{}
		b := NewBudget(0.5, 0, 10*time.Second, c.now)
		if b.Withdraw() {
			t.Fatal("no reserve, no deposits: no retry")
		}
		for i := 0; i < 10; i++ {
			b.Deposit()
		}
		if got := b.Available(); got != 5 {
			t.Fatalf("10 requests at ratio 0.5 allow %d, want 5", got)
		}
		c.advance(11 * time.Second)
		if got := b.Available(); got != 0 {
			t.Fatalf("deposits expire after the TTL: %d", got)
		}
	})
	t.Run("sliding window expires a slice at a time", func(t *testing.T) {
		c := &fakeClock{}
		b := NewBudget(1, 0, 10*time.Second, c.now)
		b.Deposit()
		c.advance(5 * time.Second)
		b.Deposit()
		c.advance(5*time.Second + time.Millisecond)
		if got := b.Available(); got != 1 {
			t.Fatalf("first deposit expired, second kept: %d", got)
		}
	})
	t.Run("zero ratio", func(t *testing.T) {
		c := &fakeClock{}
		b := NewBudget(0, 2, time.Second, c.now)
		b.Deposit()
		if got := b.Available(); got != 2 {
			t.Fatalf("ratio 0: only the reserve, got %d", got)
		}
	})
	t.Run("long run bound", func(t *testing.T) {
		c := &fakeClock{}
		b := NewBudget(0.2, 10, 10*time.Second, c.now)
		retries, requests := 0, 0
		for s := 0; s < 100; s++ { // 100 s at 50 failing requests/s
			for i := 0; i < 50; i++ {
				requests++
				b.Deposit()
				if b.Withdraw() {
					retries++
				}
				c.advance(20 * time.Millisecond)
			}
		}
		// At most ratio × requests + minPerSecond × (duration + ttl).
		if limit := int(0.2*float64(requests)) + 10*(100+10); retries > limit {
			t.Fatalf("%d retries for %d requests, over the bound %d", retries, requests, limit)
		}
		if retries < requests*2/10 {
			t.Fatalf("%d retries for %d requests: the ratio should at least be available", retries, requests)
		}
	})
	if (*Budget)(nil).Withdraw() {
		t.Error("nil budget allowed a retry")
	}
}

func TestSplitProportions(t *testing.T) {
	t.Parallel()
	p, err := Compile(&destinationv1.DestinationProfile{DstOverrides: []*destinationv1.WeightedDst{
		{Authority: "books.demo.svc.cluster.local:80", Weight: 700},
		{Authority: "books-v2.demo.svc.cluster.local:80", Weight: 200},
		{Authority: "books-v3.demo.svc.cluster.local:80", Weight: 100},
		{Authority: "off.demo.svc.cluster.local:80", Weight: 0},
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	got := map[string]int{}
	for i := 0; i < n; i++ {
		got[p.Split.Pick()]++
	}
	want := map[string]float64{"books.demo.svc.cluster.local:80": 0.7, "books-v2.demo.svc.cluster.local:80": 0.2, "books-v3.demo.svc.cluster.local:80": 0.1}
	for a, f := range want {
		if share := float64(got[a]) / n; math.Abs(share-f) > 0.05 {
			t.Errorf("%s: share %.3f, want %.2f ± 0.05", a, share, f)
		}
	}
	if got["off.demo.svc.cluster.local:80"] != 0 || len(p.Split.Authorities()) != 3 {
		t.Errorf("zero weight picked or listed: %v", got)
	}
}

func TestCompileBudgetAndTimeout(t *testing.T) {
	t.Parallel()
	c := &fakeClock{}
	p, err := Compile(&destinationv1.DestinationProfile{
		Routes:      []*destinationv1.Route{route("slow", path("/slow"), true, 250*time.Millisecond)},
		RetryBudget: &destinationv1.RetryBudget{RetryRatio: 0.5, MinRetriesPerSecond: 1, Ttl: durationpb.New(2 * time.Second)},
	}, Options{Clock: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Match("GET", "/slow"); r.RouteTimeout() != 250*time.Millisecond || !r.Retryable {
		t.Fatalf("route %+v", r)
	}
	if got := p.Budget.Available(); got != 2 {
		t.Fatalf("budget reserve %d, want 1/s × 2 s", got)
	}
	if (*Route)(nil).RouteTimeout() != 0 {
		t.Fatal("nil route timeout")
	}
}
