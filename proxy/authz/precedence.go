package authz

import (
	"cmp"
	"slices"
)

// SortRoutes orders routes so that the first one matching a request is the
// most specific, by Gateway API's precedence of a route's most specific
// match: an exact path, then the longest prefix (or regex), then a method,
// then the most header matches. Ties keep their order, so callers pass routes
// oldest first (then by namespace/name), as Gateway API asks.
func SortRoutes(rs []Route) {
	slices.SortStableFunc(rs, func(a, b Route) int {
		return compareSpecificity(specificity(b), specificity(a))
	})
}

type spec struct{ exact, pathLen, method, headers int }

func specificity(r Route) spec {
	best := spec{}
	for _, m := range r.Matches {
		s := spec{headers: len(m.Headers)}
		if m.Path != nil {
			s.pathLen = len(m.Path.Value)
			if m.Path.Kind == PathExact {
				s.exact = 1
			}
		}
		if m.Method != "" {
			s.method = 1
		}
		if compareSpecificity(s, best) > 0 {
			best = s
		}
	}
	return best
}

func compareSpecificity(a, b spec) int {
	return cmp.Or(cmp.Compare(a.exact, b.exact), cmp.Compare(a.pathLen, b.pathLen),
		cmp.Compare(a.method, b.method), cmp.Compare(a.headers, b.headers))
}
