package balance

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/weftmesh/weft/proxy/target"
)

// Balancer holds one target's endpoints and picks among them. It is safe for
// concurrent use; Pick does not allocate.
type Balancer struct {
	cfg     Config
	tau     float64 // ns
	penalty float64 // ns; 0 disables

	ready     atomic.Pointer[[]*Endpoint] // immutable snapshot of the pickable endpoints
	nextProbe atomic.Int64                // earliest ejection end; MaxInt64 when none

	mu  sync.Mutex
	all map[netip.AddrPort]*Endpoint
}

// New returns an empty Balancer.
func New(cfg Config) *Balancer {
	cfg = cfg.withDefaults()
	b := &Balancer{cfg: cfg, tau: float64(cfg.Decay), all: map[netip.AddrPort]*Endpoint{}}
	if cfg.FailurePenalty > 0 {
		b.penalty = float64(cfg.FailurePenalty)
	}
	b.ready.Store(&[]*Endpoint{})
	b.nextProbe.Store(math.MaxInt64)
	return b
}

// Pick returns a ready endpoint by power-of-two-choices over peak-EWMA cost;
// false when the balancer has no endpoints.
func (b *Balancer) Pick() (target.Endpoint, bool) {
	e := b.PickEndpoint()
	if e == nil {
		return target.Endpoint{}, false
	}
	return *e.tgt.Load(), true
}

// PickEndpoint is Pick returning the balancer's Endpoint; nil when empty.
func (b *Balancer) PickEndpoint() *Endpoint {
	now := b.cfg.Clock()
	if now >= b.nextProbe.Load() {
		b.readmit(now)
	}
	rs := *b.ready.Load()
	switch len(rs) {
	case 0:
		return nil
	case 1:
		return rs[0]
	}
	i := rand.IntN(len(rs))
	j := rand.IntN(len(rs) - 1)
	if j >= i {
		j++
	}
	a, c := rs[i], rs[j]
	if c.cost(now) < a.cost(now) {
		return c
	}
	return a
}

// Len is the number of endpoints (ready or ejected).
func (b *Balancer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.all)
}

// Ready is the number of endpoints picks choose from.
func (b *Balancer) Ready() int { return len(*b.ready.Load()) }

// Endpoint returns the balancer's endpoint for addr, nil if absent.
func (b *Balancer) Endpoint(addr netip.AddrPort) *Endpoint {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.all[addr]
}

// Add adds endpoints, or replaces the metadata of present ones (their load
// state is kept). Added endpoints are pickable at once.
func (b *Balancer) Add(eps ...target.Endpoint) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range eps {
		b.addLocked(t)
	}
	b.rebuildLocked()
}

// Remove removes endpoints by address. A removed endpoint receives no new
// requests; its in-flight requests end normally.
func (b *Balancer) Remove(addrs ...netip.AddrPort) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range addrs {
		if e := b.all[a]; e != nil {
			e.removed.Store(true)
			delete(b.all, a)
		}
	}
	b.rebuildLocked()
}

// Replace makes eps the whole set: absent addresses are removed, present
// ones keep their load state.
func (b *Balancer) Replace(eps []target.Endpoint) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := make(map[netip.AddrPort]bool, len(eps))
	for _, t := range eps {
		keep[t.Addr] = true
		b.addLocked(t)
	}
	for a, e := range b.all {
		if !keep[a] {
			e.removed.Store(true)
			delete(b.all, a)
		}
	}
	b.rebuildLocked()
}

// Endpoints returns the current endpoints (ready and ejected), unordered.
func (b *Balancer) Endpoints() []target.Endpoint {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]target.Endpoint, 0, len(b.all))
	for _, e := range b.all {
		out = append(out, *e.tgt.Load())
	}
	return out
}

func (b *Balancer) addLocked(t target.Endpoint) {
	e := b.all[t.Addr]
	if e == nil {
		e = &Endpoint{b: b, est: float64(b.cfg.DefaultRTT), stamp: b.cfg.Clock()}
		b.all[t.Addr] = e
	}
	t.Load = e
	e.tgt.Store(&t) // new metadata for a present endpoint; load state kept
}

// rebuildLocked publishes the ready snapshot. If every endpoint is ejected
// (the ready ones were removed), all are readmitted on probation: the
// balancer never has all endpoints out at once.
func (b *Balancer) rebuildLocked() {
	rs := make([]*Endpoint, 0, len(b.all))
	next := int64(math.MaxInt64)
	for _, e := range b.all {
		if e.state.Load() == stateEjected {
			next = min(next, e.until)
			continue
		}
		rs = append(rs, e)
	}
	if len(rs) == 0 && len(b.all) > 0 {
		for _, e := range b.all {
			e.state.Store(stateProbation)
			e.failures.Store(0)
			rs = append(rs, e)
		}
		next = math.MaxInt64
	}
	b.ready.Store(&rs)
	b.nextProbe.Store(next)
}

// readmit puts endpoints whose ejection ended back on probation.
func (b *Balancer) readmit(now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	changed := false
	for _, e := range b.all {
		if e.state.Load() == stateEjected && e.until <= now {
			e.failures.Store(0)
			e.state.Store(stateProbation)
			changed = true
		}
	}
	if changed {
		b.rebuildLocked()
	}
}

// accrue feeds one result to failure accrual.
func (b *Balancer) accrue(e *Endpoint, failed bool, now int64) {
	if b.cfg.FailureThreshold < 0 {
		return
	}
	if !failed {
		e.failures.Store(0)
		if e.state.Load() == stateProbation {
			b.mu.Lock()
			if e.state.CompareAndSwap(stateProbation, stateReady) {
				e.backoff = 0
			}
			b.mu.Unlock()
		}
		return
	}
	n := e.failures.Add(1)
	st := e.state.Load()
	if st == stateEjected || (st == stateReady && int(n) < b.cfg.FailureThreshold) {
		return
	}
	b.eject(e, now)
}

func (b *Balancer) eject(e *Endpoint, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.removed.Load() || e.state.Load() == stateEjected || b.all[e.tgt.Load().Addr] != e {
		return
	}
	if len(*b.ready.Load()) <= 1 {
		return // never the last one
	}
	d := e.backoff * 2
	if d == 0 {
		d = int64(b.cfg.BackoffMin)
	}
	d = min(d, int64(b.cfg.BackoffMax))
	e.backoff = d
	e.until = now + d + rand.Int64N(d/2+1)
	e.state.Store(stateEjected)
	b.rebuildLocked()
}

// firstSample bounds the RTT sample of a request sent before the endpoint had
// ever answered by the best estimate among its sampled peers. Such requests
// also waited for the connection (TCP, TLS, the HTTP/2 preface), which is not the endpoint's
// latency: Linkerd connects before an endpoint becomes ready, weft's protocol
// layers connect lazily, so the balancer discounts it here. Without this a new
// replica looked as slow as its connection setup and, with the estimate
// decaying over τ = 10 s, got almost no traffic for many seconds. A genuinely
// slow endpoint shows its latency on its second sample, which replaces the
// estimate (peak).
func (b *Balancer) firstSample(self *Endpoint, rtt float64) float64 {
	for _, p := range *b.ready.Load() {
		if p == self {
			continue
		}
		if est, ok := p.sampledEstimate(); ok && est < rtt {
			rtt = est
		}
	}
	return rtt
}
