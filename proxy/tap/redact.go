package tap

import (
	"strings"
	"unsafe"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
)

// DefaultRedacted are the headers whose values never leave the proxy.
var DefaultRedacted = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

// Redacted replaces a redacted header's value.
const Redacted = "REDACTED"

// redactor replaces the values of listed headers (case-insensitive names).
type redactor struct{ names []string }

func newRedactor(extra []string) redactor {
	r := redactor{names: append([]string(nil), DefaultRedacted...)}
	for _, n := range extra {
		if n = strings.TrimSpace(n); n != "" {
			r.names = append(r.names, n)
		}
	}
	return r
}

func (r redactor) redacts(name string) bool {
	for _, n := range r.names {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// headers copies hdr into tap headers, redacting listed values, and
// copies the strings line points to (the request line's) in place: one
// block holds every copied string, one the fields and one the slice, since
// an adapter's strings may alias its buffers.
func (r redactor) headers(hdr HeaderView, line ...*string) []*tapv1.Header {
	size, n := 0, 0
	for _, l := range line {
		size += len(*l)
	}
	if hdr != nil {
		hdr.Range(func(name, value string) bool {
			size += len(name)
			if !r.redacts(name) {
				size += len(value)
			}
			n++
			return true
		})
	}
	a := arena{buf: make([]byte, 0, size)}
	for _, l := range line {
		*l = a.copy(*l)
	}
	if n == 0 {
		return nil
	}
	fields := make([]tapv1.Header, n)
	out := make([]*tapv1.Header, 0, n)
	hdr.Range(func(name, value string) bool {
		if len(out) == n {
			return false
		}
		h := &fields[len(out)]
		h.Name = a.copy(name)
		if r.redacts(name) {
			h.Value = Redacted
		} else {
			h.Value = a.copy(value)
		}
		out = append(out, h)
		return true
	})
	return out
}

// arena copies strings into one block; a string that does not fit (the
// block was sized by a first pass) gets its own copy.
type arena struct{ buf []byte }

func (a *arena) copy(s string) string {
	if s == "" {
		return ""
	}
	if len(a.buf)+len(s) > cap(a.buf) {
		return strings.Clone(s)
	}
	start := len(a.buf)
	a.buf = append(a.buf, s...)
	return unsafe.String(&a.buf[start], len(s))
}
