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

// Profiles is the one routing call of an HTTP request with a destination
// profile: the target's profile (routes, response classes, timeouts,
// retries; nil when there is none) and the first attempt's endpoint, from
// one destination lookup. Retries ask the Router. destclient.Client
// implements it.
type Profiles interface {
	RouteProfile(ctx context.Context, authority string, orig netip.AddrPort) (*profile.Profile, Endpoint, error)
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
