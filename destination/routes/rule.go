package routes

import (
	"fmt"

	"github.com/weftmesh/weft/proxy/httproute"
)

func values(vs []valueMatch) ([]httproute.ValueSpec, error) {
	out := make([]httproute.ValueSpec, 0, len(vs))
	for _, v := range vs {
		if v.Type != "" && v.Type != "Exact" && v.Type != "RegularExpression" {
			return nil, fmt.Errorf("match type %q for %s is not supported", v.Type, v.Name)
		}
		out = append(out, httproute.ValueSpec{Name: v.Name, Value: v.Value, Regex: v.Type == "RegularExpression"})
	}
	return out, nil
}

func compileMatches(kind httproute.Kind, r rule) ([]httproute.MatchSpec, error) {
	var out []httproute.MatchSpec
	for _, m := range r.Matches {
		s := httproute.MatchSpec{Method: m.Method, PathKind: httproute.PathPrefix, Path: "/"}
		if m.Path != nil {
			if m.Path.Type != "" {
				s.PathKind = httproute.PathKind(m.Path.Type)
			}
			if m.Path.Value != "" {
				s.Path = m.Path.Value
			}
		}
		var err error
		if s.Headers, err = values(m.Headers); err != nil {
			return nil, err
		}
		if s.Query, err = values(m.QueryParams); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	for _, m := range r.GRPCMatches {
		var s httproute.MatchSpec
		if m.Method != nil {
			if m.Method.Type != "" && m.Method.Type != "Exact" {
				return nil, fmt.Errorf("gRPC method match type %q is not supported (use Exact)", m.Method.Type)
			}
			s.Service, s.GRPCName = m.Method.Service, m.Method.Method
		}
		var err error
		if s.Headers, err = values(m.Headers); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func compileRule(kind httproute.Kind, ns string, r rule, lk Lookup, unresolved func(string, string, ...any)) (httproute.RuleSpec, error) {
	var s httproute.RuleSpec
	if r.Name != nil {
		s.Name = *r.Name
	}
	var err error
	if s.Matches, err = compileMatches(kind, r); err != nil {
		return s, err
	}
	for _, b := range r.BackendRefs {
		bs, err := compileBackend(ns, b, lk, unresolved)
		if err != nil {
			return s, err
		}
		s.Backends = append(s.Backends, bs)
	}
	for _, f := range r.Filters {
		fs, err := compileFilter(ns, f, lk, unresolved)
		if err != nil {
			return s, err
		}
		if fs != nil {
			s.Filters = append(s.Filters, *fs)
		}
	}
	if r.Timeouts != nil {
		if s.Timeouts.Request, err = parseDuration("timeouts.request", r.Timeouts.Request); err != nil {
			return s, err
		}
		if s.Timeouts.BackendRequest, err = parseDuration("timeouts.backendRequest", r.Timeouts.BackendRequest); err != nil {
			return s, err
		}
	}
	if r.Retry != nil {
		rt := &httproute.Retry{Codes: r.Retry.Codes, Attempts: 1}
		if r.Retry.Attempts != nil {
			rt.Attempts = *r.Retry.Attempts
		}
		if rt.Backoff, err = parseDuration("retry.backoff", r.Retry.Backoff); err != nil {
			return s, err
		}
		s.Retry = rt
	}
	return s, nil
}

func pathMod(p *pathModifier) *httproute.PathModifier {
	if p == nil {
		return nil
	}
	return &httproute.PathModifier{FullPath: p.ReplaceFullPath, PrefixMatch: p.ReplacePrefixMatch}
}

func headerMod(h *headerModifier) *httproute.HeaderModifier {
	if h == nil {
		return nil
	}
	out := &httproute.HeaderModifier{Remove: h.Remove}
	for _, x := range h.Set {
		out.Set = append(out.Set, httproute.Header{Name: x.Name, Value: x.Value})
	}
	for _, x := range h.Add {
		out.Add = append(out.Add, httproute.Header{Name: x.Name, Value: x.Value})
	}
	return out
}

func compileFilter(ns string, f filter, lk Lookup, unresolved func(string, string, ...any)) (*httproute.FilterSpec, error) {
	switch f.Type {
	case "RequestHeaderModifier":
		return &httproute.FilterSpec{Type: httproute.FilterRequestHeader, RequestHeader: headerMod(f.RequestHeaderModifier)}, nil
	case "ResponseHeaderModifier":
		return &httproute.FilterSpec{Type: httproute.FilterResponseHeader, ResponseHeader: headerMod(f.ResponseHeaderModifier)}, nil
	case "RequestRedirect":
		rr := f.RequestRedirect
		if rr == nil {
			return nil, fmt.Errorf("RequestRedirect filter without requestRedirect")
		}
		out := &httproute.RedirectSpec{Path: pathMod(rr.Path)}
		if rr.Scheme != nil {
			out.Scheme = *rr.Scheme
		}
		if rr.Hostname != nil {
			out.Hostname = *rr.Hostname
		}
		if rr.Port != nil {
			out.Port = *rr.Port
		}
		if rr.StatusCode != nil {
			out.StatusCode = *rr.StatusCode
		}
		return &httproute.FilterSpec{Type: httproute.FilterRedirect, Redirect: out}, nil
	case "URLRewrite":
		if f.URLRewrite == nil {
			return nil, fmt.Errorf("URLRewrite filter without urlRewrite")
		}
		out := &httproute.RewriteSpec{Path: pathMod(f.URLRewrite.Path)}
		if f.URLRewrite.Hostname != nil {
			out.Hostname = *f.URLRewrite.Hostname
		}
		return &httproute.FilterSpec{Type: httproute.FilterRewrite, Rewrite: out}, nil
	case "RequestMirror":
		m := f.RequestMirror
		if m == nil {
			return nil, fmt.Errorf("RequestMirror filter without requestMirror")
		}
		b, err := compileBackend(ns, m.BackendRef, lk, unresolved)
		if err != nil {
			return nil, err
		}
		out := &httproute.MirrorSpec{Backend: b, Percent: m.Percent}
		if m.Fraction != nil {
			out.Numerator, out.Denominator = m.Fraction.Numerator, 100
			if m.Fraction.Denominator != nil {
				out.Denominator = *m.Fraction.Denominator
			}
		}
		return &httproute.FilterSpec{Type: httproute.FilterMirror, Mirror: out}, nil
	case "ExtensionRef":
		return compileFault(ns, f, lk, unresolved)
	}
	return nil, fmt.Errorf("filter type %q is not supported by weft", f.Type)
}

func compileFault(ns string, f filter, lk Lookup, unresolved func(string, string, ...any)) (*httproute.FilterSpec, error) {
	e := f.ExtensionRef
	if e == nil || e.Group != "weft.io" || e.Kind != "HTTPFault" {
		unresolved(ReasonInvalidKind, "extensionRef must name a weft.io HTTPFault")
		return fail500, nil
	}
	fs, ok := lk.Fault(ns, e.Name)
	if !ok {
		unresolved(ReasonBackendNotFound, "HTTPFault %s/%s not found", ns, e.Name)
		return fail500, nil
	}
	out := &httproute.FaultSpec{}
	if a := fs.Abort; a != nil {
		out.AbortPercent, out.GRPCCode = a.Percent, a.GRPCCode
		if a.HTTPStatus != nil {
			out.HTTPStatus = *a.HTTPStatus
		}
	}
	if d := fs.Delay; d != nil {
		out.DelayPercent = d.Percent
		var err error
		if out.FixedDelay, err = parseDuration("HTTPFault delay.fixedDelay", &d.FixedDelay); err != nil {
			return nil, err
		}
	}
	return &httproute.FilterSpec{Type: httproute.FilterFault, Fault: out}, nil
}

// fail500 stands in for an unresolvable custom filter: the specification
// says such a filter is never skipped; its requests get HTTP 500.
var fail500 = &httproute.FilterSpec{Type: httproute.FilterFault, Fault: &httproute.FaultSpec{AbortPercent: 100, HTTPStatus: 500}}
