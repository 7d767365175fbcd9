package routes

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/weftmesh/weft/proxy/httproute"
)

// Condition reasons written in status.parents[].conditions.
const (
	ReasonAccepted         = "Accepted"
	ReasonNoMatchingParent = "NoMatchingParent"
	ReasonUnsupported      = "UnsupportedValue"
	ReasonResolvedRefs     = "ResolvedRefs"
	ReasonBackendNotFound  = "BackendNotFound"
	ReasonInvalidKind      = "InvalidKind"
)

// Lookup is what compiling needs from the cluster.
type Lookup struct {
	ServiceExists func(ns, name string) bool
	Fault         func(ns, name string) (*faultSpec, bool)
	ClusterDomain string
}

// verdict is the outcome for one route: its compiled spec (nil when not
// accepted) and the two conditions.
type verdict struct {
	spec            *httproute.RouteSpec
	accepted        bool
	acceptedReason  string
	acceptedMessage string
	resolved        bool
	resolvedReason  string
	resolvedMessage string
}

var knownRuleFields = map[string]bool{"name": true, "matches": true, "filters": true, "backendRefs": true, "timeouts": true, "retry": true}

// compileRoute validates one route's rules. Unknown backends keep their share
// (answered 500) and set ResolvedRefs False; unsupported fields reject the
// route (Accepted False, reason UnsupportedValue).
func compileRoute(kind httproute.Kind, ns, name string, created time.Time, raw []map[string]any, lk Lookup) verdict {
	v := verdict{accepted: true, acceptedReason: ReasonAccepted, acceptedMessage: "route accepted by weft", resolved: true, resolvedReason: ReasonResolvedRefs, resolvedMessage: "all references resolved"}
	reject := func(format string, a ...any) verdict {
		v.accepted, v.acceptedReason, v.acceptedMessage = false, ReasonUnsupported, fmt.Sprintf(format, a...)
		v.spec = nil
		return v
	}
	unresolved := func(reason, format string, a ...any) {
		if v.resolved {
			v.resolved, v.resolvedReason, v.resolvedMessage = false, reason, fmt.Sprintf(format, a...)
		}
	}
	rs := httproute.RouteSpec{Kind: kind, Namespace: ns, Name: name, Created: created}
	for i, m := range raw {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !knownRuleFields[k] {
				return reject("rule %d: field %q is not supported by weft", i, k)
			}
		}
		b, _ := json.Marshal(m)
		var r rule
		if err := json.Unmarshal(b, &r); err != nil {
			return reject("rule %d: %v", i, err)
		}
		var err error
		if kind == httproute.KindGRPC {
			var gm struct {
				Matches []grpcMatch `json:"matches"`
			}
			err = json.Unmarshal(b, &gm)
			r.GRPCMatches = gm.Matches
		} else {
			var hm struct {
				Matches []httpMatch `json:"matches"`
			}
			err = json.Unmarshal(b, &hm)
			r.Matches = hm.Matches
		}
		if err != nil {
			return reject("rule %d matches: %v", i, err)
		}
		spec, err := compileRule(kind, ns, r, lk, unresolved)
		if err != nil {
			return reject("rule %d: %v", i, err)
		}
		rs.Rules = append(rs.Rules, spec)
	}
	if _, err := httproute.Compile([]httproute.RouteSpec{rs}, httproute.Options{}); err != nil {
		return reject("%v", err)
	}
	v.spec = &rs
	return v
}

func authority(name, ns string, port int, domain string) string {
	return fmt.Sprintf("%s.%s.svc.%s:%d", name, ns, domain, port)
}

func compileBackend(ns string, b backendRef, lk Lookup, unresolved func(string, string, ...any)) (httproute.BackendSpec, error) {
	if len(b.Filters) > 0 {
		return httproute.BackendSpec{}, fmt.Errorf("backendRef %s: backend filters are not supported by weft", b.Name)
	}
	bns := ns
	if b.Namespace != nil && *b.Namespace != "" {
		bns = *b.Namespace
	}
	w := 1
	if b.Weight != nil {
		w = *b.Weight
	}
	out := httproute.BackendSpec{Name: b.Name, Namespace: bns, Weight: w}
	if b.Port != nil {
		out.Port = *b.Port
	}
	switch {
	case b.Group != nil && *b.Group != "" || b.Kind != nil && *b.Kind != "Service":
		out.Invalid = true
		unresolved(ReasonInvalidKind, "backendRef %s: only core Services are supported", b.Name)
	case bns != ns:
		out.Invalid = true // cross-namespace refs need a ReferenceGrant, which weft does not read yet
		unresolved("RefNotPermitted", "backendRef %s/%s: cross-namespace backends are not supported yet", bns, b.Name)
	case out.Port == 0:
		out.Invalid = true
		unresolved(ReasonUnsupported, "backendRef %s: port is required", b.Name)
	case !lk.ServiceExists(bns, b.Name):
		out.Invalid = true
		unresolved(ReasonBackendNotFound, "backendRef %s/%s: Service not found", bns, b.Name)
	default:
		out.Authority = authority(b.Name, bns, out.Port, lk.ClusterDomain)
	}
	return out, nil
}

func parseDuration(what string, s *string) (time.Duration, error) {
	if s == nil || *s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", what, *s, err)
	}
	return d, nil
}
