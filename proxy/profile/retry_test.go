package profile

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	"github.com/weftmesh/weft/proxy/proxyerr"
)

func TestRetryDecisions(t *testing.T) {
	t.Parallel()
	p, err := Compile(&destinationv1.DestinationProfile{Routes: []*destinationv1.Route{
		route("retryable", path("/r"), true, 0),
		route("plain", path("/p"), false, 0),
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rr, plain := p.Match("POST", "/r"), p.Match("GET", "/p")
	connErr := proxyerr.New(proxyerr.Connect, errors.New("refused"))
	tests := []struct {
		name   string
		route  *Route
		method string
		o      Outcome
		want   bool
	}{
		{"retryable route, failed response", rr, "POST", Outcome{Failed: true, Replayable: true}, true},
		{"success is never retried", rr, "GET", Outcome{Failed: false, Replayable: true}, false},
		{"body too large", rr, "POST", Outcome{Failed: true, Replayable: false}, false},
		{"plain route 5xx", plain, "GET", Outcome{Failed: true, Replayable: true}, false},
		{"plain route connect failure, GET", plain, "GET", Outcome{Failed: true, Err: connErr, Replayable: true}, true},
		{"plain route connect failure, POST never implicit", plain, "POST", Outcome{Failed: true, Err: connErr, Replayable: true}, false},
		{"no route connect failure, PUT", nil, "PUT", Outcome{Failed: true, Err: connErr, Replayable: true}, true},
		{"timeout is final", rr, "GET", Outcome{Failed: true, Err: proxyerr.New(proxyerr.Timeout, nil), Replayable: true}, false},
		{"canceled is final", rr, "GET", Outcome{Failed: true, Err: proxyerr.New(proxyerr.Canceled, nil), Replayable: true}, false},
		{"protocol error on retryable route", rr, "GET", Outcome{Failed: true, Err: proxyerr.New(proxyerr.Protocol, nil), Replayable: true}, true},
		{"no time left for the back-off", rr, "GET", Outcome{Failed: true, Replayable: true, Remaining: time.Millisecond}, false},
		{"time left", rr, "GET", Outcome{Failed: true, Replayable: true, Remaining: time.Minute}, true},
	}
	for _, tt := range tests {
		r := p.Begin(tt.route, tt.method)
		wait, ok := r.Next(tt.o)
		if ok != tt.want {
			t.Errorf("%s: retry %v, want %v", tt.name, ok, tt.want)
		}
		if ok && (wait < BackoffBase/2 || wait >= BackoffBase) {
			t.Errorf("%s: first back-off %v outside [%v, %v)", tt.name, wait, BackoffBase/2, BackoffBase)
		}
	}
	var none Retry
	if _, ok := none.Next(Outcome{Failed: true, Replayable: true}); ok || none.MayRetry() {
		t.Error("zero Retry retried")
	}
	var np *Profile
	if r := np.Begin(nil, "GET"); r.MayRetry() {
		t.Error("nil profile may retry")
	}
}

func TestRetryStopsAtBudgetAndCap(t *testing.T) {
	t.Parallel()
	c := &fakeClock{}
	p, _ := Compile(&destinationv1.DestinationProfile{
		Routes:      []*destinationv1.Route{route("r", path("/r"), true, 0)},
		RetryBudget: &destinationv1.RetryBudget{RetryRatio: 0.2, MinRetriesPerSecond: 1, Ttl: durationpb1s()},
	}, Options{Clock: c.now})
	r := p.Begin(p.Match("GET", "/r"), "GET")
	n := 0
	for {
		if _, ok := r.Next(Outcome{Failed: true, Replayable: true}); !ok {
			break
		}
		n++
	}
	// reserve 1/s × 1 s = 1 retry, plus 0.2 of one deposit = 0.2 → 1
	if n != 1 || r.Retries() != 1 {
		t.Fatalf("%d retries, want 1 (budget)", n)
	}
	big, _ := Compile(&destinationv1.DestinationProfile{Routes: []*destinationv1.Route{route("r", path("/r"), true, 0)},
		RetryBudget: &destinationv1.RetryBudget{RetryRatio: 1, MinRetriesPerSecond: 1000}}, Options{Clock: c.now})
	r = big.Begin(big.Match("GET", "/r"), "GET")
	for {
		if _, ok := r.Next(Outcome{Failed: true, Replayable: true}); !ok {
			break
		}
	}
	if r.Retries() != MaxRetries {
		t.Fatalf("%d retries, want the cap %d", r.Retries(), MaxRetries)
	}
}

func TestBackoffGrowsAndIsBounded(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 12; n++ {
		d := min(BackoffBase<<(n-1), BackoffMax)
		for i := 0; i < 50; i++ {
			if w := Backoff(n); w < d/2 || w >= d {
				t.Fatalf("Backoff(%d) = %v outside [%v, %v)", n, w, d/2, d)
			}
		}
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("0123456789", 1000) // 10 kB
	r := NewReplay(strings.NewReader(body))
	defer r.Release()
	first := r.Body()
	half := make([]byte, 4000)
	if _, err := io.ReadFull(first, half); err != nil {
		t.Fatal(err)
	}
	// The first attempt failed after reading part of the body.
	if !r.Rewind() {
		t.Fatal("a 10 kB body should rewind")
	}
	if _, err := first.Read(half); err == nil {
		t.Fatal("the superseded attempt kept reading")
	}
	got, err := io.ReadAll(r.Body())
	if err != nil || string(got) != body {
		t.Fatalf("replayed %d bytes, err %v", len(got), err)
	}
	if !r.Rewind() {
		t.Fatal("second rewind")
	}
	got, _ = io.ReadAll(r.Body())
	if string(got) != body || r.Buffered() != len(body) {
		t.Fatalf("second replay %d bytes, buffered %d", len(got), r.Buffered())
	}
}

func TestReplayTooLarge(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("x"), MaxReplayBody+1)
	r := NewReplay(bytes.NewReader(body))
	got, err := io.ReadAll(r.Body())
	if err != nil || len(got) != len(body) {
		t.Fatalf("first attempt streams the whole body: %d bytes, %v", len(got), err)
	}
	if r.Replayable() || r.Rewind() {
		t.Fatal("a body over 64 KiB must not be replayable")
	}
	r.Release()
	if _, err := r.Body().Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Release")
	}
	exact := NewReplay(bytes.NewReader(body[:MaxReplayBody]))
	io.Copy(io.Discard, exact.Body())
	if !exact.Rewind() {
		t.Fatal("exactly 64 KiB is replayable")
	}
	exact.Release()
}

// errReader fails after its data.
type errReader struct {
	data []byte
	err  error
}

func (e *errReader) Read(p []byte) (int, error) {
	if len(e.data) == 0 {
		return 0, e.err
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	return n, nil
}

func TestReplayKeepsSourceError(t *testing.T) {
	t.Parallel()
	boom := errors.New("client reset")
	r := NewReplay(&errReader{data: []byte("abc"), err: boom})
	defer r.Release()
	if _, err := io.ReadAll(r.Body()); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	r.Rewind()
	b, err := io.ReadAll(r.Body())
	if string(b) != "abc" || !errors.Is(err, boom) {
		t.Fatalf("replay: %q %v", b, err)
	}
}

func BenchmarkRouteMatch(b *testing.B) {
	var routes []*destinationv1.Route
	for _, r := range []string{"/authors", "/authors/\\d+", "/books", "/books/\\d+/reviews"} {
		routes = append(routes, route("GET "+r, all(method("GET"), path(r)), true, 0))
	}
	routes = append(routes, route("POST /books/{id}", all(method("POST"), path(`/books/\d+`)), false, 0))
	p, err := Compile(&destinationv1.DestinationProfile{Routes: routes}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if p.Match("POST", "/books/12345") == nil {
			b.Fatal("no match")
		}
	}
}

func BenchmarkBudget(b *testing.B) {
	bu := NewBudget(0.2, 10, 10*time.Second, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bu.Deposit()
			bu.Withdraw()
		}
	})
}

func BenchmarkRetryDecision(b *testing.B) {
	p, _ := Compile(&destinationv1.DestinationProfile{Routes: []*destinationv1.Route{route("r", path("/r"), true, 0)}}, Options{})
	rt := p.Match("GET", "/r")
	b.ReportAllocs()
	for b.Loop() {
		r := p.Begin(rt, "GET")
		r.Next(Outcome{Failed: true, Replayable: true})
	}
}
