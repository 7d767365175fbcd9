package mtls

import (
	"errors"
	"fmt"
	"io"

	"github.com/weftmesh/weft/proxy/target"
)

// The connection header is the first thing a client proxy writes on an mTLS
// connection, right after the handshake. It tells the server proxy which
// local port the connection is for and what it carries:
//
//	offset size field
//	0      3    magic "wft"
//	3      1    version (1)
//	4      1    body length L (3..MaxHeaderLen-HeaderPrefixLen)
//	5      2    target port, big endian, non-zero
//	7      1    protocol (target.Protocol: 0 unknown, 1 http1, 2 http2, 3 opaque)
//	8      L-3  extensions: (type, length, value) triples; unknown types are skipped
//
// A version-1 header without extensions is 8 bytes. The body length is one
// byte, so a header is never longer than MaxHeaderLen.
const (
	// HeaderPrefixLen is the length of magic, version and body length.
	HeaderPrefixLen = 5
	// HeaderLen is the length of a header without extensions.
	HeaderLen = HeaderPrefixLen + 3
	// MaxHeaderLen bounds a header with extensions.
	MaxHeaderLen = HeaderPrefixLen + 255
	// HeaderVersion is the version this package writes and reads.
	HeaderVersion = 1
)

var headerMagic = [3]byte{'w', 'f', 't'}

// Header is the decoded connection header.
type Header struct {
	// Port is the port on the server's pod the connection is for; never zero.
	Port uint16
	// Protocol is what the client carries; Unknown means the server detects.
	Protocol target.Protocol
}

// Header errors. ErrShortHeader means more bytes are needed.
var (
	ErrShortHeader   = errors.New("connection header: short")
	ErrHeaderMagic   = errors.New("connection header: bad magic")
	ErrHeaderVersion = errors.New("connection header: unsupported version")
	ErrHeaderInvalid = errors.New("connection header: invalid")
)

// AppendHeader appends h's encoding to dst.
func AppendHeader(dst []byte, h Header) []byte {
	return append(dst, headerMagic[0], headerMagic[1], headerMagic[2], HeaderVersion, 3,
		byte(h.Port>>8), byte(h.Port), byte(h.Protocol))
}

// ParseHeader decodes the header at the start of b and returns it with its
// encoded length. It returns ErrShortHeader when b holds a valid prefix of a
// header, and another error when b cannot start a valid header.
func ParseHeader(b []byte) (Header, int, error) {
	for i := 0; i < len(headerMagic) && i < len(b); i++ {
		if b[i] != headerMagic[i] {
			return Header{}, 0, ErrHeaderMagic
		}
	}
	if len(b) < HeaderPrefixLen {
		return Header{}, 0, ErrShortHeader
	}
	if b[3] != HeaderVersion {
		return Header{}, 0, fmt.Errorf("%w %d", ErrHeaderVersion, b[3])
	}
	l := int(b[4])
	if l < 3 {
		return Header{}, 0, fmt.Errorf("%w: body length %d", ErrHeaderInvalid, l)
	}
	n := HeaderPrefixLen + l
	if len(b) < n {
		return Header{}, 0, ErrShortHeader
	}
	body := b[HeaderPrefixLen:n]
	h := Header{Port: uint16(body[0])<<8 | uint16(body[1]), Protocol: target.Protocol(body[2])}
	if h.Port == 0 {
		return Header{}, 0, fmt.Errorf("%w: port 0", ErrHeaderInvalid)
	}
	if h.Protocol > target.Opaque {
		return Header{}, 0, fmt.Errorf("%w: protocol %d", ErrHeaderInvalid, body[2])
	}
	for ext := body[3:]; len(ext) > 0; {
		if len(ext) < 2 || len(ext) < 2+int(ext[1]) {
			return Header{}, 0, fmt.Errorf("%w: truncated extension", ErrHeaderInvalid)
		}
		ext = ext[2+int(ext[1]):]
	}
	return h, n, nil
}

// ReadHeader reads exactly one header from r into buf and decodes it. It never
// reads past the header, so what follows stays in r.
func ReadHeader(r io.Reader, buf *[MaxHeaderLen]byte) (Header, error) {
	if _, err := io.ReadFull(r, buf[:HeaderPrefixLen]); err != nil {
		return Header{}, fmt.Errorf("read connection header: %w", err)
	}
	if _, _, err := ParseHeader(buf[:HeaderPrefixLen]); err != ErrShortHeader {
		return Header{}, err
	}
	n := HeaderPrefixLen + int(buf[4])
	if _, err := io.ReadFull(r, buf[HeaderPrefixLen:n]); err != nil {
		return Header{}, fmt.Errorf("read connection header: %w", err)
	}
	h, _, err := ParseHeader(buf[:n])
	return h, err
}
