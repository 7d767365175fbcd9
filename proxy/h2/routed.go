package h2

import (
	"encoding/binary"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/weftmesh/weft/proxy/proxyerr"
)

// bodyReader sits between the client's request body and the replay
// buffer and remembers what a retry needs to know: whether the body was
// read to its end, how many bytes it had and, for gRPC, the length of the
// first length-prefixed message. Reads are serialised by the replay buffer;
// the results are read by the handler while a transport goroutine may
// still be reading, hence the atomics.
type bodyReader struct {
	r      io.Reader
	eof    atomic.Bool
	n      atomic.Int64
	msgLen atomic.Int64 // first gRPC message's length + 5; 0 until known
	head   [5]byte      // the gRPC message prefix (flag, 4-byte length)
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		old := b.n.Load()
		if old < int64(len(b.head)) {
			copy(b.head[old:], p[:n])
			if old+int64(n) >= int64(len(b.head)) {
				b.msgLen.Store(int64(binary.BigEndian.Uint32(b.head[1:])) + int64(len(b.head)))
			}
		}
		b.n.Add(int64(n))
	}
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// complete reports whether the whole body was read: its end was seen, or
// its declared length (contentLength ≥ 0) was.
func (b *bodyReader) complete(contentLength int64) bool {
	return b.eof.Load() || contentLength >= 0 && b.n.Load() == contentLength
}

// singleMessage reports whether the body was exactly one complete gRPC
// message followed by the end of the stream: the shape of a unary or
// server-streaming call. Anything else (no message, several, a stream
// still open) is a client stream, which is never retried.
func (b *bodyReader) singleMessage() bool {
	m := b.msgLen.Load()
	return b.eof.Load() && m > 0 && b.n.Load() == m
}

// timeoutTrailers ends a gRPC response whose headers were already sent when
// the route timeout expired: DEADLINE_EXCEEDED in the trailers, with the
// weft-proxy-error field.
func timeoutTrailers(hdr http.Header, err error) int {
	code := int(proxyerr.Timeout.GRPCCode())
	hdr[http.TrailerPrefix+"Grpc-Status"] = []string{strconv.Itoa(code)}
	hdr[http.TrailerPrefix+"Grpc-Message"] = []string{grpcEncodeMessage("weft-proxy: " + err.Error())}
	hdr[http.TrailerPrefix+proxyerr.Header] = []string{proxyerr.Timeout.String()}
	return code
}

// drain discards a little of a failed attempt's response body (so a short
// error body does not reset the upstream stream) and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}
