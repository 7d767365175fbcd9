package target

import (
	"context"
	"net"
	"net/netip"

	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/record"
)

// The seams between the protocol layers (HTTP/1, HTTP/2, TCP) and the
// core that wires them (proxy/app): declared once here, next to Endpoint,
// and implemented by the discovery adapter, the dialers and the metrics.

// Router picks the endpoint for one request or connection; errors are
// *proxyerr.Error (NoEndpoints, ...). It is called once per attempt.
type Router interface {
	Route(ctx context.Context, authority string, orig netip.AddrPort) (Endpoint, error)
}

// Dialer opens the connection to an endpoint (plaintext or mTLS).
type Dialer interface {
	Dial(ctx context.Context, ep Endpoint) (net.Conn, error)
}

// Profiles looks up the destination profile of a request (routes, response
// classes, timeouts, retries); nil when there is none. destclient.Client
// implements it.
type Profiles interface {
	Profile(ctx context.Context, authority string, orig netip.AddrPort) *profile.Profile
}

// Observer receives one record per HTTP exchange and must not retain it.
type Observer interface{ ObserveHTTP(*record.HTTP) }

// RouteObserver records the rt_route metrics: once per request with a
// matched route (after retries, with the final gRPC status), and once per
// attempt. failed is the route's classification. It must not retain the
// record. An Observer that also implements it gets the route records.
type RouteObserver interface {
	ObserveRoute(h *record.HTTP, failed bool)
	ObserveRouteAttempt(h *record.HTTP, failed bool)
}
