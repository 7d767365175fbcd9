package h2

import (
	"io"
	"net/http"
	"strconv"

	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/proxyerr"
)

// writeError answers a request the proxy failed with err of kind k: an HTTP
// status with the weft-proxy-error header, or, for gRPC, a trailers-only
// response (HTTP 200, grpc-status, grpc-message) with the same header. The
// status sent is returned. The body and grpc-message name the kind, never
// the cause (which may hold internal addresses).
func writeError(w http.ResponseWriter, grpc bool, k proxyerr.Kind) (status, grpcCode int) {
	h := w.Header()
	h[proxyerr.Header] = []string{k.String()}
	if grpc {
		code := int(k.GRPCCode())
		h["Content-Type"] = []string{"application/grpc"}
		h["Grpc-Status"] = []string{strconv.Itoa(code)}
		h["Grpc-Message"] = []string{pipeline.GRPCMessage(k)}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK, code
	}
	status = k.HTTPStatus()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, pipeline.ErrorBody(k))
	return status, -1
}

// grpcEncodeMessage percent-encodes a grpc-message value as the gRPC HTTP/2
// protocol requires: bytes outside printable ASCII, and '%', become %XX.
func grpcEncodeMessage(s string) string {
	const hex = "0123456789ABCDEF"
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			b = append(b, '%', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}
