package httproute

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// RouteRef names the route that matched (route_name, route_kind labels).
type RouteRef struct {
	Kind      Kind
	Namespace string
	Name      string
	Rule      int // index of the rule within the route
}

// MirrorTarget is one mirror the adapter hands to Mirror.Offer.
type MirrorTarget struct {
	Backend Backend
}

// Decision is what the pipeline does with a routed request. When Redirect,
// Abort or Status is set the proxy answers itself (after Delay) and sends
// nothing upstream; otherwise it sends to Backend with Timeouts and Retry.
type Decision struct {
	Route           RouteRef
	Backend         Backend
	Redirect        *Redirect
	Abort           *Abort
	Status          int // 500 when the chosen backend is invalid or no backend has weight
	Delay           time.Duration
	ResponseHeaders *HeaderModifier // apply to the response before it goes to the client
	Mirrors         []MirrorTarget
	Timeouts        Timeouts
	Retry           *Retry
}

type rule struct {
	ref      RouteRef
	filters  []FilterSpec
	fault    *fault
	backends weighted
	timeouts Timeouts
	retry    *Retry
}

// entry is one (match, rule) pair in precedence order.
type entry struct {
	m       match
	r       *rule
	created time.Time
	order   int // route name order, then rule index, then match index
}

// Table is an immutable compiled route table for one Service.
type Table struct {
	entries []entry
	rnd     func(uint32) uint32
}

// Options tune Compile.
type Options struct {
	// Rand returns a uniform value in [0,n); nil uses math/rand/v2.
	Rand func(n uint32) uint32
}

// Compile validates and orders the routes. A route with an invalid rule is
// rejected as a whole, with an error naming it.
func Compile(routes []RouteSpec, o Options) (*Table, error) {
	t := &Table{rnd: o.Rand}
	if t.rnd == nil {
		t.rnd = rand.Uint32N
	}
	sorted := append([]RouteSpec(nil), routes...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	order := 0
	for _, rs := range sorted {
		for ri, spec := range rs.Rules {
			r, err := compileRule(rs, ri, spec)
			if err != nil {
				return nil, fmt.Errorf("%s %s/%s rule %d: %w", rs.Kind, rs.Namespace, rs.Name, ri, err)
			}
			ms := spec.Matches
			if len(ms) == 0 {
				ms = []MatchSpec{{}}
			}
			for _, s := range ms {
				m, err := compileMatch(rs.Kind, s)
				if err != nil {
					return nil, fmt.Errorf("%s %s/%s rule %d: %w", rs.Kind, rs.Namespace, rs.Name, ri, err)
				}
				t.entries = append(t.entries, entry{m: m, r: r, created: rs.Created, order: order})
				order++
			}
		}
	}
	sort.SliceStable(t.entries, func(i, j int) bool { return less(&t.entries[i], &t.entries[j]) })
	return t, nil
}

// less is the specification's precedence: gRPC matches (which only match
// gRPC requests) first, then the match rank, then route age and name, then
// rule and match order.
func less(a, b *entry) bool {
	if a.m.grpc != b.m.grpc {
		return a.m.grpc
	}
	for k := range a.m.rank {
		if a.m.rank[k] != b.m.rank[k] {
			return a.m.rank[k] > b.m.rank[k]
		}
	}
	return a.order < b.order
}

func compileRule(rs RouteSpec, ri int, s RuleSpec) (*rule, error) {
	r := &rule{ref: RouteRef{Kind: rs.Kind, Namespace: rs.Namespace, Name: rs.Name, Rule: ri}, filters: s.Filters, timeouts: s.Timeouts, retry: s.Retry}
	var err error
	if r.backends, err = compileBackends(s.Backends); err != nil {
		return nil, err
	}
	if t := s.Timeouts; t.Request > 0 && t.BackendRequest > t.Request {
		return nil, fmt.Errorf("timeouts.backendRequest %v exceeds timeouts.request %v", t.BackendRequest, t.Request)
	}
	redirect, rewrite := false, false
	for _, f := range s.Filters {
		switch f.Type {
		case FilterFault:
			if f.Fault == nil {
				return nil, fmt.Errorf("HTTPFault filter without a fault")
			}
			if r.fault, err = compileFault(f.Fault); err != nil {
				return nil, err
			}
		case FilterRedirect:
			redirect = f.Redirect != nil
		case FilterRewrite:
			rewrite = f.Rewrite != nil
		case FilterMirror:
			if f.Mirror == nil {
				return nil, fmt.Errorf("RequestMirror filter without a backend")
			}
			m := f.Mirror
			if m.Percent != nil && (*m.Percent < 0 || *m.Percent > 100) || m.Denominator < 0 || m.Numerator > m.Denominator {
				return nil, fmt.Errorf("RequestMirror share must be percent 0..100 or numerator <= denominator")
			}
		case FilterRequestHeader, FilterResponseHeader:
		default:
			return nil, fmt.Errorf("unsupported filter %q", f.Type)
		}
	}
	if redirect && rewrite {
		return nil, fmt.Errorf("RequestRedirect and URLRewrite cannot be used on the same rule")
	}
	return r, nil
}

// Len is the number of compiled matches.
func (t *Table) Len() int { return len(t.entries) }

// Route finds the highest-precedence match for r, applies its request
// filters to r and returns the decision. false means no route matched (the
// GAMMA answer is 404).
func (t *Table) Route(r *Request) (Decision, bool) {
	for i := range t.entries {
		e := &t.entries[i]
		if e.m.matches(r) {
			return t.apply(e, r), true
		}
	}
	return Decision{}, false
}

func (t *Table) apply(e *entry, r *Request) Decision {
	d := Decision{Route: e.r.ref, Timeouts: e.r.timeouts, Retry: e.r.retry}
	prefix := ""
	if e.m.kind == PathPrefix {
		prefix = e.m.path
	}
	if e.r.fault != nil {
		if d.Abort, d.Delay = e.r.fault.roll(t.rnd); d.Abort != nil {
			return d
		}
	}
	for _, f := range e.r.filters {
		switch f.Type {
		case FilterRequestHeader:
			f.RequestHeader.Apply(r.Header)
		case FilterResponseHeader:
			d.ResponseHeaders = f.ResponseHeader
		case FilterRedirect:
			d.Redirect = f.Redirect.build(r, prefix)
			return d
		case FilterRewrite:
			if f.Rewrite.Hostname != "" {
				r.Host, r.Rewritten = f.Rewrite.Hostname, true
			}
			if np := f.Rewrite.Path.newPath(r.Path, prefix); np != r.Path {
				r.Path, r.Rewritten = np, true
			}
		case FilterMirror:
			if mirrorRoll(f.Mirror, t.rnd) {
				d.Mirrors = append(d.Mirrors, MirrorTarget{Backend: f.Mirror.Backend.backend()})
			}
		}
	}
	b, ok := e.r.backends.pick(t.rnd)
	switch {
	case !ok || b.Invalid:
		d.Status = 500
		d.Backend = b.backend()
	default:
		d.Backend = b.backend()
	}
	return d
}

func mirrorRoll(m *MirrorSpec, rnd func(uint32) uint32) bool {
	switch {
	case m.Percent != nil:
		return int(rnd(100)) < *m.Percent
	case m.Denominator > 0:
		return int(rnd(uint32(m.Denominator))) < m.Numerator
	}
	return true
}
