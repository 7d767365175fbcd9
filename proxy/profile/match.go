package profile

import (
	"fmt"
	"regexp"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
)

type matchKind uint8

const (
	matchAll    matchKind = iota // every sub-match (an empty condition matches everything)
	matchAny                     // at least one sub-match
	matchNot                     // not the single sub-match
	matchPath                    // path regex, whole path
	matchMethod                  // method equality
)

// requestMatch is a compiled RequestMatch tree.
type requestMatch struct {
	kind   matchKind
	re     *regexp.Regexp
	method string
	subs   []requestMatch
}

func compileRequestMatch(path string, m *destinationv1.RequestMatch) (requestMatch, error) {
	if m == nil {
		return requestMatch{kind: matchAll}, nil
	}
	switch x := m.Match.(type) {
	case nil:
		return requestMatch{kind: matchAll}, nil
	case *destinationv1.RequestMatch_All:
		subs, err := compileRequestSeq(path+".all", x.All.GetMatches())
		return requestMatch{kind: matchAll, subs: subs}, err
	case *destinationv1.RequestMatch_Any:
		subs, err := compileRequestSeq(path+".any", x.Any.GetMatches())
		return requestMatch{kind: matchAny, subs: subs}, err
	case *destinationv1.RequestMatch_Not:
		sub, err := compileRequestMatch(path+".not", x.Not)
		return requestMatch{kind: matchNot, subs: []requestMatch{sub}}, err
	case *destinationv1.RequestMatch_PathRegex:
		re, err := regexp.Compile("^(?:" + x.PathRegex + ")$")
		if err != nil {
			return requestMatch{}, fmt.Errorf("%s.pathRegex %q: %w", path, x.PathRegex, err)
		}
		return requestMatch{kind: matchPath, re: re}, nil
	case *destinationv1.RequestMatch_Method:
		if x.Method == "" {
			return requestMatch{}, fmt.Errorf("%s.method: empty", path)
		}
		return requestMatch{kind: matchMethod, method: x.Method}, nil
	}
	return requestMatch{}, fmt.Errorf("%s: unknown match type %T", path, m.Match)
}

func compileRequestSeq(path string, ms []*destinationv1.RequestMatch) ([]requestMatch, error) {
	out := make([]requestMatch, 0, len(ms))
	for i, m := range ms {
		c, err := compileRequestMatch(fmt.Sprintf("%s[%d]", path, i), m)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (m *requestMatch) matches(method, path string) bool {
	switch m.kind {
	case matchAll:
		for i := range m.subs {
			if !m.subs[i].matches(method, path) {
				return false
			}
		}
		return true
	case matchAny:
		for i := range m.subs {
			if m.subs[i].matches(method, path) {
				return true
			}
		}
		return false
	case matchNot:
		return !m.subs[0].matches(method, path)
	case matchPath:
		return m.re.MatchString(path)
	case matchMethod:
		return m.method == method
	}
	return false
}
