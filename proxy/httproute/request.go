package httproute

import "net/url"

// Headers is the header access an adapter provides: fasthttp's
// RequestHeader/ResponseHeader and net/http's Header both fit in a few lines.
// Names are case-insensitive.
type Headers interface {
	Get(name string) (string, bool)
	Set(name, value string)
	Add(name, value string)
	Del(name string)
}

// Request is the protocol-neutral view of a request. The adapter fills it,
// Table.Route may change Host, Path and Header, and the adapter writes Host
// and Path back when Rewritten reports true.
type Request struct {
	Method   string
	Scheme   string // "http" or "https", for redirects
	Host     string // authority without port when the adapter knows it
	Port     int
	Path     string // without the query
	RawQuery string
	GRPC     bool // content-type application/grpc*
	Header   Headers

	query     url.Values
	parsedQ   bool
	Rewritten bool
}

func (r *Request) queryValue(name string) (string, bool) {
	if !r.parsedQ {
		r.query, _ = url.ParseQuery(r.RawQuery)
		r.parsedQ = true
	}
	v, ok := r.query[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// MapHeaders is a Headers over a map of lower-case names, for tests and for
// adapters that snapshot headers.
type MapHeaders map[string][]string

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Get returns the first value.
func (m MapHeaders) Get(n string) (string, bool) {
	v := m[lower(n)]
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// Set replaces all values.
func (m MapHeaders) Set(n, v string) { m[lower(n)] = []string{v} }

// Add appends a value.
func (m MapHeaders) Add(n, v string) { m[lower(n)] = append(m[lower(n)], v) }

// Del removes the header.
func (m MapHeaders) Del(n string) { delete(m, lower(n)) }
