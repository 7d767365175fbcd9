package httproute

import (
	"fmt"
	"regexp"
	"strings"
)

type valueMatch struct {
	name  string
	value string
	re    *regexp.Regexp
}

func (v *valueMatch) ok(got string) bool {
	if v.re != nil {
		return v.re.MatchString(got)
	}
	return got == v.value
}

// match is one compiled match with its precedence rank.
type match struct {
	kind    PathKind
	path    string // prefix without trailing slash for PathPrefix
	re      *regexp.Regexp
	method  string
	headers []valueMatch
	query   []valueMatch
	grpc    bool
	rank    [5]int // higher wins, compared lexicographically
}

// pathKindRank orders path kinds: Exact, then RegularExpression (longer
// pattern first; the specification leaves regex precedence to the
// implementation), then PathPrefix (longer first).
var pathKindRank = map[PathKind]int{PathExact: 3, PathRegex: 2, PathPrefix: 1}

func compileValues(what string, vs []ValueSpec, fold bool) ([]valueMatch, error) {
	out := make([]valueMatch, 0, len(vs))
	seen := map[string]bool{}
	for _, v := range vs {
		n := v.Name
		if fold {
			n = lower(n)
		}
		if n == "" {
			return nil, fmt.Errorf("%s match with an empty name", what)
		}
		if seen[n] { // the specification: only the first entry with a name counts
			continue
		}
		seen[n] = true
		m := valueMatch{name: n, value: v.Value}
		if v.Regex {
			re, err := regexp.Compile(v.Value)
			if err != nil {
				return nil, fmt.Errorf("%s %q regex: %w", what, v.Name, err)
			}
			m.re = re
		}
		out = append(out, m)
	}
	return out, nil
}

func compileMatch(kind Kind, s MatchSpec) (match, error) {
	var m match
	var err error
	if m.headers, err = compileValues("header", s.Headers, true); err != nil {
		return m, err
	}
	if m.query, err = compileValues("query parameter", s.Query, false); err != nil {
		return m, err
	}
	m.method = s.Method
	if kind == KindGRPC {
		return compileGRPC(m, s)
	}
	m.kind, m.path = s.PathKind, s.Path
	if m.kind == "" {
		m.kind = PathPrefix
	}
	if m.path == "" {
		m.path = "/"
	}
	switch m.kind {
	case PathExact:
	case PathPrefix:
		if !strings.HasPrefix(m.path, "/") {
			return m, fmt.Errorf("path prefix %q must start with /", m.path)
		}
		m.path = strings.TrimRight(m.path, "/")
	case PathRegex:
		if m.re, err = regexp.Compile(m.path); err != nil {
			return m, fmt.Errorf("path regex: %w", err)
		}
	default:
		return m, fmt.Errorf("unknown path match type %q (want Exact, PathPrefix or RegularExpression)", m.kind)
	}
	m.rank = [5]int{pathKindRank[m.kind], len(s.Path), b2i(m.method != ""), len(m.headers), len(m.query)}
	return m, nil
}

// compileGRPC turns a GRPCRouteMatch into a path match on /service/method.
// GRPCRoute precedence: longer service, then longer method, then more
// headers.
func compileGRPC(m match, s MatchSpec) (match, error) {
	m.grpc = true
	m.method = "POST"
	switch {
	case s.Service != "" && s.GRPCName != "":
		m.kind, m.path = PathExact, "/"+s.Service+"/"+s.GRPCName
	case s.Service != "":
		m.kind, m.path = PathPrefix, "/"+s.Service
	case s.GRPCName != "":
		m.kind = PathRegex
		m.re = regexp.MustCompile(`^/[^/]+/` + regexp.QuoteMeta(s.GRPCName) + `$`)
	default:
		m.kind, m.path = PathPrefix, ""
	}
	m.rank = [5]int{len(s.Service), len(s.GRPCName), len(m.headers), 0, 0}
	return m, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (m *match) matches(r *Request) bool {
	if m.grpc && !r.GRPC {
		return false
	}
	if m.method != "" && m.method != r.Method {
		return false
	}
	switch m.kind {
	case PathExact:
		if r.Path != m.path {
			return false
		}
	case PathPrefix:
		if !prefixMatch(m.path, r.Path) {
			return false
		}
	case PathRegex:
		if !m.re.MatchString(r.Path) {
			return false
		}
	}
	for i := range m.headers {
		v, ok := r.Header.Get(m.headers[i].name)
		if !ok || !m.headers[i].ok(v) {
			return false
		}
	}
	for i := range m.query {
		v, ok := r.queryValue(m.query[i].name)
		if !ok || !m.query[i].ok(v) {
			return false
		}
	}
	return true
}

// prefixMatch is the specification's element-wise prefix: "/foo" matches
// "/foo", "/foo/" and "/foo/bar" but not "/foobar". p has no trailing slash.
func prefixMatch(p, path string) bool {
	if !strings.HasPrefix(path, p) {
		return false
	}
	return len(path) == len(p) || path[len(p)] == '/'
}
