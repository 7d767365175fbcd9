package tap

import (
	"sync"
	"sync/atomic"
	"time"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
)

// Tap is one running observation: a compiled filter, a rate limit, a request
// limit and a bounded event queue. Create with Hub.Open, read Events, and
// call Close when done.
type Tap struct {
	hub    *Hub
	filter filter
	events chan *tapv1.Event
	done   chan struct{} // closed when the limit was reached and nothing is in flight
	lost   atomic.Uint64 // events dropped since the last Lost event was taken

	mu        sync.Mutex
	bucket    bucket
	remaining int64 // requests still to admit; -1 means no limit
	inflight  int64
	closed    bool
	doneOnce  sync.Once
}

// Open starts a tap for req. It fails with ErrTooManyTaps when the hub's cap
// is reached, or with an error naming a bad filter field.
func (h *Hub) Open(req *tapv1.ObserveRequest) (*Tap, error) {
	f, err := compileFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	rps := int(req.GetMaxRps())
	if rps <= 0 {
		rps = h.cfg.DefaultRPS
	}
	rps = min(rps, h.cfg.MaxRPS)
	t := &Tap{
		hub: h, filter: f,
		events:    make(chan *tapv1.Event, h.cfg.Buffer),
		done:      make(chan struct{}),
		bucket:    newBucket(rps, h.cfg.Now),
		remaining: -1,
	}
	if l := req.GetLimit(); l > 0 {
		t.remaining = int64(l)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := *h.taps.Load()
	if len(cur) >= h.cfg.MaxTaps {
		h.stats.rejected.Add(1)
		return nil, ErrTooManyTaps
	}
	next := append(append(make([]*Tap, 0, len(cur)+1), cur...), t)
	h.taps.Store(&next)
	h.active.Store(int32(len(next)))
	h.stats.opened.Add(1)
	return t, nil
}

// Close removes the tap from the hub; events still in flight are discarded.
func (t *Tap) Close() {
	h := t.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	t.mu.Unlock()
	cur := *h.taps.Load()
	next := make([]*Tap, 0, len(cur))
	for _, o := range cur {
		if o != t {
			next = append(next, o)
		}
	}
	h.taps.Store(&next)
	h.active.Store(int32(len(next)))
}

// Events delivers the tap's events in order.
func (t *Tap) Events() <-chan *tapv1.Event { return t.events }

// Done is closed once the request limit was reached and every admitted
// exchange ended; the events of those exchanges are queued by then.
func (t *Tap) Done() <-chan struct{} { return t.done }

// TakeLost returns and resets the number of events lost since the last call.
func (t *Tap) TakeLost() uint64 { return t.lost.Swap(0) }

// eventsPerExchange is what admitting an exchange reserves from the rate
// limit (request, response, end), so admitted exchanges arrive whole.
const eventsPerExchange = 3

// admit decides whether the tap takes a new exchange: within the request
// limit and the event rate. Refusals by rate are counted as lost events.
func (t *Tap) admit() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.remaining == 0 {
		return false
	}
	if !t.bucket.take(eventsPerExchange) {
		t.lost.Add(eventsPerExchange)
		t.hub.stats.limited.Add(1)
		return false
	}
	if t.remaining > 0 {
		t.remaining--
	}
	t.inflight++
	return true
}

func (t *Tap) exchangeDone() {
	t.mu.Lock()
	t.inflight--
	finished := t.remaining == 0 && t.inflight == 0
	t.mu.Unlock()
	if finished {
		t.doneOnce.Do(func() { close(t.done) })
	}
}

// deliver queues ev without blocking; a full queue loses it.
func (t *Tap) deliver(ev *tapv1.Event) bool {
	select {
	case t.events <- ev:
		return true
	default:
		t.lost.Add(1)
		return false
	}
}

// bucket is a token bucket refilled at rate tokens per second, holding at
// most one second's worth. Guarded by Tap.mu.
type bucket struct {
	rate   float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(rps int, now func() time.Time) bucket {
	return bucket{rate: float64(rps), tokens: float64(rps), last: now(), now: now}
}

func (b *bucket) take(n float64) bool {
	now := b.now()
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.rate, b.tokens+el*b.rate)
		b.last = now
	}
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}
