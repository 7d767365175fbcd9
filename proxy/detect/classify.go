// Package detect decides, from the first bytes a client sends, which
// protocol a connection speaks: one bounded peek, then a conn that replays
// the peeked bytes to whichever layer takes the connection.
package detect

import "bytes"

// Protocol is a detection outcome.
type Protocol uint8

// Outcomes. The zero value is Opaque.
const (
	Opaque Protocol = iota // unrecognised bytes (or none): forward as TCP
	HTTP1                  // an HTTP/1.x request line
	HTTP2                  // the HTTP/2 client connection preface (h2c)
	TLS                    // a TLS ClientHello: the application's own TLS, forwarded opaque
)

// String is the metric label value of p.
func (p Protocol) String() string {
	switch p {
	case HTTP1:
		return "http1"
	case HTTP2:
		return "http2"
	case TLS:
		return "tls"
	}
	return "opaque"
}

// Preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// maxMethod bounds the length of an HTTP method token.
const maxMethod = 24

// Classify inspects the bytes peeked so far. final is false when b is a
// valid prefix of more than one outcome and more bytes could decide it; a
// caller that cannot read more treats a non-final answer as Opaque, except
// that a full buffer holding a valid request-line prefix is HTTP1 (the HTTP
// layer then rejects an overlong line itself).
func Classify(b []byte) (p Protocol, final bool) {
	if len(b) == 0 {
		return Opaque, false
	}
	if b[0] == 'P' && len(b) < len(Preface) && bytes.HasPrefix([]byte(Preface), b) {
		// Also a valid HTTP/1 prefix ("PRI "), but the preface decides.
		return HTTP2, false
	}
	if len(b) >= len(Preface) && string(b[:len(Preface)]) == Preface {
		return HTTP2, true
	}
	if b[0] == 0x16 { // TLS handshake record
		if len(b) < 3 {
			return TLS, false
		}
		if b[1] == 3 && b[2] <= 4 {
			return TLS, true
		}
		return Opaque, true
	}
	return classifyRequestLine(b)
}

// classifyRequestLine checks b against "METHOD SP target SP HTTP/1.d CRLF"
// (RFC 9112 §3).
func classifyRequestLine(b []byte) (Protocol, bool) {
	i := 0
	for ; i < len(b) && b[i] != ' '; i++ {
		if !isTokenChar(b[i]) || i >= maxMethod {
			return Opaque, true
		}
	}
	if i == 0 {
		return Opaque, true
	}
	if i == len(b) {
		return HTTP1, false
	}
	i++ // SP
	start := i
	for ; i < len(b) && b[i] != ' '; i++ {
		if b[i] <= ' ' || b[i] == 0x7f {
			return Opaque, true
		}
	}
	if i == len(b) {
		return HTTP1, false
	}
	if i == start {
		return Opaque, true
	}
	i++ // SP
	const version = "HTTP/1."
	rest := b[i:]
	n := min(len(rest), len(version))
	if string(rest[:n]) != version[:n] {
		return Opaque, true
	}
	if len(rest) <= len(version) {
		return HTTP1, false
	}
	if d := rest[len(version)]; d < '0' || d > '9' {
		return Opaque, true
	}
	rest = rest[len(version)+1:]
	switch {
	case len(rest) == 0:
		return HTTP1, false
	case rest[0] == '\n':
		return HTTP1, true
	case rest[0] != '\r':
		return Opaque, true
	case len(rest) == 1:
		return HTTP1, false
	case rest[1] == '\n':
		return HTTP1, true
	}
	return Opaque, true
}

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	return tokenTable[c]
}

var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
