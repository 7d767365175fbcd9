package httproute

import "time"

// Kind is the Gateway API route kind a rule came from (the route_kind label).
type Kind string

// Route kinds.
const (
	KindHTTP Kind = "HTTPRoute"
	KindGRPC Kind = "GRPCRoute"
)

// RouteSpec is one route as the destination service sends it: already
// validated and resolved by the route controller.
type RouteSpec struct {
	Kind      Kind       `json:"kind"`
	Namespace string     `json:"namespace"`
	Name      string     `json:"name"`
	Created   time.Time  `json:"created"` // creation timestamp: older routes win ties
	Rules     []RuleSpec `json:"rules"`
}

// RuleSpec is one rule of a route.
type RuleSpec struct {
	Name     string        `json:"name,omitempty"`
	Matches  []MatchSpec   `json:"matches,omitempty"` // none: everything (PathPrefix "/")
	Filters  []FilterSpec  `json:"filters,omitempty"`
	Backends []BackendSpec `json:"backends,omitempty"`
	Timeouts Timeouts      `json:"timeouts,omitempty"`
	Retry    *Retry        `json:"retry,omitempty"`
}

// PathKind is how a path is matched.
type PathKind string

// Path and value match kinds.
const (
	PathExact  PathKind = "Exact"
	PathPrefix PathKind = "PathPrefix"
	PathRegex  PathKind = "RegularExpression"
)

// MatchSpec is one HTTPRouteMatch (or, for GRPCRoute, one GRPCRouteMatch:
// Service and Method are set instead of Path).
type MatchSpec struct {
	PathKind PathKind    `json:"pathKind,omitempty"`
	Path     string      `json:"path,omitempty"`
	Method   string      `json:"method,omitempty"`
	Headers  []ValueSpec `json:"headers,omitempty"`
	Query    []ValueSpec `json:"query,omitempty"`
	// GRPCRoute only: Exact service and method names (either may be empty).
	Service  string `json:"service,omitempty"`
	GRPCName string `json:"grpcMethod,omitempty"`
}

// ValueSpec matches one header or query parameter, Exact (default) or
// RegularExpression.
type ValueSpec struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Regex bool   `json:"regex,omitempty"`
}

// FilterType names a filter.
type FilterType string

// Filter types.
const (
	FilterRequestHeader  FilterType = "RequestHeaderModifier"
	FilterResponseHeader FilterType = "ResponseHeaderModifier"
	FilterRedirect       FilterType = "RequestRedirect"
	FilterRewrite        FilterType = "URLRewrite"
	FilterMirror         FilterType = "RequestMirror"
	FilterFault          FilterType = "HTTPFault" // ExtensionRef to weft.io HTTPFault
)

// FilterSpec is one filter; exactly the field of its Type is set.
type FilterSpec struct {
	Type           FilterType      `json:"type"`
	RequestHeader  *HeaderModifier `json:"requestHeader,omitempty"`
	ResponseHeader *HeaderModifier `json:"responseHeader,omitempty"`
	Redirect       *RedirectSpec   `json:"redirect,omitempty"`
	Rewrite        *RewriteSpec    `json:"rewrite,omitempty"`
	Mirror         *MirrorSpec     `json:"mirror,omitempty"`
	Fault          *FaultSpec      `json:"fault,omitempty"`
}

// Header is a name and value.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HeaderModifier is the Gateway API header modifier: Set replaces, Add
// appends, Remove deletes (applied in that order).
type HeaderModifier struct {
	Set    []Header `json:"set,omitempty"`
	Add    []Header `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// PathModifier is ReplaceFullPath or ReplacePrefixMatch.
type PathModifier struct {
	FullPath    *string `json:"replaceFullPath,omitempty"`
	PrefixMatch *string `json:"replacePrefixMatch,omitempty"`
}

// RedirectSpec is RequestRedirect; empty fields keep the request's value.
type RedirectSpec struct {
	Scheme     string        `json:"scheme,omitempty"`
	Hostname   string        `json:"hostname,omitempty"`
	Path       *PathModifier `json:"path,omitempty"`
	Port       int           `json:"port,omitempty"`
	StatusCode int           `json:"statusCode,omitempty"` // 301 or 302 (default)
}

// RewriteSpec is URLRewrite.
type RewriteSpec struct {
	Hostname string        `json:"hostname,omitempty"`
	Path     *PathModifier `json:"path,omitempty"`
}

// MirrorSpec is RequestMirror: the share of requests copied is Percent, or
// Numerator/Denominator; neither set means all.
type MirrorSpec struct {
	Backend     BackendSpec `json:"backend"`
	Percent     *int        `json:"percent,omitempty"`
	Numerator   int         `json:"numerator,omitempty"`
	Denominator int         `json:"denominator,omitempty"`
}

// FaultSpec is weft's HTTPFault: abort a share of requests with an HTTP
// status (or gRPC code), delay a share by FixedDelay.
type FaultSpec struct {
	AbortPercent int           `json:"abortPercent,omitempty"`
	HTTPStatus   int           `json:"httpStatus,omitempty"`
	GRPCCode     *int          `json:"grpcCode,omitempty"`
	DelayPercent int           `json:"delayPercent,omitempty"`
	FixedDelay   time.Duration `json:"fixedDelay,omitempty"`
}

// BackendSpec is a weighted backendRef resolved to an authority. An invalid
// backend (unknown Service) keeps its weight: its share gets HTTP 500, as the
// specification requires.
type BackendSpec struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Port      int    `json:"port"`
	Weight    int    `json:"weight"`
	Authority string `json:"authority"` // name.namespace.svc.cluster.local:port
	Invalid   bool   `json:"invalid,omitempty"`
}

// Timeouts are GEP-1742's: Request bounds the whole request including
// retries, BackendRequest each attempt. Zero means none.
type Timeouts struct {
	Request        time.Duration `json:"request,omitempty"`
	BackendRequest time.Duration `json:"backendRequest,omitempty"`
}

// Retry is GEP-1731's HTTPRouteRetry: up to Attempts retries after failures
// whose status is in Codes (5xx-style codes for HTTP, gRPC code numbers for
// GRPCRoute), Backoff apart. The pipeline spends weft's retry budget
// (proxy/profile.Budget) for each retry.
type Retry struct {
	Attempts int           `json:"attempts"`
	Backoff  time.Duration `json:"backoff,omitempty"`
	Codes    []int         `json:"codes,omitempty"`
}
