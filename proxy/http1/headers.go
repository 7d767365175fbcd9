package http1

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// hopByHop are the connection-specific fields a proxy must not forward
// (RFC 9110 §7.6.1), plus the de-facto ones (Keep-Alive, Proxy-Connection).
// Transfer-Encoding and Content-Length are framing, which fasthttp rewrites
// itself; Upgrade and Connection are kept only on an upgrade.
var hopByHop = [][]byte{
	[]byte("Connection"),
	[]byte("Keep-Alive"),
	[]byte("Proxy-Connection"),
	[]byte("Proxy-Authenticate"),
	[]byte("Proxy-Authorization"),
	[]byte("TE"),
	[]byte("Trailer"),
	[]byte("Upgrade"),
}

// maxNamed bounds how many header names one keyBuf holds: a message naming
// more than 16 fields in Connection gets the rest forwarded.
const maxNamed = 16

// keyBuf holds header names copied out of a header before deleting them.
type keyBuf struct {
	n    int
	keys [maxNamed][64]byte
	lens [maxNamed]int
}

func (k *keyBuf) add(b []byte) {
	if k.n == maxNamed || len(b) > 64 {
		return
	}
	k.lens[k.n] = copy(k.keys[k.n][:], b)
	k.n++
}

func (k *keyBuf) has(name []byte) bool {
	for i := range k.n {
		if bytes.EqualFold(k.keys[i][:k.lens[i]], name) {
			return true
		}
	}
	return false
}

// headerKeys is what stripHopByHop needs of a request or response header.
type headerKeys interface {
	PeekKeys() [][]byte
	DelBytes(key []byte)
}

// scratch is per-connection working memory for header handling, so the
// per-request path does not allocate.
type scratch struct {
	named, victims keyBuf
}

// stripHopByHop removes hop-by-hop fields and every field named in a
// Connection field, matching names case-insensitively without changing the
// case of what is kept. keepUpgrade keeps Connection and Upgrade (the
// upgrade handshake needs them end to end). It does not allocate.
func stripHopByHop(h headerKeys, s *scratch, keepUpgrade bool) {
	s.named.n, s.victims.n = 0, 0
	// Ranging over the concrete types' All keeps the loop body on the stack.
	switch h := h.(type) {
	case *fasthttp.RequestHeader:
		for k, v := range h.All() {
			s.note(k, v, keepUpgrade)
		}
	case *fasthttp.ResponseHeader:
		for k, v := range h.All() {
			s.note(k, v, keepUpgrade)
		}
	}
	if s.named.n > 0 {
		for _, k := range h.PeekKeys() {
			if s.named.has(k) && !s.victims.has(k) {
				s.victims.add(k)
			}
		}
	}
	// fasthttp compares names byte for byte when normalising is off: delete
	// by the stored spellings.
	for i := range s.victims.n {
		h.DelBytes(s.victims.keys[i][:s.victims.lens[i]])
	}
}

// note records field k: a hop-by-hop name to delete, and for Connection the
// names it lists (RFC 9110 §7.6.1).
func (s *scratch) note(k, v []byte, keepUpgrade bool) {
	if isHopByHop(k, keepUpgrade) && !s.victims.has(k) {
		s.victims.add(k)
	}
	if !bytes.EqualFold(k, hopByHop[0]) {
		return
	}
	for len(v) > 0 {
		var tok []byte
		tok, v, _ = bytes.Cut(v, []byte(","))
		tok = bytes.TrimSpace(tok)
		if len(tok) > 0 && !(keepUpgrade && bytes.EqualFold(tok, hopByHop[7])) {
			s.named.add(tok)
		}
	}
}

func isHopByHop(k []byte, keepUpgrade bool) bool {
	for i, h := range hopByHop {
		if keepUpgrade && (i == 0 || i == 7) {
			continue
		}
		if bytes.EqualFold(k, h) {
			return true
		}
	}
	return false
}

// isUpgrade reports a request asking to switch protocols: an Upgrade field
// and "upgrade" among the Connection options.
func isUpgrade(h *fasthttp.RequestHeader) bool {
	var up, conn bool
	for k, v := range h.All() {
		switch {
		case bytes.EqualFold(k, hopByHop[7]):
			up = len(v) > 0
		case bytes.EqualFold(k, hopByHop[0]):
			for len(v) > 0 {
				var tok []byte
				tok, v, _ = bytes.Cut(v, []byte(","))
				if bytes.EqualFold(bytes.TrimSpace(tok), hopByHop[7]) {
					conn = true
				}
			}
		}
	}
	return up && conn
}

var (
	strContentLength    = []byte("content-length")
	strTransferEncoding = []byte("transfer-encoding")
)

// smuggling reports a request whose framing is ambiguous: Content-Length
// together with Transfer-Encoding (RFC 9112 §6.1 lets a server reject it;
// a proxy that forwarded it would let the two sides disagree on where the
// request ends). fasthttp silently prefers chunked, so check the raw head.
func smuggling(h *fasthttp.RequestHeader) bool {
	raw := h.RawHeaders()
	var cl, te bool
	for len(raw) > 0 {
		var line []byte
		line, raw, _ = bytes.Cut(raw, []byte("\n"))
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(name, strContentLength):
			cl = true
		case bytes.EqualFold(name, strTransferEncoding):
			te = true
		}
	}
	return cl && te
}
