package balance

import (
	"sync"
	"sync/atomic"

	"github.com/weftmesh/weft/proxy/target"
)

// Breaker states of an endpoint.
const (
	stateReady     uint32 = iota // receives traffic
	stateEjected                 // failure accrual took it out until its back-off ends
	stateProbation               // readmitted after a back-off: the next result decides
)

// Endpoint is one balanced endpoint and its load handle (target.Load): the
// protocol layers call Begin when a request is sent and End at its first
// response byte or failure. It stays valid after the endpoint is removed, so
// in-flight requests finish normally.
type Endpoint struct {
	b   *Balancer
	tgt atomic.Pointer[target.Endpoint] // Load points back at this Endpoint

	pending atomic.Int64

	mu    sync.Mutex
	est   float64 // RTT estimate, ns
	stamp int64   // when est was last updated

	// sampled is set once a request has ended here, firstAnswer (stored
	// first) is when; requests sent before it may have waited for the
	// connection (see Balancer.firstSample). Atomics keep End to one lock.
	sampled     atomic.Bool
	firstAnswer atomic.Int64

	failures atomic.Int32  // consecutive failures
	state    atomic.Uint32 // stateReady, stateEjected, stateProbation
	removed  atomic.Bool

	// Guarded by b.mu.
	until   int64 // end of the current ejection
	backoff int64 // duration of the last ejection, ns; 0 after a success
}

// Target is the endpoint as protocol layers see it, with Load set.
func (e *Endpoint) Target() target.Endpoint { return *e.tgt.Load() }

// Pending is the number of requests sent and not yet ended.
func (e *Endpoint) Pending() int64 { return e.pending.Load() }

// Begin implements target.Load.
func (e *Endpoint) Begin() int64 {
	e.pending.Add(1)
	return e.b.cfg.Clock()
}

// End implements target.Load: it records the RTT sample (raised to the
// failure penalty for a failure), ends the pending request and feeds failure
// accrual.
func (e *Endpoint) End(token int64, failed bool) {
	now := e.b.cfg.Clock()
	e.pending.Add(-1)
	rtt := float64(now - token)
	switch {
	case failed && e.b.penalty > rtt:
		rtt = e.b.penalty
	case !failed && e.beganConnecting(token):
		rtt = e.b.firstSample(e, rtt)
	}
	e.observe(rtt, now)
	e.b.accrue(e, failed, now)
}

// beganConnecting reports whether a request that began at token was sent
// before this endpoint had ever answered: it may have waited for the
// connection to be set up.
func (e *Endpoint) beganConnecting(token int64) bool {
	return !e.sampled.Load() || token < e.firstAnswer.Load()
}

// sampledEstimate is the estimate and whether any request has ended here.
func (e *Endpoint) sampledEstimate() (float64, bool) {
	if !e.sampled.Load() {
		return 0, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.est, true
}

func (e *Endpoint) observe(rtt float64, now int64) {
	e.mu.Lock()
	e.est = peakEWMA(e.est, e.stamp, now, rtt, e.b.tau)
	e.stamp = now
	if !e.sampled.Load() {
		e.firstAnswer.Store(now)
		e.sampled.Store(true)
	}
	e.mu.Unlock()
}

// cost is estimate × (pending + 1), the estimate first decayed to now. An
// idle endpoint that has never answered costs nothing, so an added endpoint
// receives a request at once even when the others' estimates have decayed
// below the default RTT; once it has a request pending it costs the default
// RTT × (pending + 1) until its first sample.
func (e *Endpoint) cost(now int64) float64 {
	pending := e.pending.Load()
	e.mu.Lock()
	if !e.sampled.Load() && pending == 0 {
		e.mu.Unlock()
		return 0
	}
	e.est = peakEWMA(e.est, e.stamp, now, 0, e.b.tau)
	e.stamp = now
	est := e.est
	e.mu.Unlock()
	return est * float64(pending+1)
}

// Estimate is the current RTT estimate in nanoseconds (not decayed to now).
func (e *Endpoint) Estimate() float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.est
}

// Ejected reports whether failure accrual has taken the endpoint out.
func (e *Endpoint) Ejected() bool { return e.state.Load() == stateEjected }
