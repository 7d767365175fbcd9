package h2

import (
	"net/http"
	"strconv"

	"github.com/weftmesh/weft/proxy/proxyerr"
)

// writeError answers a request the proxy failed with err of kind k: an HTTP
// status with the weft-proxy-error header, or, for gRPC, a trailers-only
// response (HTTP 200, grpc-status, grpc-message) with the same header. The
// status sent is returned; Canceled sends nothing and returns 0.
func writeError(w http.ResponseWriter, grpc bool, k proxyerr.Kind, err error) (status, grpcCode int) {
	if k == proxyerr.Canceled {
		return 0, -1
	}
	h := w.Header()
	h[proxyerr.Header] = []string{k.String()}
	if grpc {
		code := int(k.GRPCCode())
		h["Content-Type"] = []string{"application/grpc"}
		h["Grpc-Status"] = []string{strconv.Itoa(code)}
		h["Grpc-Message"] = []string{grpcEncodeMessage("weft-proxy: " + err.Error())}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK, code
	}
	status = k.HTTPStatus()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(err.Error() + "\n"))
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
