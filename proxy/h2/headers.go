package h2

import (
	"net/http"
	"net/textproto"
	"strings"
)

// connectionSpecific are the header fields RFC 9113 §8.2.2 forbids in
// HTTP/2 (TE is handled separately: "te: trailers" is allowed).
var connectionSpecific = [...]string{"Connection", "Proxy-Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade"}

// stripHopByHop removes connection-specific fields from h in place: the
// fields named by Connection, the fixed RFC 9113 §8.2.2 list, and TE unless
// its only value is "trailers". It allocates nothing when there is nothing to
// strip.
func stripHopByHop(h http.Header) {
	if vv, ok := h["Connection"]; ok {
		for _, v := range vv {
			for tok := range strings.SplitSeq(v, ",") {
				if tok = textproto.TrimString(tok); tok != "" {
					delete(h, http.CanonicalHeaderKey(tok))
				}
			}
		}
	}
	for _, k := range connectionSpecific {
		delete(h, k)
	}
	if vv, ok := h["Te"]; ok && (len(vv) != 1 || !strings.EqualFold(vv[0], "trailers")) {
		delete(h, "Te")
	}
}

// copyResponseHeader copies the upstream response fields src into the
// client response header dst, sharing value slices, then strips
// connection-specific fields. Date and Content-Type are declared empty when
// the upstream sent none, so the server neither invents a Date nor sniffs a
// Content-Type the upstream did not send.
func copyResponseHeader(dst, src http.Header) {
	for k, vv := range src {
		dst[k] = vv
	}
	stripHopByHop(dst)
	if _, ok := dst["Date"]; !ok {
		dst["Date"] = nil
	}
	if _, ok := dst["Content-Type"]; !ok {
		dst["Content-Type"] = nil
	}
}

// copyTrailers announces the upstream trailers to the server as undeclared
// trailers (http.TrailerPrefix), which it sends after the body.
func copyTrailers(dst, src http.Header) {
	for k, vv := range src {
		dst[http.TrailerPrefix+k] = vv
	}
}

// isGRPC reports whether a request's content-type is application/grpc or a
// subtype (application/grpc+proto, ...).
func isGRPC(h http.Header) bool {
	vv := h["Content-Type"]
	if len(vv) == 0 {
		return false
	}
	ct := vv[0]
	const p = "application/grpc"
	return len(ct) >= len(p) && strings.EqualFold(ct[:len(p)], p) && (len(ct) == len(p) || ct[len(p)] == '+' || ct[len(p)] == ';')
}

// grpcStatus parses a grpc-status value; -1 when absent or malformed.
func grpcStatus(h http.Header) int {
	vv := h["Grpc-Status"]
	if len(vv) == 0 || len(vv[0]) == 0 || len(vv[0]) > 3 {
		return -1
	}
	n := 0
	for i := 0; i < len(vv[0]); i++ {
		c := vv[0][i]
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// headerView is an http.Header as the pipeline's Headers (for the tap).
type headerView http.Header

func (h headerView) Range(f func(name, value string) bool) {
	for name, vs := range h {
		for _, v := range vs {
			if !f(name, v) {
				return
			}
		}
	}
}
