package routes

import "k8s.io/apimachinery/pkg/runtime/schema"

// The Gateway API and weft resources this controller reads. Only the fields
// weft uses are typed; an unknown rule field makes the route rejected.
var (
	HTTPRouteGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}
	GRPCRouteGVR = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "grpcroutes"}
	HTTPFaultGVR = schema.GroupVersionResource{Group: "weft.io", Version: "v1alpha1", Resource: "httpfaults"}
)

// DefaultControllerName is written in status.parents[].controllerName.
const DefaultControllerName = "weft.io/gateway-controller"

type parentRef struct {
	Group     *string `json:"group,omitempty"`
	Kind      *string `json:"kind,omitempty"`
	Namespace *string `json:"namespace,omitempty"`
	Name      string  `json:"name"`
	Port      *int    `json:"port,omitempty"`
}

type routeSpec struct {
	ParentRefs []parentRef      `json:"parentRefs"`
	Rules      []map[string]any `json:"rules"`
}

type pathMatch struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type valueMatch struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

type httpMatch struct {
	Path        *pathMatch   `json:"path"`
	Method      string       `json:"method"`
	Headers     []valueMatch `json:"headers"`
	QueryParams []valueMatch `json:"queryParams"`
}

type grpcMatch struct {
	Method *struct {
		Type    string `json:"type"`
		Service string `json:"service"`
		Method  string `json:"method"`
	} `json:"method"`
	Headers []valueMatch `json:"headers"`
}

type backendRef struct {
	Group     *string          `json:"group"`
	Kind      *string          `json:"kind"`
	Name      string           `json:"name"`
	Namespace *string          `json:"namespace"`
	Port      *int             `json:"port"`
	Weight    *int             `json:"weight"`
	Filters   []map[string]any `json:"filters"`
}

type header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type headerModifier struct {
	Set    []header `json:"set"`
	Add    []header `json:"add"`
	Remove []string `json:"remove"`
}

type pathModifier struct {
	Type               string  `json:"type"`
	ReplaceFullPath    *string `json:"replaceFullPath"`
	ReplacePrefixMatch *string `json:"replacePrefixMatch"`
}

type filter struct {
	Type                   string          `json:"type"`
	RequestHeaderModifier  *headerModifier `json:"requestHeaderModifier"`
	ResponseHeaderModifier *headerModifier `json:"responseHeaderModifier"`
	RequestRedirect        *struct {
		Scheme     *string       `json:"scheme"`
		Hostname   *string       `json:"hostname"`
		Path       *pathModifier `json:"path"`
		Port       *int          `json:"port"`
		StatusCode *int          `json:"statusCode"`
	} `json:"requestRedirect"`
	URLRewrite *struct {
		Hostname *string       `json:"hostname"`
		Path     *pathModifier `json:"path"`
	} `json:"urlRewrite"`
	RequestMirror *struct {
		BackendRef backendRef `json:"backendRef"`
		Percent    *int       `json:"percent"`
		Fraction   *struct {
			Numerator   int  `json:"numerator"`
			Denominator *int `json:"denominator"`
		} `json:"fraction"`
	} `json:"requestMirror"`
	ExtensionRef *struct {
		Group string `json:"group"`
		Kind  string `json:"kind"`
		Name  string `json:"name"`
	} `json:"extensionRef"`
}

type rule struct {
	Name        *string      `json:"name"`
	Matches     []httpMatch  `json:"-"`
	GRPCMatches []grpcMatch  `json:"-"`
	Filters     []filter     `json:"filters"`
	BackendRefs []backendRef `json:"backendRefs"`
	Timeouts    *struct {
		Request        *string `json:"request"`
		BackendRequest *string `json:"backendRequest"`
	} `json:"timeouts"`
	Retry *struct {
		Codes    []int   `json:"codes"`
		Attempts *int    `json:"attempts"`
		Backoff  *string `json:"backoff"`
	} `json:"retry"`
}

type faultSpec struct {
	Abort *struct {
		Percent    int  `json:"percent"`
		HTTPStatus *int `json:"httpStatus"`
		GRPCCode   *int `json:"grpcCode"`
	} `json:"abort"`
	Delay *struct {
		Percent    int    `json:"percent"`
		FixedDelay string `json:"fixedDelay"`
	} `json:"delay"`
}
