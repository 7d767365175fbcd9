// Package h2 is weft-proxy's HTTP/2 and gRPC layer.
//
// The core hands it client connections whose first bytes were detected as
// the HTTP/2 prior-knowledge preface (h2c); [Proxy.ServeConn] serves each with
// golang.org/x/net/http2's server, routes every request on its own (so one
// gRPC client connection spreads over many endpoints), and forwards it over a
// pooled HTTP/2 connection to the chosen endpoint. Bodies stream in both
// directions with bounded buffers, trailers (including gRPC trailers-only
// responses) are forwarded, resets propagate both ways and proxy failures are
// answered through [proxyerr]: an HTTP status or, for gRPC, a trailers-only
// response with a grpc-status.
//
// See docs/proxy-h2.md for behaviour, limits and measurements.
package h2
