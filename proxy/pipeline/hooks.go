package pipeline

import (
	"time"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
)

// Hooks are features that plug into every request. A nil hook is off and
// costs one nil check.

// Headers is read-only access to a request's or response's header fields
// (or a response's trailers), supplied by the protocol adapter. Range calls
// f for each field until f returns false. The strings may alias the
// adapter's buffers: a hook copies what it keeps.
type Headers interface {
	Range(f func(name, value string) bool)
}

// Tap is the live traffic inspection hook (package tap's Hub). Active is
// asked once per request: with no tap running it is the request's whole
// cost (one atomic load). Begin is called only when Active said yes.
type Tap interface {
	Active() bool
	// Begin offers a request head; it returns nil when no tap takes the
	// exchange. r and what it points to are valid during the call only.
	Begin(r *TapRequest) TapExchange
}

// TapExchange receives the rest of a tapped exchange, in order: at most
// one Response, then exactly one End.
type TapExchange interface {
	Response(status int, hdr Headers, ttfb time.Duration)
	End(e *TapEnd)
}

// TapRequest is a request head as the pipeline reports it.
type TapRequest struct {
	// Rec carries the direction, the method, the path (without query) and
	// the peer: identities, tls, the target address and the destination's
	// dst_* labels (those of the metrics).
	Rec               *record.HTTP
	Scheme, Authority string
	// Source is the client's ip:port as the proxy's listener saw it.
	Source  string
	Headers Headers
}

// TapEnd is the end of a tapped exchange.
type TapEnd struct {
	// GRPCStatus is the grpc-status (from the trailers or a trailers-only
	// response); -1 for non-gRPC exchanges.
	GRPCStatus int
	// Bytes is the response body length sent to the client.
	Bytes    int64
	Duration time.Duration
	// Failed says the proxy failed the exchange; Kind is why.
	Failed bool
	Kind   proxyerr.Kind
	// Reset is set when the exchange ended abruptly: a stream reset or a
	// connection closed before the response was complete.
	Reset bool
}

// Tapping is one request's tap state, kept by the adapter with the request
// and driven through the Pipeline's TapBegin and the methods below; the
// zero value is "not tapped", on which every method does nothing. The
// emission rules live here once for both protocols: a Response only after
// a request, an End only after a request and never twice, the time to
// first byte and the duration measured from the request's start.
type Tapping struct {
	x         TapExchange
	start     time.Time
	responded bool
}

// TapOn reports whether a tap may want this request: one nil check and
// the hook's Active (one atomic load). Adapters ask it once per request,
// before preparing anything TapBegin needs.
func (p *Pipeline) TapOn() bool { return p.Tap != nil && p.Tap.Active() }

// TapBegin offers the request to the Tap hook once it is routed (or failed
// routing): rec's direction, method, path and peer are final. Call it only
// when TapOn said yes; t is reset first.
func (p *Pipeline) TapBegin(t *Tapping, rec *record.HTTP, scheme, authority, source string, hdr Headers, start time.Time) {
	*t = Tapping{}
	if p.Tap == nil {
		return
	}
	r := TapRequest{Rec: rec, Scheme: scheme, Authority: authority, Source: source, Headers: hdr}
	if x := p.Tap.Begin(&r); x != nil {
		*t = Tapping{x: x, start: start}
	}
}

// Tapped reports whether the request is tapped: adapters prepare what only
// a tap needs (header views, byte counts) only then.
func (t *Tapping) Tapped() bool { return t.x != nil }

// Response reports the response head sent to the client (the upstream's
// or the proxy's own error answer); a second call is ignored.
func (t *Tapping) Response(status int, hdr Headers) {
	if t.x == nil || t.responded {
		return
	}
	t.responded = true
	t.x.Response(status, hdr, time.Since(t.start))
}

// End reports the end of the exchange from its record (gRPC status, proxy
// error) with the response body length and whether it ended abruptly, and
// forgets the exchange.
func (t *Tapping) End(rec *record.HTTP, bytes int64, reset bool) {
	if t.x == nil {
		return
	}
	e := TapEnd{GRPCStatus: rec.GRPCStatus, Bytes: bytes, Duration: time.Since(t.start), Reset: reset}
	if rec.Err != nil {
		e.Failed, e.Kind = true, rec.ErrKind
	}
	x := t.x
	*t = Tapping{}
	x.End(&e)
}
