package profile

import (
	"errors"
	"fmt"
	"strings"
	"time"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
)

// Profile is a compiled destination profile. It is immutable except for its
// budget's tokens and safe for concurrent use; a nil *Profile has no routes,
// no budget and no split.
type Profile struct {
	// Name is the fully qualified name the profile applies to; may be empty.
	Name string
	// Opaque is true when the port is declared opaque (no detection).
	Opaque bool
	// Routes in order; the first match wins.
	Routes []*Route
	// Budget governs every retry to this destination; never nil for a
	// compiled profile (the default budget when the profile names none).
	Budget *Budget
	// Split is the dstOverrides traffic split; nil when there is none.
	Split *Split
}

// Route is one compiled route.
type Route struct {
	// Name is the rt_route label.
	Name string
	// Retryable marks the route's requests safe to retry (isRetryable).
	Retryable bool
	// Timeout bounds the whole request, retries included; 0 means none.
	Timeout time.Duration

	cond    requestMatch
	classes []responseClass
}

// Options tune compilation. The zero value uses the process clock.
type Options struct {
	// Clock returns monotonic nanoseconds for the retry budget; nil means
	// the process clock.
	Clock func() int64
}

// Compile validates and compiles p; a nil p compiles to an empty profile
// with the default budget. The error names the offending field.
func Compile(p *destinationv1.DestinationProfile, o Options) (*Profile, error) {
	out := &Profile{Name: p.GetFullyQualifiedName(), Opaque: p.GetOpaqueProtocol()}
	var errs []error
	for i, r := range p.GetRoutes() {
		path := fmt.Sprintf("routes[%d]", i)
		rt := &Route{Name: r.GetName(), Retryable: r.GetIsRetryable(), Timeout: r.GetTimeout().AsDuration()}
		if rt.Timeout < 0 {
			errs = append(errs, fmt.Errorf("%s.timeout: negative", path))
		}
		var err error
		if rt.cond, err = compileRequestMatch(path+".condition", r.GetCondition()); err != nil {
			errs = append(errs, err)
		}
		for j, c := range r.GetResponseClasses() {
			cm, err := compileResponseMatch(fmt.Sprintf("%s.responseClasses[%d].condition", path, j), c.GetCondition())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			rt.classes = append(rt.classes, responseClass{cond: cm, failure: c.GetIsFailure()})
		}
		out.Routes = append(out.Routes, rt)
	}
	ratio, minPS, ttl := DefaultRetryRatio, uint32(DefaultMinRetriesPerSecond), DefaultRetryTTL
	if b := p.GetRetryBudget(); b != nil {
		ratio, minPS = float64(b.GetRetryRatio()), b.GetMinRetriesPerSecond()
		ttl = 0
		if b.GetTtl() != nil {
			ttl = b.GetTtl().AsDuration()
		}
	}
	out.Budget = NewBudget(ratio, minPS, ttl, o.Clock)
	if ds := p.GetDstOverrides(); len(ds) > 0 {
		s, err := NewSplit(ds)
		if err != nil {
			errs = append(errs, err)
		}
		out.Split = s
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("profile %q: %w", out.Name, errors.Join(errs...))
	}
	return out, nil
}

// Match returns the first route matching method and path (without the
// query), nil when none does or p is nil. It does not allocate.
func (p *Profile) Match(method, path string) *Route {
	if p == nil {
		return nil
	}
	for _, r := range p.Routes {
		if r.cond.matches(method, path) {
			return r
		}
	}
	return nil
}

// RouteName is r's name, "" for a nil route.
func (r *Route) RouteName() string {
	if r == nil {
		return ""
	}
	return r.Name
}

// RouteTimeout is r's timeout, 0 for a nil route.
func (r *Route) RouteTimeout() time.Duration {
	if r == nil {
		return 0
	}
	return r.Timeout
}

// Split is a weighted choice between authorities (dstOverrides).
type Split struct {
	auths []string
	cum   []uint32 // cumulative weights
}

// NewSplit builds a split; zero weights are dropped; at least one positive
// weight and valid host:port authorities are required.
func NewSplit(ds []*destinationv1.WeightedDst) (*Split, error) {
	s := &Split{}
	var total uint64
	for i, d := range ds {
		a := strings.ToLower(d.GetAuthority())
		if h, p, ok := strings.Cut(a, ":"); !ok || h == "" || p == "" {
			return nil, fmt.Errorf("dstOverrides[%d].authority %q: want host:port", i, d.GetAuthority())
		}
		if d.GetWeight() == 0 {
			continue
		}
		total += uint64(d.GetWeight())
		if total > 1<<31 {
			return nil, fmt.Errorf("dstOverrides: total weight too large")
		}
		s.auths = append(s.auths, a)
		s.cum = append(s.cum, uint32(total))
	}
	if total == 0 {
		return nil, errors.New("dstOverrides: no positive weight")
	}
	return s, nil
}

// Pick chooses an authority with probability weight / total.
func (s *Split) Pick() string { return s.pick(randUint32N(s.cum[len(s.cum)-1])) }

func (s *Split) pick(x uint32) string {
	for i, c := range s.cum {
		if x < c {
			return s.auths[i]
		}
	}
	return s.auths[len(s.auths)-1]
}

// Authorities lists the split's targets (with a positive weight).
func (s *Split) Authorities() []string { return s.auths }
