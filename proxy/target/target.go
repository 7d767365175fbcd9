// Package target names where a request or connection is sent: the endpoint a
// router picked and what the proxy knows about it. HTTP/1, HTTP/2 and TCP
// forwarding all speak this type; discovery and the balancer produce it.
package target

import (
	"net/netip"

	"github.com/weftmesh/weft/proxy/record"
)

// Protocol is a hint about what an endpoint speaks, from discovery or
// detection. The zero value is Unknown (detect).
type Protocol uint8

// Protocols.
const (
	Unknown Protocol = iota // detect from the first bytes
	HTTP1                   // HTTP/1.x
	HTTP2                   // HTTP/2 (h2c between apps; gRPC)
	Opaque                  // opaque TCP: never detected, bytes are copied
)

// String is the configuration and metric spelling of p.
func (p Protocol) String() string {
	switch p {
	case HTTP1:
		return "http1"
	case HTTP2:
		return "http2"
	case Opaque:
		return "opaque"
	}
	return "unknown"
}

// Endpoint is one concrete destination.
type Endpoint struct {
	// Addr is the ip:port to connect to.
	Addr netip.AddrPort
	// Identity is the peer proxy's expected SPIFFE ID; empty means the
	// endpoint is not meshed and is reached in plaintext.
	Identity string
	// Protocol is the endpoint's protocol hint; Unknown means no hint.
	Protocol Protocol
	// Peer carries the authority and metric labels reported for traffic to
	// this endpoint. Its Labels slice is shared and must not be modified.
	Peer record.Peer
	// Load is the balancer's per-endpoint load handle; nil when the endpoint
	// was not picked by a load balancer (static, pass-through, inbound).
	Load Load
}

// Load is the handle a protocol layer reports one request (HTTP) or one
// connection attempt (TCP) to, so the balancer learns the endpoint's
// latency and failures. Implementations are safe for concurrent use and do
// not allocate.
type Load interface {
	// Begin counts a request as pending on the endpoint and returns the
	// token End takes (a monotonic timestamp).
	Begin() int64
	// End ends a pending request: at the response's first byte, or when it
	// failed before one. failed is true for connect errors, timeouts and
	// responses classified as failures; it feeds failure accrual.
	End(token int64, failed bool)
}
