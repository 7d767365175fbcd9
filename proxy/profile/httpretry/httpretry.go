// Package httpretry runs one HTTP request through a route profile for
// layers built on net/http's RoundTripper (HTTP/2 via golang.org/x/net/http2):
// the route timeout around every attempt, a fresh endpoint per attempt,
// the balancer's load handle, response classification, and retries with
// the replay buffer, budget and back-off of package profile. The HTTP/1
// (fasthttp) layer follows the same sequence with the same decisions (see
// docs/proxy-balancing.md).
package httpretry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

// Resolver picks an endpoint per attempt (destclient.Client implements it).
type Resolver interface {
	ResolveContext(ctx context.Context, authority string, orig netip.AddrPort) (target.Endpoint, error)
}

// Sender sends one attempt to ep and returns the response head; errors are
// *proxyerr.Error where the sender knows the kind (Connect for a refused
// dial). The request's body is the attempt's replay reader.
type Sender func(ctx context.Context, ep *target.Endpoint, req *http.Request) (*http.Response, error)

// Executor runs requests. Resolve and Send are required.
type Executor struct {
	Resolve Resolver
	Send    Sender
}

// Result describes a request run by Do.
type Result struct {
	// Route is the matched route's name ("" when none).
	Route string
	// Endpoint is the endpoint of the last attempt (zero when none was
	// picked).
	Endpoint target.Endpoint
	// Attempts counts attempts sent (1 + retries), 0 when none was.
	Attempts int
	// Retries counts retries (record.HTTP.Retries).
	Retries int
	// Failures counts attempts classified as failures, the last included;
	// route_actual_* metrics count every attempt.
	Failures int
}

// Do sends req (a server request whose Host is the authority) to its
// target. The route timeout bounds every attempt and back-off together; on
// expiry Do fails with a proxyerr Timeout (504). The returned response's
// body must be closed; closing it ends the route timeout. The body of req
// is buffered for replay only when a retry is possible, up to
// profile.MaxReplayBody.
func (x *Executor) Do(req *http.Request, orig netip.AddrPort, p *profile.Profile) (*http.Response, Result, error) {
	route := p.Match(req.Method, req.URL.Path)
	res := Result{Route: route.RouteName()}
	ctx := req.Context()
	cancel := context.CancelFunc(func() {})
	var deadline time.Time
	if t := route.RouteTimeout(); t > 0 {
		deadline = time.Now().Add(t)
		ctx, cancel = context.WithDeadline(ctx, deadline)
	}
	retry := p.Begin(route, req.Method)

	var replay *profile.Replay
	hasBody := req.Body != nil && req.Body != http.NoBody
	if hasBody && retry.MayRetry() && req.ContentLength <= profile.MaxReplayBody {
		replay = profile.NewReplay(req.Body)
	}
	done := func() {
		cancel()
		if replay != nil {
			replay.Release()
		}
	}
	for {
		ep, err := x.Resolve.ResolveContext(ctx, req.Host, orig)
		if err != nil {
			done()
			return nil, res, timeoutKind(ctx, err)
		}
		res.Endpoint = ep
		out := req.WithContext(ctx)
		if replay != nil {
			out.Body = replay.Body()
		}
		res.Attempts++
		var tok int64
		if ep.Load != nil {
			tok = ep.Load.Begin()
		}
		resp, err := x.Send(ctx, &ep, out)
		failed := err != nil
		if err == nil {
			failed = route.Failed(resp.StatusCode, headerGRPCStatus(resp.Header), false)
		}
		if ep.Load != nil {
			ep.Load.End(tok, failed)
		}
		if !failed {
			resp.Body = &body{ReadCloser: resp.Body, done: done}
			return resp, res, nil
		}
		res.Failures++
		err = timeoutKind(ctx, err)
		replayable := !hasBody || (replay != nil && replay.Replayable())
		var remaining time.Duration
		if !deadline.IsZero() {
			if remaining = time.Until(deadline); remaining <= 0 {
				remaining = time.Nanosecond
			}
		}
		wait, again := retry.Next(profile.Outcome{Failed: true, Err: err, Replayable: replayable, Remaining: remaining})
		if again && replay != nil {
			again = replay.Rewind()
		}
		if !again {
			if err != nil {
				done()
				return nil, res, err
			}
			resp.Body = &body{ReadCloser: resp.Body, done: done}
			return resp, res, nil
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
		}
		res.Retries = retry.Retries()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			done()
			return nil, res, timeoutKind(ctx, ctx.Err())
		}
	}
}

// timeoutKind reports an error after the route deadline as a Timeout.
func timeoutKind(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		var pe *proxyerr.Error
		if !errors.As(err, &pe) || pe.Kind != proxyerr.Timeout {
			return proxyerr.New(proxyerr.Timeout, err)
		}
	}
	return err
}

// headerGRPCStatus is a trailers-only response's grpc-status; -1 otherwise.
func headerGRPCStatus(h http.Header) int {
	v := h.Get("Grpc-Status")
	if v == "" {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// body ends the request's timeout and replay buffer when closed.
type body struct {
	io.ReadCloser
	done   func()
	closed bool
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	if !b.closed {
		b.closed = true
		b.done()
	}
	return err
}
