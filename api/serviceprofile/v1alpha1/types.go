// Package v1alpha1 holds the ServiceProfile custom resource
// (serviceprofiles.weft.io/v1alpha1). Its spec is field-for-field the spec of
// Linkerd's ServiceProfile v1alpha2, so a profile is ported by changing its
// apiVersion.
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group, version and resource of the CRD.
const (
	Group    = "weft.io"
	Version  = "v1alpha1"
	Resource = "serviceprofiles"
	Kind     = "ServiceProfile"
)

// GroupVersionResource of ServiceProfiles, for dynamic clients and informers.
var GroupVersionResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// ServiceProfile describes a service's routes and how the proxy treats them.
// Its name is the fully qualified authority it applies to, e.g.
// books.demo.svc.cluster.local.
type ServiceProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ServiceProfileSpec `json:"spec"`
}

// ServiceProfileSpec is the profile proper.
type ServiceProfileSpec struct {
	// Routes in order; a request counts toward the first route it matches.
	Routes []*RouteSpec `json:"routes,omitempty"`
	// RetryBudget bounds retries to this service; nil means the default
	// budget (ratio 0.2, 10 retries/s, ttl 10s).
	RetryBudget *RetryBudget `json:"retryBudget,omitempty"`
	// DstOverrides splits traffic between authorities by weight; empty means
	// all traffic goes to the profile's own authority.
	DstOverrides []*WeightedDst `json:"dstOverrides,omitempty"`
	// OpaquePorts are ports whose traffic is never protocol-detected.
	OpaquePorts []string `json:"opaquePorts,omitempty"`
}

// RouteSpec is one named route.
type RouteSpec struct {
	Name            string           `json:"name"`
	Condition       *RequestMatch    `json:"condition"`
	ResponseClasses []*ResponseClass `json:"responseClasses,omitempty"`
	// IsRetryable allows retries of failed requests on this route.
	IsRetryable bool `json:"isRetryable,omitempty"`
	// Timeout bounds the whole request including retries (Go duration
	// syntax); "" means no route timeout.
	Timeout string `json:"timeout,omitempty"`
}

// RequestMatch matches requests; set fields are ANDed together.
type RequestMatch struct {
	All       []*RequestMatch `json:"all,omitempty"`
	Any       []*RequestMatch `json:"any,omitempty"`
	Not       *RequestMatch   `json:"not,omitempty"`
	PathRegex string          `json:"pathRegex,omitempty"`
	Method    string          `json:"method,omitempty"`
}

// ResponseClass classifies responses that match Condition.
type ResponseClass struct {
	Condition *ResponseMatch `json:"condition"`
	IsFailure bool           `json:"isFailure,omitempty"`
}

// ResponseMatch matches responses; set fields are ANDed together.
type ResponseMatch struct {
	All    []*ResponseMatch `json:"all,omitempty"`
	Any    []*ResponseMatch `json:"any,omitempty"`
	Not    *ResponseMatch   `json:"not,omitempty"`
	Status *Range           `json:"status,omitempty"`
}

// Range is an inclusive range of status codes; a zero bound is open.
type Range struct {
	Min uint32 `json:"min,omitempty"`
	Max uint32 `json:"max,omitempty"`
}

// RetryBudget allows retries as a share of original requests.
type RetryBudget struct {
	RetryRatio          float32 `json:"retryRatio"`
	MinRetriesPerSecond uint32  `json:"minRetriesPerSecond"`
	TTL                 string  `json:"ttl"`
}

// WeightedDst is a weighted alternate destination.
type WeightedDst struct {
	Authority string            `json:"authority"`
	Weight    resource.Quantity `json:"weight"`
}
