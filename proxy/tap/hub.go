// Package tap is the proxy side of live traffic inspection: a Hub that the
// request pipeline reports exchanges to, and a gRPC server (api/tap/v1) that
// streams the matching events to the viz tap component over mTLS.
//
// Cost: when no tap runs, the pipeline pays one atomic load (Hub.Active).
// When taps run, every exchange is matched against each tap's filter; events
// are built only for matching taps and delivered without ever blocking the
// request: a tap whose stream cannot keep up, or that exceeds its rate, loses
// events, and the losses are counted (per stream as Lost events, per proxy in
// Stats). Header values on the redaction list are replaced before an event
// is built; bodies are never captured.
package tap

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/record"
)

// HeaderView is a read-only view of request or response headers; strings
// it yields are copied before an event keeps them.
type HeaderView = pipeline.Headers

var _ pipeline.Tap = (*Hub)(nil)

// Defaults of Config's zero fields.
const (
	DefaultMaxTaps = 16
	DefaultRPS     = 100
	DefaultMaxRPS  = 1000
	DefaultBuffer  = 256
)

// ErrTooManyTaps is returned by Open when MaxTaps taps already run.
var ErrTooManyTaps = errors.New("too many concurrent taps")

// Config tunes a Hub. The zero value uses the defaults above.
type Config struct {
	// MaxTaps caps concurrent taps; 0 means DefaultMaxTaps.
	MaxTaps int
	// DefaultRPS is a tap's event rate when it asks for none; 0 means
	// DefaultRPS. MaxRPS caps what a tap may ask for; 0 means DefaultMaxRPS.
	DefaultRPS, MaxRPS int
	// Buffer is the number of events queued per tap before events are
	// dropped; 0 means DefaultBuffer.
	Buffer int
	// RedactHeaders are redacted besides DefaultRedacted (case-insensitive).
	RedactHeaders []string
	// Now is the clock of the rate limiters; nil means time.Now.
	Now func() time.Time
}

// Hub connects the request pipeline to the running taps. The zero value is
// not usable; call NewHub.
type Hub struct {
	cfg    Config
	redact redactor
	active atomic.Int32
	taps   atomic.Pointer[[]*Tap] // copy-on-write, guarded by mu for writers
	mu     sync.Mutex
	ids    atomic.Uint64
	stats  counters
}

// NewHub returns a Hub with cfg's zero fields defaulted.
func NewHub(cfg Config) *Hub {
	if cfg.MaxTaps <= 0 {
		cfg.MaxTaps = DefaultMaxTaps
	}
	if cfg.DefaultRPS <= 0 {
		cfg.DefaultRPS = DefaultRPS
	}
	if cfg.MaxRPS <= 0 {
		cfg.MaxRPS = DefaultMaxRPS
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Hub{cfg: cfg, redact: newRedactor(cfg.RedactHeaders)}
	h.taps.Store(&[]*Tap{})
	return h
}

// Active reports whether any tap runs: one atomic load, the only cost the
// pipeline pays per request when nobody taps.
func (h *Hub) Active() bool { return h.active.Load() != 0 }

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats { return h.stats.snapshot() }

// Begin reports a request after routing (pipeline.Tap). It returns nil
// when no tap wants the exchange. r is read during the call only; every
// string kept in an event is copied (adapters hand in views of their
// buffers).
func (h *Hub) Begin(r *pipeline.TapRequest) pipeline.TapExchange {
	if x := h.begin(r); x != nil {
		return x
	}
	return nil
}

func (h *Hub) begin(r *pipeline.TapRequest) *Exchange {
	if !h.Active() {
		return nil
	}
	rec := r.Rec
	req := requestInfo{dir: rec.Direction, method: rec.Method, authority: r.Authority, path: rec.Path,
		source: r.Source, peer: &rec.Peer}
	var x *Exchange
	for _, t := range *h.taps.Load() {
		if !t.filter.matches(&req) || !t.admit() {
			continue
		}
		if x == nil {
			x = &Exchange{hub: h, id: h.ids.Add(1), base: baseOf(rec.Direction, &rec.Peer, r.Source)}
			x.taps = x.one[:0]
		}
		x.taps = append(x.taps, t)
	}
	if x == nil {
		return nil
	}
	ri := &tapv1.RequestInit{Method: rec.Method, Scheme: r.Scheme, Authority: r.Authority, Path: rec.Path}
	ri.Headers = h.redact.headers(r.Headers, &ri.Method, &ri.Scheme, &ri.Authority, &ri.Path)
	ev := x.event()
	ev.Kind = &tapv1.Event_Request{Request: ri}
	x.send(ev)
	return x
}

// Exchange is one tapped request; its events go to the taps that admitted
// it at Begin.
type Exchange struct {
	hub  *Hub
	id   uint64
	base base
	taps []*Tap
	one  [1]*Tap // taps' storage for the usual single tap
}

// Response reports the response head.
func (x *Exchange) Response(status int, hdr HeaderView, ttfb time.Duration) {
	ev := x.event()
	ev.Kind = &tapv1.Event_Response{Response: &tapv1.ResponseInit{
		Status: int32(status), Headers: x.hub.redact.headers(hdr), LatencyUs: ttfb.Microseconds(),
	}}
	x.send(ev)
}

// End reports the end of the exchange.
func (x *Exchange) End(e *pipeline.TapEnd) {
	end := &tapv1.ResponseEnd{GrpcStatus: int32(e.GRPCStatus), ResponseBytes: e.Bytes,
		DurationUs: e.Duration.Microseconds(), Reset_: e.Reset}
	if e.Failed {
		end.ErrorKind = e.Kind.String()
	}
	ev := x.event()
	ev.Kind = &tapv1.Event_End{End: end}
	x.send(ev)
	for _, t := range x.taps {
		t.exchangeDone()
	}
}

// event returns a fresh event with the exchange's immutable fields.
func (x *Exchange) event() *tapv1.Event {
	b := &x.base
	return &tapv1.Event{Id: x.id, Direction: b.dir, Tls: b.tls, ClientId: b.clientID,
		ServerId: b.serverID, TargetAddr: b.target, SourceAddr: b.source, DestinationLabels: b.labels}
}

func (x *Exchange) send(ev *tapv1.Event) {
	for _, t := range x.taps {
		if !t.deliver(ev) {
			x.hub.stats.dropped.Add(1)
		}
	}
}

// base are the fields every event of an exchange shares. The peer's
// strings are immutable (record.Peer) and the source is not reused, so they
// are kept without copies; the labels map is shared by the events.
type base struct {
	dir, clientID, serverID, target, source string
	tls                                     bool
	labels                                  map[string]string
}

func baseOf(dir record.Direction, p *record.Peer, source string) base {
	b := base{dir: dir.String(), source: source, tls: p.TLS, clientID: p.ClientID, serverID: p.ServerID, target: p.TargetAddr}
	if len(p.Labels) > 0 {
		b.labels = make(map[string]string, len(p.Labels))
		for _, l := range p.Labels {
			b.labels[trimDst(l.Name)] = l.Value
		}
	}
	return b
}

func trimDst(name string) string {
	if len(name) > 4 && name[:4] == "dst_" {
		return name[4:]
	}
	return name
}
