// Package httproute is the proxy's compiled Gateway API (GAMMA) route table:
// HTTPRoute and GRPCRoute rules attached to a Service, matched with the
// specification's precedence, their filters (request/response header
// modifiers, redirect, URL rewrite, mirroring, weft's HTTPFault) and a
// weighted backend choice.
//
// It is protocol neutral: adapters for HTTP/1 (fasthttp) and HTTP/2
// (net/http) fill a Request view, call Table.Route, write back what the
// Decision changed and act on it (redirect, abort, delay, backend, timeouts,
// retries, mirrors). Mirroring is isolated by a bounded Mirror dispatcher
// with an injected send function: a slow mirror never slows the client; its
// copies are dropped and counted instead.
package httproute
