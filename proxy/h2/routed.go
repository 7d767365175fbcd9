package h2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"

	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
)

// Profiles looks up the destination profile of a request (routes, response
// classes, timeouts, retries); destclient.Client implements it.
type Profiles interface {
	// Profile returns the profile of authority/orig; nil when there is none.
	Profile(ctx context.Context, authority string, orig netip.AddrPort) *profile.Profile
}

// RouteObserver records the rt_route metrics: once per request with a
// matched route (after retries, with the final gRPC status), and once per
// attempt. failed is the route's classification. It must not retain the
// record. An Observer that also implements it gets the route records.
type RouteObserver interface {
	ObserveRoute(h *record.HTTP, failed bool)
	ObserveRouteAttempt(h *record.HTTP, failed bool)
}

// eofReader remembers that the request body was read to its end, so that
// a request whose body (a gRPC client stream) was still open when an
// attempt failed is never retried.
type eofReader struct {
	r   io.Reader
	eof atomic.Bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.eof.Store(true)
	}
	return n, err
}

// timeoutKind reports an error after the route deadline as a Timeout.
func timeoutKind(actx context.Context, err error) error {
	if err == nil || !errors.Is(actx.Err(), context.DeadlineExceeded) {
		return err
	}
	var pe *proxyerr.Error
	if errors.As(err, &pe) && pe.Kind == proxyerr.Timeout {
		return err
	}
	return proxyerr.New(proxyerr.Timeout, err)
}

// observeAttempt records one attempt of a routed request; status is the
// attempt's response status, or the error kind's HTTP status.
func (p *Proxy) observeAttempt(rec *record.HTTP, status int, err error, failed bool) {
	if p.routeObs == nil {
		return
	}
	if err != nil {
		status = proxyerr.KindOf(err).HTTPStatus()
	}
	saved := rec.StatusCode
	rec.StatusCode = status
	p.routeObs.ObserveRouteAttempt(rec, failed)
	rec.StatusCode = saved
}

// timeoutTrailers ends a gRPC response whose headers were already sent when
// the route timeout expired: DEADLINE_EXCEEDED in the trailers, with the
// weft-proxy-error field.
func timeoutTrailers(hdr http.Header, err error) int {
	code := int(proxyerr.Timeout.GRPCCode())
	hdr[http.TrailerPrefix+"Grpc-Status"] = []string{strconv.Itoa(code)}
	hdr[http.TrailerPrefix+"Grpc-Message"] = []string{grpcEncodeMessage("weft-proxy: " + err.Error())}
	hdr[http.TrailerPrefix+proxyerr.Header] = []string{proxyerr.Timeout.String()}
	return code
}

// drain discards a little of a failed attempt's response body (so a short
// error body does not reset the upstream stream) and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}
