package balance

import (
	"container/heap"
	"math"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/target"
)

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) set(t int64)             { c.ns.Store(t) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func ep(i int) target.Endpoint {
	return target.Endpoint{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 64, byte(i)}), 8080)}
}

func newTest(t testing.TB, cfg Config, n int) (*Balancer, *fakeClock) {
	t.Helper()
	c := &fakeClock{}
	c.set(int64(time.Hour))
	cfg.Clock = c.now
	b := New(cfg)
	for i := 1; i <= n; i++ {
		b.Add(ep(i))
	}
	return b, c
}

func TestPeakEWMA(t *testing.T) {
	t.Parallel()
	const ms = float64(time.Millisecond)
	tau := float64(10 * time.Second)
	tests := []struct {
		name      string
		est, rtt  float64
		dt        time.Duration
		want      float64
		tolerance float64
	}{
		{"peak replaces", 30 * ms, 80 * ms, time.Millisecond, 80 * ms, 0},
		{"peak replaces after long idle", 30 * ms, 31 * ms, time.Hour, 31 * ms, 0},
		{"no time passed keeps estimate", 30 * ms, 10 * ms, 0, 30 * ms, 0},
		{"one tau moves 63%", 30 * ms, 10 * ms, 10 * time.Second, 10*ms + 20*ms*math.Exp(-1), 1},
		{"small step", 30 * ms, 10 * ms, 100 * time.Millisecond, 30*ms*math.Exp(-0.01) + 10*ms*(1-math.Exp(-0.01)), 1},
		{"long idle converges", 30 * ms, 10 * ms, 1000 * time.Second, 10 * ms, 1},
		{"zero sample decays toward 0", 30 * ms, 0, 10 * time.Second, 30 * ms * math.Exp(-1), 1},
		{"clock going back is no time", 30 * ms, 10 * ms, -time.Second, 30 * ms, 0},
	}
	for _, tt := range tests {
		got := peakEWMA(tt.est, 1e12, 1e12+int64(tt.dt), tt.rtt, tau)
		if math.Abs(got-tt.want) > tt.tolerance {
			t.Errorf("%s: got %.0f ns, want %.0f ns", tt.name, got, tt.want)
		}
	}
}

func TestEndUpdatesEstimateAndPending(t *testing.T) {
	t.Parallel()
	b, c := newTest(t, Config{}, 1)
	e := b.PickEndpoint()
	if got := e.Estimate(); got != float64(DefaultRTT) {
		t.Fatalf("new endpoint estimate %v, want the default RTT", got)
	}
	tok := e.Begin()
	if e.Pending() != 1 {
		t.Fatalf("pending %d after Begin", e.Pending())
	}
	c.advance(100 * time.Millisecond)
	e.End(tok, false)
	if e.Pending() != 0 || e.Estimate() != float64(100*time.Millisecond) {
		t.Fatalf("after a 100ms sample: pending %d estimate %v", e.Pending(), time.Duration(e.Estimate()))
	}
	tok = e.Begin()
	c.advance(time.Millisecond)
	e.End(tok, true) // fast failure: penalised
	if e.Estimate() != float64(DefaultFailurePenalty) {
		t.Fatalf("failure estimate %v, want the penalty", time.Duration(e.Estimate()))
	}
	// cost = estimate × (pending+1)
	e.Begin()
	e.Begin()
	if got, want := e.cost(c.now()), 3*float64(DefaultFailurePenalty); math.Abs(got-want) > 1 {
		t.Fatalf("cost %v, want %v", got, want)
	}
}

// completion is an in-flight simulated request.
type completion struct {
	at  int64
	e   *Endpoint
	tok int64
}
type completions []completion

func (h completions) Len() int           { return len(h) }
func (h completions) Less(i, j int) bool { return h[i].at < h[j].at }
func (h completions) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *completions) Push(x any)        { *h = append(*h, x.(completion)) }
func (h *completions) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// simulate sends n requests, one every interval of simulated time, each
// taking rtt(endpoint) to its first byte; it returns picks per address.
func simulate(b *Balancer, c *fakeClock, n int, interval time.Duration, rtt func(netip.AddrPort) time.Duration) map[netip.AddrPort]int {
	picks := map[netip.AddrPort]int{}
	var inflight completions
	t := c.now()
	for i := 0; i < n; i++ {
		t += int64(interval)
		for len(inflight) > 0 && inflight[0].at <= t {
			x := heap.Pop(&inflight).(completion)
			c.set(x.at)
			x.e.End(x.tok, false)
		}
		c.set(t)
		e := b.PickEndpoint()
		addr := e.Target().Addr
		picks[addr]++
		heap.Push(&inflight, completion{at: t + int64(rtt(addr)), e: e, tok: e.Begin()})
	}
	for len(inflight) > 0 {
		x := heap.Pop(&inflight).(completion)
		c.set(x.at)
		x.e.End(x.tok, false)
	}
	return picks
}

func TestP2CAvoidsTheSlowEndpoint(t *testing.T) {
	t.Parallel()
	b, c := newTest(t, Config{}, 3)
	slow := ep(3).Addr
	rtt := func(a netip.AddrPort) time.Duration {
		if a == slow {
			return 60 * time.Millisecond
		}
		return 10 * time.Millisecond
	}
	const n = 10000
	picks := simulate(b, c, n, time.Millisecond, rtt)
	a, bb, s := picks[ep(1).Addr], picks[ep(2).Addr], picks[slow]
	t.Logf("picks: fast %d / %d, slow (+50ms) %d", a, bb, s)
	if s >= n*15/100 {
		t.Errorf("slow endpoint got %d of %d picks, want < 15%%", s, n)
	}
	if d := math.Abs(float64(a-bb)) / float64(a+bb); d > 0.1 {
		t.Errorf("fast endpoints uneven: %d vs %d", a, bb)
	}
	for _, e := range b.Endpoints() {
		if p := e.Load.(*Endpoint).Pending(); p != 0 {
			t.Errorf("%v: %d pending after the run", e.Addr, p)
		}
	}
}

func TestP2CEqualEndpointsShareEvenly(t *testing.T) {
	t.Parallel()
	b, c := newTest(t, Config{}, 4)
	picks := simulate(b, c, 10000, time.Millisecond, func(netip.AddrPort) time.Duration { return 20 * time.Millisecond })
	for a, n := range picks {
		if n < 2000 || n > 3000 {
			t.Errorf("%v: %d of 10000 picks, want 2000..3000 (25%% ± 5)", a, n)
		}
	}
}

func TestAddedEndpointGetsTrafficAtOnce(t *testing.T) {
	t.Parallel()
	b, _ := newTest(t, Config{}, 2)
	// The existing endpoints are busy (5 pending each, never ending).
	for i := 0; i < 10; i++ {
		b.PickEndpoint().Begin()
	}
	b.Add(ep(9))
	got := 0
	for i := 0; i < 20; i++ {
		if e := b.PickEndpoint(); e.Target().Addr == ep(9).Addr {
			got++
		}
	}
	if got == 0 {
		t.Fatal("the added (idle) endpoint got none of 20 picks")
	}
	if b.Len() != 3 || b.Ready() != 3 {
		t.Fatalf("len %d ready %d", b.Len(), b.Ready())
	}
}

func TestRemovedEndpointGetsNoNewRequests(t *testing.T) {
	t.Parallel()
	b, c := newTest(t, Config{}, 3)
	gone := b.Endpoint(ep(2).Addr)
	tok := gone.Begin() // in flight while removed
	b.Remove(ep(2).Addr)
	for i := 0; i < 1000; i++ {
		if b.PickEndpoint() == gone {
			t.Fatal("removed endpoint picked")
		}
	}
	c.advance(5 * time.Millisecond)
	gone.End(tok, false) // its request finishes normally
	if gone.Pending() != 0 || b.Len() != 2 {
		t.Fatalf("pending %d len %d", gone.Pending(), b.Len())
	}
	// Replace keeps survivors' state and drops the rest.
	keep := b.Endpoint(ep(1).Addr)
	b.Replace([]target.Endpoint{ep(1), ep(7)})
	if b.Endpoint(ep(1).Addr) != keep || b.Endpoint(ep(3).Addr) != nil || b.Len() != 2 {
		t.Fatalf("replace: %v", b.Endpoints())
	}
	b.Remove(ep(1).Addr, ep(7).Addr)
	if _, ok := b.Pick(); ok {
		t.Fatal("empty balancer picked")
	}
}

func TestFailureAccrual(t *testing.T) {
	t.Parallel()
	b, c := newTest(t, Config{FailureThreshold: 3}, 3)
	bad := b.Endpoint(ep(1).Addr)
	fail := func(e *Endpoint) { e.End(e.Begin(), true) }
	fail(bad)
	fail(bad)
	bad.End(bad.Begin(), false) // a success resets the count
	fail(bad)
	fail(bad)
	if bad.Ejected() {
		t.Fatal("ejected before 3 consecutive failures")
	}
	fail(bad)
	if !bad.Ejected() || b.Ready() != 2 {
		t.Fatalf("after 3 consecutive failures: ejected %v ready %d", bad.Ejected(), b.Ready())
	}
	for i := 0; i < 500; i++ {
		if b.PickEndpoint() == bad {
			t.Fatal("ejected endpoint picked")
		}
	}
	// The back-off (1 s + up to 0.5 s jitter) ends: readmitted on probation.
	c.advance(1600 * time.Millisecond)
	b.PickEndpoint()
	if bad.Ejected() || b.Ready() != 3 {
		t.Fatalf("after the back-off: ejected %v ready %d", bad.Ejected(), b.Ready())
	}
	fail(bad) // a failed probe ejects at once, for twice as long
	if !bad.Ejected() {
		t.Fatal("failed probe did not eject")
	}
	c.advance(1600 * time.Millisecond)
	b.PickEndpoint()
	if !bad.Ejected() {
		t.Fatal("second ejection should last 2 s or more")
	}
	c.advance(1500 * time.Millisecond)
	b.PickEndpoint()
	if bad.Ejected() {
		t.Fatal("second ejection should end by 3 s")
	}
	bad.End(bad.Begin(), false) // a good probe closes the breaker
	if bad.state.Load() != stateReady {
		t.Fatalf("state %d after a good probe", bad.state.Load())
	}
	fail(bad)
	if bad.Ejected() {
		t.Fatal("a closed breaker needs the full threshold again")
	}
}

func TestFailureAccrualNeverEjectsTheLast(t *testing.T) {
	t.Parallel()
	b, _ := newTest(t, Config{FailureThreshold: 2}, 2)
	for i := 0; i < 20; i++ {
		for _, t := range b.Endpoints() {
			l := t.Load
			l.End(l.Begin(), true)
		}
	}
	if b.Ready() != 1 {
		t.Fatalf("ready %d, want exactly 1 (one ejected, never both)", b.Ready())
	}
	// Removing the ready one readmits the ejected one rather than leaving none.
	var ready netip.AddrPort
	for _, t := range b.Endpoints() {
		if !t.Load.(*Endpoint).Ejected() {
			ready = t.Addr
		}
	}
	b.Remove(ready)
	if _, ok := b.Pick(); !ok || b.Ready() != 1 {
		t.Fatalf("after removing the only ready endpoint: ready %d", b.Ready())
	}
}

func TestMetadataUpdateKeepsLoad(t *testing.T) {
	t.Parallel()
	b, _ := newTest(t, Config{}, 1)
	e := b.PickEndpoint()
	tok := e.Begin()
	upd := ep(1)
	upd.Identity = "spiffe://cluster.local/ns/a/sa/b"
	b.Add(upd)
	if b.PickEndpoint() != e || e.Pending() != 1 || e.Target().Identity != upd.Identity {
		t.Fatal("metadata update should keep the endpoint object and its pending count")
	}
	e.End(tok, false)
	if e.Target().Load != target.Load(e) {
		t.Fatal("Target().Load must be the endpoint")
	}
}

func BenchmarkPick100(b *testing.B) {
	bal := New(Config{})
	for i := 0; i < 100; i++ {
		bal.Add(target.Endpoint{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 65, byte(i)}), 80)})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, _ := bal.Pick()
			t.Load.End(t.Load.Begin(), false)
		}
	})
}

// TestNewEndpointNotStarvedByConnectionSetup: a replica added under load whose
// first request also paid for opening the connection (200 ms here) still gets
// its share right away; a replica that is really slow is still avoided.
func TestNewEndpointNotStarvedByConnectionSetup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		steadyRTT time.Duration // of the new endpoint after its first request
		min, max  int           // its picks out of the next 3000
	}{
		{"as fast as its peers", 10 * time.Millisecond, 600, 1400},
		{"really slow", 60 * time.Millisecond, 0, 450},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, c := newTest(t, Config{}, 2)
			simulate(b, c, 2000, time.Millisecond, func(netip.AddrPort) time.Duration { return 10 * time.Millisecond })
			b.Add(ep(9))
			first := true
			picks := simulate(b, c, 3000, time.Millisecond, func(a netip.AddrPort) time.Duration {
				if a != ep(9).Addr {
					return 10 * time.Millisecond
				}
				if first {
					first = false
					return 200 * time.Millisecond // connect + TLS + first response
				}
				return tc.steadyRTT
			})
			if got := picks[ep(9).Addr]; got < tc.min || got > tc.max {
				t.Errorf("new endpoint got %d of 3000 picks, want %d..%d", got, tc.min, tc.max)
			}
		})
	}
}
