package pipeline

import "github.com/weftmesh/weft/proxy/proxyerr"

// errorBodies are the bodies of the proxy's own error responses, one per
// kind: the kind's label and a newline, never the cause (which may name
// internal addresses).
var errorBodies = func() (b [256]string) {
	for k := range b {
		b[k] = proxyerr.Kind(k).String() + "\n"
	}
	return b
}()

// ErrorBody is the body of the proxy's error response of kind k, the same
// for HTTP/1 and HTTP/2.
func ErrorBody(k proxyerr.Kind) string { return errorBodies[k] }

// GRPCMessage is the grpc-message of the proxy's error answer of kind k to
// a gRPC request (before percent-encoding; it is printable ASCII).
func GRPCMessage(k proxyerr.Kind) string {
	return "weft-proxy: " + errorBodies[k][:len(errorBodies[k])-1]
}
