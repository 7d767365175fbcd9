// Package record holds the facts every protocol layer of the proxy reports
// about a request or a connection. The metrics recorder, tap and logs consume
// them; the layers that produce them (HTTP/1, HTTP/2, TCP) depend only on this
// package, not on any consumer.
//
// Records are passed by pointer and must not be retained by consumers after
// the call returns: producers reuse them to stay allocation-free.
package record

import (
	"time"

	"github.com/weftmesh/weft/proxy/proxyerr"
)

// Direction says which listener a connection arrived on.
type Direction uint8

// Directions. The zero value is Inbound.
const (
	Inbound  Direction = iota // from another pod to the local application (:4143)
	Outbound                  // from the local application to another pod (:4140)
)

// String is the Prometheus label value ("inbound" / "outbound").
func (d Direction) String() string {
	if d == Outbound {
		return "outbound"
	}
	return "inbound"
}

// Label is one metric label of a destination (dst_* labels from discovery).
type Label struct{ Name, Value string }

// Peer describes the other side of a proxied connection or request.
type Peer struct {
	// Authority is the logical target (host:port) a request was addressed to;
	// for inbound and unknown targets it may be the original destination.
	Authority string
	// TargetAddr is the ip:port actually connected to.
	TargetAddr string
	// TLS is true when the hop between proxies was mutually authenticated.
	TLS bool
	// ClientID and ServerID are SPIFFE IDs of the authenticated peers; empty
	// when unknown.
	ClientID, ServerID string
	// Labels are the destination's metric labels (dst_*), shared and immutable;
	// nil when discovery has none.
	Labels []Label
}

// HTTP is one request/response exchange, reported once when it ends.
type HTTP struct {
	Direction Direction
	Peer      Peer
	Method    string
	Path      string // without query; consumers must cap its cardinality
	// Route is the matched ServiceProfile route name; empty when none matched.
	Route string
	// StatusCode is the HTTP status sent to the client; 0 when no response
	// headers were sent (e.g. a reset).
	StatusCode int
	// GRPCStatus is the grpc-status of a gRPC response (from trailers or a
	// trailers-only response); -1 for non-gRPC exchanges.
	GRPCStatus int
	// Latency is the time from the request's first byte to the response's
	// first byte (Linkerd's response_latency_ms semantics).
	Latency time.Duration
	// Err is set when the proxy failed the request; ErrKind classifies it.
	Err     error
	ErrKind proxyerr.Kind
	// Retries counts additional attempts made for this request.
	Retries int
	// ConnectRetries counts attempts sent to another endpoint because the
	// connection to the previous one failed before any byte of the request
	// was written (they are not in Retries).
	ConnectRetries int
}

// Failed reports whether the exchange is classified as a failure, as Linkerd
// classifies it: a proxy error, a 5xx status, or a gRPC failure status.
func (h *HTTP) Failed() bool {
	if h.Err != nil || h.StatusCode >= 500 || h.StatusCode == 0 {
		return true
	}
	return h.GRPCStatus > 0 && h.GRPCStatus < len(grpcFailure) && grpcFailure[h.GRPCStatus]
}

// grpcFailure holds the gRPC codes Linkerd classifies as failures: Unknown,
// DeadlineExceeded, PermissionDenied, Internal, Unavailable, DataLoss.
var grpcFailure = [17]bool{2: true, 4: true, 7: true, 13: true, 14: true, 15: true}
