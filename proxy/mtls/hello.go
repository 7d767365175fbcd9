package mtls

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/weftmesh/weft/proxy/detect"
)

// ALPN is the protocol weft's proxies negotiate with each other. A ClientHello
// offering it is a peer proxy; any other ClientHello is the application's own
// TLS and is forwarded untouched.
const ALPN = "weft.io/v1"

// maxHelloLen bounds the ClientHello message Sniff reassembles.
const maxHelloLen = 32 << 10

// ErrNotClientHello means the bytes are not a TLS handshake starting with a
// ClientHello.
var ErrNotClientHello = errors.New("not a TLS ClientHello")

// Sniff reads the complete TLS ClientHello from c (which replays the bytes
// detection peeked, as detect.Conn does) and reports whether it offers weft's
// ALPN. The returned conn replays every byte Sniff read, so it can go to
// Terminator.Terminate when weft is true, or be forwarded opaque when it is
// false. timeout bounds the reads (zero: no deadline); it is cleared before
// returning. A malformed hello is not an error: weft is false and the bytes
// are left to whoever the connection is forwarded to.
func Sniff(c net.Conn, timeout time.Duration) (replay net.Conn, weft bool, err error) {
	if timeout > 0 {
		if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return nil, false, fmt.Errorf("sniff client hello: %w", err)
		}
		defer c.SetReadDeadline(time.Time{})
	}
	raw, msg, err := readClientHello(c)
	if err != nil && !errors.Is(err, ErrNotClientHello) {
		return nil, false, fmt.Errorf("sniff client hello: %w", err)
	}
	if err == nil {
		weft, _ = helloOffersALPN(msg, ALPN)
	}
	return detect.NewConn(c, raw, nil), weft, nil
}

// OffersWeft reports whether b, the start of a connection, holds a complete
// ClientHello offering weft's ALPN. complete is false when b ends before the
// ClientHello does (read more, or use Sniff).
func OffersWeft(b []byte) (weft, complete bool) {
	_, msg, err := readClientHello(&sliceReader{b: b})
	if err != nil {
		return false, !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF)
	}
	ok, _ := helloOffersALPN(msg, ALPN)
	return ok, true
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// readClientHello reads TLS handshake records until the first handshake
// message is complete. raw is every byte read; msg is the handshake message
// (type, length and body). A stream that is not a handshake starting with a
// ClientHello yields ErrNotClientHello with raw holding what was read.
func readClientHello(r io.Reader) (raw, msg []byte, err error) {
	var hdr [5]byte
	need := -1
	for need < 0 || len(msg) < need {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return raw, nil, err
		}
		raw = append(raw, hdr[:]...)
		if hdr[0] != 0x16 || hdr[1] != 3 {
			return raw, nil, ErrNotClientHello
		}
		n := int(hdr[3])<<8 | int(hdr[4])
		if n == 0 || n > 1<<14 {
			return raw, nil, fmt.Errorf("%w: record length %d", ErrNotClientHello, n)
		}
		start := len(raw)
		raw = append(raw, make([]byte, n)...)
		if m, err := io.ReadFull(r, raw[start:]); err != nil {
			return raw[:start+m], nil, err
		}
		msg = append(msg, raw[start:]...)
		if need < 0 && len(msg) >= 4 {
			if msg[0] != 1 {
				return raw, nil, fmt.Errorf("%w: handshake type %d", ErrNotClientHello, msg[0])
			}
			need = 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3]))
			if need > maxHelloLen {
				return raw, nil, fmt.Errorf("%w: %d bytes is too long", ErrNotClientHello, need)
			}
		}
	}
	return raw, msg[:need], nil
}

// helloOffersALPN parses a ClientHello handshake message (RFC 8446 §4.1.2)
// and reports whether its ALPN extension lists proto.
func helloOffersALPN(msg []byte, proto string) (bool, error) {
	bad := func(what string) (bool, error) { return false, fmt.Errorf("%w: %s", ErrNotClientHello, what) }
	if len(msg) < 4 || msg[0] != 1 {
		return bad("not a client hello")
	}
	b := msg[4:]
	if len(b) < 2+32 {
		return bad("short")
	}
	b = b[34:]
	var v []byte
	var ok bool
	if v, b, ok = cut8(b); !ok || len(v) > 32 { // legacy_session_id
		return bad("session id")
	}
	if _, b, ok = cut16(b); !ok { // cipher_suites
		return bad("cipher suites")
	}
	if _, b, ok = cut8(b); !ok { // legacy_compression_methods
		return bad("compression methods")
	}
	if len(b) == 0 {
		return false, nil // no extensions
	}
	exts, _, ok := cut16(b)
	if !ok {
		return bad("extensions")
	}
	for len(exts) > 0 {
		if len(exts) < 2 {
			return bad("extension type")
		}
		typ := uint16(exts[0])<<8 | uint16(exts[1])
		var data []byte
		if data, exts, ok = cut16(exts[2:]); !ok {
			return bad("extension length")
		}
		if typ != 16 { // application_layer_protocol_negotiation
			continue
		}
		list, rest, ok := cut16(data)
		if !ok || len(rest) != 0 {
			return bad("alpn list")
		}
		for len(list) > 0 {
			var name []byte
			if name, list, ok = cut8(list); !ok || len(name) == 0 {
				return bad("alpn name")
			}
			if string(name) == proto {
				return true, nil
			}
		}
		return false, nil
	}
	return false, nil
}

func cut8(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return nil, nil, false
	}
	n := 1 + int(b[0])
	return b[1:n], b[n:], true
}

func cut16(b []byte) (v, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := 2 + (int(b[0])<<8 | int(b[1]))
	if len(b) < n {
		return nil, nil, false
	}
	return b[2:n], b[n:], true
}
