package profile

import (
	"fmt"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
)

// responseMatch is a compiled ResponseMatch tree.
type responseMatch struct {
	kind     matchKind // matchAll, matchAny, matchNot, or matchPath meaning "status range"
	min, max int
	subs     []responseMatch
}

type responseClass struct {
	cond    responseMatch
	failure bool
}

func compileResponseMatch(path string, m *destinationv1.ResponseMatch) (responseMatch, error) {
	if m == nil {
		return responseMatch{kind: matchAll}, nil
	}
	switch x := m.Match.(type) {
	case nil:
		return responseMatch{kind: matchAll}, nil
	case *destinationv1.ResponseMatch_All:
		subs, err := compileResponseSeq(path+".all", x.All.GetMatches())
		return responseMatch{kind: matchAll, subs: subs}, err
	case *destinationv1.ResponseMatch_Any:
		subs, err := compileResponseSeq(path+".any", x.Any.GetMatches())
		return responseMatch{kind: matchAny, subs: subs}, err
	case *destinationv1.ResponseMatch_Not:
		sub, err := compileResponseMatch(path+".not", x.Not)
		return responseMatch{kind: matchNot, subs: []responseMatch{sub}}, err
	case *destinationv1.ResponseMatch_Status:
		// Linkerd's defaults: an unset min is 100, an unset max 599.
		lo, hi := int(x.Status.GetMin()), int(x.Status.GetMax())
		if lo == 0 {
			lo = 100
		}
		if hi == 0 {
			hi = 599
		}
		if lo > hi {
			return responseMatch{}, fmt.Errorf("%s.status: min %d > max %d", path, lo, hi)
		}
		return responseMatch{kind: matchPath, min: lo, max: hi}, nil
	}
	return responseMatch{}, fmt.Errorf("%s: unknown match type %T", path, m.Match)
}

func compileResponseSeq(path string, ms []*destinationv1.ResponseMatch) ([]responseMatch, error) {
	out := make([]responseMatch, 0, len(ms))
	for i, m := range ms {
		c, err := compileResponseMatch(fmt.Sprintf("%s[%d]", path, i), m)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (m *responseMatch) matches(status int) bool {
	switch m.kind {
	case matchAll:
		for i := range m.subs {
			if !m.subs[i].matches(status) {
				return false
			}
		}
		return true
	case matchAny:
		for i := range m.subs {
			if m.subs[i].matches(status) {
				return true
			}
		}
		return false
	case matchNot:
		return !m.subs[0].matches(status)
	case matchPath:
		return m.min <= status && status <= m.max
	}
	return false
}

// grpcFailure holds the gRPC codes Linkerd classifies as failures: Unknown,
// DeadlineExceeded, PermissionDenied, Internal, Unavailable, DataLoss.
var grpcFailure = [17]bool{2: true, 4: true, 7: true, 13: true, 14: true, 15: true}

// Failed classifies one response of a request on route r (nil: no route):
// a proxy error (failed to get a response, proxyErr true) is always a
// failure; otherwise the route's first matching response class decides; with
// none, a 5xx status or a gRPC failure status (grpcStatus ≥ 0; -1 for
// non-gRPC) is a failure. It can be called at the response head (grpcStatus
// unknown: -1) to decide a retry, and again with the trailers' status.
func (r *Route) Failed(status, grpcStatus int, proxyErr bool) bool {
	if proxyErr || status == 0 {
		return true
	}
	if r != nil {
		for i := range r.classes {
			if r.classes[i].cond.matches(status) {
				return r.classes[i].failure
			}
		}
	}
	if status >= 500 {
		return true
	}
	return grpcStatus > 0 && grpcStatus < len(grpcFailure) && grpcFailure[grpcStatus]
}
