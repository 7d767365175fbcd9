package h2

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

type fakeTLSConn struct{ net.Conn }

func (fakeTLSConn) ConnectionState() tls.ConnectionState {
	return tls.ConnectionState{NegotiatedProtocol: "h2"}
}

func TestGuardKeepsTLSState(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if _, ok := guardConn(a, 1, time.Second, nil).(connectionStater); ok {
		t.Fatal("plain conn wrapped as TLS")
	}
	g := guardConn(fakeTLSConn{a}, 1, time.Second, nil)
	cs, ok := g.(connectionStater)
	if !ok || cs.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatal("TLS state hidden by the guard")
	}
}

func TestGuardScanAcrossReads(t *testing.T) {
	// Preface, then RST_STREAM frames split at every possible byte.
	var stream []byte
	stream = append(stream, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"...)
	rst := []byte{0, 0, 4, frameRSTStream, 0, 0, 0, 0, 1, 0, 0, 0, 8}
	data := []byte{0, 0, 3, 0x0, 0, 0, 0, 0, 1, frameRSTStream, frameRSTStream, frameRSTStream} // payload looks like RST types
	for range 3 {
		stream = append(stream, data...)
		stream = append(stream, rst...)
	}
	for chunk := 1; chunk <= len(stream); chunk++ {
		g := newResetGuard(nil, 2, time.Minute, nil)
		cut := false
		for off := 0; off < len(stream); off += chunk {
			if g.scanRead(stream[off:min(off+chunk, len(stream))]) {
				cut = true
			}
		}
		if !cut || g.resets != 3 {
			t.Fatalf("chunk %d: cut=%v resets=%d, want the third reset to exceed a budget of 2", chunk, cut, g.resets)
		}
	}
}
