// Package pipeline is the protocol-independent part of forwarding one HTTP
// request, shared by the HTTP/1 (fasthttp) and HTTP/2 (x/net/http2)
// adapters: route match and route timeout (Begin), then per attempt the
// balancer's load handle (Begin before sending, End at the response head or
// the failure), classification, the rt_route attempt record, and retries
// with the replay buffer, budget and back-off of package profile, a fresh
// endpoint per retry (Run), and the final rt_route record (ObserveRoute).
// The sequence is the one docs/proxy-balancing.md describes.
//
// An adapter supplies an Exchange: "send one attempt to this endpoint",
// whether the client went away, and access to the request body for
// replay. Everything that decides (retry or not, failed or not, the
// endpoint's failure or the client's) lives here, once.
//
// Decisions that differ from the adapters' former copies, on purpose:
//   - a client that goes away is never the endpoint's failure (Load.End
//     gets failed=false), so failure accrual cannot eject a healthy
//     endpoint because clients cancel;
//   - the back-off before a retry ends early when the client goes away or
//     the route deadline passes, for both protocols;
//   - a cancelled request is recorded the same way for both protocols:
//     status 499, kind proxyerr.Canceled.
//
// Hooks for features that plug in per request (Tap, Policy) are declared in
// hooks.go; nil means off and costs one nil check.
package pipeline

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// ErrCanceled is the cause recorded when the client went away.
var ErrCanceled = errors.New("client went away")

// Exchange is one request as a protocol adapter sees it.
type Exchange interface {
	// Send sends one attempt to ep and waits for the response head. It
	// returns the response's status and gRPC status (-1 when none is in
	// the head), or an error, a *proxyerr.Error where the kind is known.
	// deadline (zero: none) bounds the wait for the response head.
	Send(ep *target.Endpoint, deadline time.Time) (status, grpcStatus int, err error)
	// Discard releases a failed attempt's response before a retry.
	Discard()
	// Canceled reports whether the client went away.
	Canceled() bool
	// Done is closed when the client goes away; nil when the adapter
	// cannot tell (Canceled is still asked after a wait).
	Done() <-chan struct{}
	// Replayable reports whether the request (its body) may be sent again.
	Replayable() bool
	// Rewind prepares the body for the next attempt; false when it cannot.
	Rewind() bool
	// Unread reports whether no byte of the request body was read by an
	// attempt yet (true without a body): the request can go to another
	// endpoint after a connect failure even when it is not Replayable.
	Unread() bool
	// Routed records the endpoint a retry was sent to.
	Routed(ep *target.Endpoint)
}

// Pipeline holds what is shared by every request of one proxy.
type Pipeline struct {
	// Router picks the endpoint of every retry. Required for retries.
	Router target.Router
	// Routes receives the rt_route records; nil records none.
	Routes target.RouteObserver
	// Tap receives the tapped exchanges (hooks.go); nil taps nothing.
	Tap Tap
}

// Request is one request's routing state, from Begin.
type Request struct {
	Rec   *record.HTTP
	Route *profile.Route // nil: no route matched
	Retry profile.Retry
	// Deadline is the route timeout (or the response timeout, whichever
	// ends first); zero when none.
	Deadline time.Time
	// Ctx, Authority and Orig are passed to the Router for a retry.
	Ctx       context.Context
	Authority string
	Orig      netip.AddrPort
}

// Route is the one routing call of a request: profiles (nil: none) gives
// the profile and the endpoint in one lookup, else router the endpoint.
func Route(ctx context.Context, router target.Router, profiles target.Profiles, authority string, orig netip.AddrPort) (*profile.Profile, target.Endpoint, error) {
	if profiles != nil {
		return profiles.RouteProfile(ctx, authority, orig)
	}
	ep, err := router.Route(ctx, authority, orig)
	return nil, ep, err
}

// Begin matches rec's method and path against prof (nil: no profile),
// starts the retry state and computes the deadline: the route timeout, or
// headerTimeout (0: none) when it ends first. rec.Route is set.
func Begin(prof *profile.Profile, rec *record.HTTP, start time.Time, headerTimeout time.Duration) Request {
	route := prof.Match(rec.Method, rec.Path)
	rec.Route = route.RouteName()
	r := Request{Rec: rec, Route: route, Retry: prof.Begin(route, rec.Method)}
	if t := route.RouteTimeout(); t > 0 {
		r.Deadline = start.Add(t)
	}
	if headerTimeout > 0 {
		if d := start.Add(headerTimeout); r.Deadline.IsZero() || d.Before(r.Deadline) {
			r.Deadline = d
		}
	}
	return r
}

// Run sends r through x to ep and retries as the profile allows. It
// returns nil when a response head is ready to forward (it may be a failed
// response that could not be retried), an error of kind proxyerr.Canceled
// when the client went away, and otherwise the error to answer with.
// rec.Retries is set in every case.
func (p *Pipeline) Run(x Exchange, r *Request, ep target.Endpoint) error {
	rec := r.Rec
	for {
		var tok int64
		if ep.Load != nil {
			tok = ep.Load.Begin()
		}
		status, gs, err := x.Send(&ep, r.Deadline)
		canceled := err != nil && x.Canceled()
		failed := err != nil
		if err == nil {
			failed = r.Route.Failed(status, gs, false)
		} else if !canceled {
			err = r.timeout(err)
		}
		if ep.Load != nil {
			// A client that went away is not the endpoint's failure.
			ep.Load.End(tok, failed && !canceled)
		}
		if canceled {
			rec.Retries = r.Retry.Retries()
			return proxyerr.New(proxyerr.Canceled, ErrCanceled)
		}
		if p.connectRetry(x, r, &ep, err) {
			continue
		}
		if rec.Route != "" {
			p.observeAttempt(rec, status, err, failed)
		}
		if !failed {
			rec.Retries = r.Retry.Retries()
			return nil
		}
		wait, again := r.Retry.Next(profile.Outcome{Failed: true, Err: err,
			Replayable: x.Replayable(), Remaining: r.remaining()})
		if again {
			again = x.Rewind()
		}
		if !again {
			rec.Retries = r.Retry.Retries()
			return err // nil: answer with this (failed) response
		}
		x.Discard()
		if werr := r.wait(x, wait); werr != nil {
			rec.Retries = r.Retry.Retries()
			return werr
		}
		next, rerr := p.Router.Route(r.Ctx, r.Authority, r.Orig)
		if rerr != nil {
			rec.Retries = r.Retry.Retries()
			return r.timeout(rerr)
		}
		ep = next
		x.Routed(&ep)
	}
}

// MaxConnectRetries bounds the connect retries of one request.
const MaxConnectRetries = 3

// connectRetry sends a request whose connection failed before any byte of
// it was written (refused, reset or failed handshake on connect: kind
// proxyerr.Connect) to another endpoint of the balancer, whatever its
// method: the endpoint never saw it. No back-off, no budget; bounded by
// MaxConnectRetries and the deadline, counted in rec.ConnectRetries. It
// reports whether ep now holds the next attempt's endpoint.
func (p *Pipeline) connectRetry(x Exchange, r *Request, ep *target.Endpoint, err error) bool {
	if err == nil || ep.Load == nil || p.Router == nil || r.Rec.ConnectRetries >= MaxConnectRetries ||
		proxyerr.KindOf(err) != proxyerr.Connect || r.remaining() == time.Nanosecond {
		return false
	}
	if !x.Unread() && !x.Replayable() || !x.Rewind() {
		return false
	}
	next, rerr := p.Router.Route(r.Ctx, r.Authority, r.Orig)
	if rerr != nil {
		return false
	}
	r.Rec.ConnectRetries++
	*ep = next
	x.Routed(ep)
	return true
}

// remaining is the time left before the deadline; 0 means no deadline, a
// passed deadline gives 1ns (so Next refuses every wait).
func (r *Request) remaining() time.Duration {
	if r.Deadline.IsZero() {
		return 0
	}
	if d := time.Until(r.Deadline); d > 0 {
		return d
	}
	return time.Nanosecond
}

// timeout reports an error after the deadline as a Timeout.
func (r *Request) timeout(err error) error {
	if err == nil || r.Deadline.IsZero() || time.Now().Before(r.Deadline) {
		return err
	}
	var pe *proxyerr.Error
	if errors.As(err, &pe) && pe.Kind == proxyerr.Timeout {
		return err
	}
	return proxyerr.New(proxyerr.Timeout, err)
}

// wait sleeps the back-off d; it ends early, with the error to answer,
// when the client goes away or the deadline passes.
func (r *Request) wait(x Exchange, d time.Duration) error {
	var dl <-chan time.Time
	if !r.Deadline.IsZero() {
		t := time.NewTimer(time.Until(r.Deadline))
		defer t.Stop()
		dl = t.C
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-x.Done():
	case <-dl:
		return proxyerr.New(proxyerr.Timeout, context.DeadlineExceeded)
	}
	if x.Canceled() {
		return proxyerr.New(proxyerr.Canceled, ErrCanceled)
	}
	return nil
}

// observeAttempt records one attempt of a routed request; status is the
// attempt's response status, or the error kind's HTTP status.
func (p *Pipeline) observeAttempt(rec *record.HTTP, status int, err error, failed bool) {
	if p.Routes == nil {
		return
	}
	if err != nil {
		status = proxyerr.KindOf(err).HTTPStatus()
	}
	saved := rec.StatusCode
	rec.StatusCode = status
	p.Routes.ObserveRouteAttempt(rec, failed)
	rec.StatusCode = saved
}

// ObserveRoute records the rt_route record of a finished request: failed
// when it ended with a proxy error or its response is classified failed.
func (p *Pipeline) ObserveRoute(r *Request) {
	rec := r.Rec
	if rec == nil || rec.Route == "" || p.Routes == nil {
		return
	}
	p.Routes.ObserveRoute(rec, rec.Err != nil || r.Route.Failed(rec.StatusCode, rec.GRPCStatus, false))
}

// Fail records err on rec the same way for every protocol: kind, status
// (proxyerr's table; 499 for a cancelled request), latency.
func Fail(rec *record.HTTP, err error, start time.Time) proxyerr.Kind {
	k := proxyerr.KindOf(err)
	rec.Err, rec.ErrKind = err, k
	rec.StatusCode = k.HTTPStatus()
	rec.Latency = time.Since(start)
	return k
}
