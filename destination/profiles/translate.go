// Package profiles watches ServiceProfiles and translates them into the
// protobuf profiles the destination service streams to proxies.
package profiles

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
)

// Default retry budget (Linkerd's).
const (
	DefaultRetryRatio          = 0.2
	DefaultMinRetriesPerSecond = 10
	DefaultRetryTTL            = 10 * time.Second
)

// DefaultRetryBudget is sent when a profile names none.
func DefaultRetryBudget() *destinationv1.RetryBudget {
	return &destinationv1.RetryBudget{
		RetryRatio:          DefaultRetryRatio,
		MinRetriesPerSecond: DefaultMinRetriesPerSecond,
		Ttl:                 durationpb.New(DefaultRetryTTL),
	}
}

// Translate validates spec and converts it. The error lists every problem,
// each with the path of the offending field.
func Translate(fqdn string, spec *sp.ServiceProfileSpec) (*destinationv1.DestinationProfile, error) {
	t := translator{}
	out := &destinationv1.DestinationProfile{FullyQualifiedName: fqdn, RetryBudget: DefaultRetryBudget()}
	for i, r := range spec.Routes {
		if route := t.route(fmt.Sprintf("routes[%d]", i), r); route != nil {
			out.Routes = append(out.Routes, route)
		}
	}
	if b := spec.RetryBudget; b != nil {
		out.RetryBudget = t.budget(b)
	}
	for i, d := range spec.DstOverrides {
		if w := t.dst(fmt.Sprintf("dstOverrides[%d]", i), d); w != nil {
			out.DstOverrides = append(out.DstOverrides, w)
		}
	}
	for i, p := range spec.OpaquePorts {
		if !validPortRange(p) {
			t.fail("opaquePorts[%d]: %q is not a port or a port range", i, p)
		}
	}
	if len(t.errs) > 0 {
		return nil, errors.Join(t.errs...)
	}
	return out, nil
}

type translator struct{ errs []error }

func (t *translator) fail(format string, args ...any) {
	t.errs = append(t.errs, fmt.Errorf(format, args...))
}

func (t *translator) route(path string, r *sp.RouteSpec) *destinationv1.Route {
	if r == nil {
		t.fail("%s: empty route", path)
		return nil
	}
	if r.Name == "" {
		t.fail("%s.name: required", path)
	}
	out := &destinationv1.Route{Name: r.Name, IsRetryable: r.IsRetryable}
	if r.Condition == nil {
		t.fail("%s.condition: required", path)
	} else {
		out.Condition = t.requestMatch(path+".condition", r.Condition)
	}
	for i, rc := range r.ResponseClasses {
		p := fmt.Sprintf("%s.responseClasses[%d]", path, i)
		if rc == nil || rc.Condition == nil {
			t.fail("%s.condition: required", p)
			continue
		}
		out.ResponseClasses = append(out.ResponseClasses, &destinationv1.ResponseClass{
			Condition: t.responseMatch(p+".condition", rc.Condition), IsFailure: rc.IsFailure,
		})
	}
	if r.Timeout != "" {
		d, err := time.ParseDuration(r.Timeout)
		if err != nil || d <= 0 {
			t.fail("%s.timeout: %q is not a positive duration", path, r.Timeout)
		} else {
			out.Timeout = durationpb.New(d)
		}
	}
	return out
}

// requestMatch converts a condition; several set fields are ANDed.
func (t *translator) requestMatch(path string, m *sp.RequestMatch) *destinationv1.RequestMatch {
	var parts []*destinationv1.RequestMatch
	if m.PathRegex != "" {
		// Linkerd matches the whole path: anchor the expression.
		if _, err := regexp.Compile("^(?:" + m.PathRegex + ")$"); err != nil {
			t.fail("%s.pathRegex: %v", path, err)
		}
		parts = append(parts, &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_PathRegex{PathRegex: m.PathRegex}})
	}
	if m.Method != "" {
		parts = append(parts, &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Method{Method: strings.ToUpper(m.Method)}})
	}
	if len(m.All) > 0 {
		parts = append(parts, &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_All{All: t.requestSeq(path+".all", m.All)}})
	}
	if len(m.Any) > 0 {
		parts = append(parts, &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Any{Any: t.requestSeq(path+".any", m.Any)}})
	}
	if m.Not != nil {
		parts = append(parts, &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Not{Not: t.requestMatch(path+".not", m.Not)}})
	}
	switch len(parts) {
	case 0:
		t.fail("%s: empty condition", path)
		return nil
	case 1:
		return parts[0]
	}
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_All{All: &destinationv1.RequestMatch_Seq{Matches: parts}}}
}

func (t *translator) requestSeq(path string, ms []*sp.RequestMatch) *destinationv1.RequestMatch_Seq {
	seq := &destinationv1.RequestMatch_Seq{}
	for i, m := range ms {
		if m == nil {
			t.fail("%s[%d]: empty condition", path, i)
			continue
		}
		seq.Matches = append(seq.Matches, t.requestMatch(fmt.Sprintf("%s[%d]", path, i), m))
	}
	return seq
}

func (t *translator) responseMatch(path string, m *sp.ResponseMatch) *destinationv1.ResponseMatch {
	var parts []*destinationv1.ResponseMatch
	if s := m.Status; s != nil {
		if (s.Min != 0 && (s.Min < 100 || s.Min > 599)) || (s.Max != 0 && (s.Max < 100 || s.Max > 599)) || (s.Min != 0 && s.Max != 0 && s.Min > s.Max) {
			t.fail("%s.status: range %d-%d is not within 100-599 with min <= max", path, s.Min, s.Max)
		}
		lo, hi := s.Min, s.Max
		if lo == 0 && hi == 0 {
			t.fail("%s.status: needs min or max", path)
		}
		if hi == 0 {
			hi = lo // only min: exactly that code (Linkerd's rule)
		}
		if lo == 0 {
			lo = hi
		}
		parts = append(parts, &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Status{Status: &destinationv1.HttpStatusRange{Min: lo, Max: hi}}})
	}
	if len(m.All) > 0 {
		parts = append(parts, &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_All{All: t.responseSeq(path+".all", m.All)}})
	}
	if len(m.Any) > 0 {
		parts = append(parts, &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Any{Any: t.responseSeq(path+".any", m.Any)}})
	}
	if m.Not != nil {
		parts = append(parts, &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Not{Not: t.responseMatch(path+".not", m.Not)}})
	}
	switch len(parts) {
	case 0:
		t.fail("%s: empty condition", path)
		return nil
	case 1:
		return parts[0]
	}
	return &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_All{All: &destinationv1.ResponseMatch_Seq{Matches: parts}}}
}

func (t *translator) responseSeq(path string, ms []*sp.ResponseMatch) *destinationv1.ResponseMatch_Seq {
	seq := &destinationv1.ResponseMatch_Seq{}
	for i, m := range ms {
		if m == nil {
			t.fail("%s[%d]: empty condition", path, i)
			continue
		}
		seq.Matches = append(seq.Matches, t.responseMatch(fmt.Sprintf("%s[%d]", path, i), m))
	}
	return seq
}

func (t *translator) budget(b *sp.RetryBudget) *destinationv1.RetryBudget {
	ttl, err := time.ParseDuration(b.TTL)
	if err != nil || ttl <= 0 {
		t.fail("retryBudget.ttl: %q is not a positive duration", b.TTL)
	}
	if b.RetryRatio < 0 {
		t.fail("retryBudget.retryRatio: %v is negative", b.RetryRatio)
	}
	return &destinationv1.RetryBudget{RetryRatio: b.RetryRatio, MinRetriesPerSecond: b.MinRetriesPerSecond, Ttl: durationpb.New(ttl)}
}

func (t *translator) dst(path string, d *sp.WeightedDst) *destinationv1.WeightedDst {
	if d == nil || d.Authority == "" {
		t.fail("%s.authority: required", path)
		return nil
	}
	// Weights are quantities ("1", "500m"); keep them as integer milli-units.
	w := d.Weight.MilliValue()
	if w < 0 || w > 1<<32-1 {
		t.fail("%s.weight: %s is out of range", path, d.Weight.String())
		return nil
	}
	return &destinationv1.WeightedDst{Authority: d.Authority, Weight: uint32(w)}
}

func validPortRange(s string) bool {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || a == 0 {
		return false
	}
	if !isRange {
		return true
	}
	b, err := strconv.ParseUint(hi, 10, 16)
	return err == nil && b >= a
}
