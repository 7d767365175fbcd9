package tap

import (
	"strings"

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

// headers copies hdr into tap headers, redacting listed values.
func (r redactor) headers(hdr HeaderView) []*tapv1.Header {
	if hdr == nil {
		return nil
	}
	var out []*tapv1.Header
	hdr.Range(func(name, value string) bool {
		if r.redacts(name) {
			value = Redacted
		} else {
			value = strings.Clone(value)
		}
		out = append(out, &tapv1.Header{Name: strings.Clone(name), Value: value})
		return true
	})
	return out
}
