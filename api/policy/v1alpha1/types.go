// Package v1alpha1 holds the authorization custom resources of
// policy.weft.io/v1alpha1: Server, AuthorizationPolicy,
// MeshTLSAuthentication, NetworkAuthentication and HTTPRoute. Their specs are
// field-for-field those of Linkerd's policy.linkerd.io resources, so a policy
// is ported by changing its apiVersion (identities are SPIFFE IDs,
// spiffe://<trust-domain>/ns/<ns>/sa/<sa>, or "*" patterns).
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Group and version of the CRDs.
const (
	Group   = "policy.weft.io"
	Version = "v1alpha1"
)

// Kinds and their resources.
const (
	KindServer                = "Server"
	KindAuthorizationPolicy   = "AuthorizationPolicy"
	KindMeshTLSAuthentication = "MeshTLSAuthentication"
	KindNetworkAuthentication = "NetworkAuthentication"
	KindHTTPRoute             = "HTTPRoute"
)

// Resources of the CRDs, for dynamic clients and informers.
var (
	ServerResource                = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "servers"}
	AuthorizationPolicyResource   = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "authorizationpolicies"}
	MeshTLSAuthenticationResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "meshtlsauthentications"}
	NetworkAuthenticationResource = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "networkauthentications"}
	HTTPRouteResource             = schema.GroupVersionResource{Group: Group, Version: Version, Resource: "httproutes"}
)

// Server selects a port on a set of pods.
type Server struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ServerSpec `json:"spec"`
}

// ServerSpec is Linkerd's Server spec.
type ServerSpec struct {
	PodSelector *metav1.LabelSelector `json:"podSelector"`
	// Port is a container port number or name.
	Port intstr.IntOrString `json:"port"`
	// ProxyProtocol: unknown (detect), HTTP/1, HTTP/2, gRPC, opaque or TLS.
	ProxyProtocol string `json:"proxyProtocol,omitempty"`
	// AccessPolicy decides requests no AuthorizationPolicy allows: one of
	// the default policies; "" means deny.
	AccessPolicy string `json:"accessPolicy,omitempty"`
}

// PolicyTargetReference names the object an AuthorizationPolicy targets.
type PolicyTargetReference struct {
	Group     string `json:"group"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// AuthorizationPolicy allows the clients its authentications accept to reach
// its target.
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              AuthorizationPolicySpec `json:"spec"`
	Status            PolicyStatus            `json:"status,omitempty"`
}

// AuthorizationPolicySpec is Linkerd's AuthorizationPolicy spec.
type AuthorizationPolicySpec struct {
	// TargetRef is a Server, an HTTPRoute or a Namespace (every Server in
	// it).
	TargetRef PolicyTargetReference `json:"targetRef"`
	// RequiredAuthenticationRefs must all accept the client:
	// MeshTLSAuthentication, NetworkAuthentication or ServiceAccount
	// (group ""). Empty allows every client.
	RequiredAuthenticationRefs []PolicyTargetReference `json:"requiredAuthenticationRefs"`
}

// PolicyStatus reports whether the policy's references resolve.
type PolicyStatus struct {
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types and reasons the status controller writes.
const (
	ConditionAccepted   = "Accepted"
	ReasonAccepted      = "Accepted"
	ReasonTargetMissing = "TargetNotFound"
	ReasonAuthnMissing  = "AuthenticationNotFound"
)

// MeshTLSAuthentication accepts mTLS clients by identity.
type MeshTLSAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              MeshTLSAuthenticationSpec `json:"spec"`
	Status            PolicyStatus              `json:"status,omitempty"`
}

// MeshTLSAuthenticationSpec: identities or identityRefs (exactly one set).
type MeshTLSAuthenticationSpec struct {
	// Identities are SPIFFE IDs or patterns ("*", "spiffe://td/ns/demo/*").
	Identities []string `json:"identities,omitempty"`
	// IdentityRefs are ServiceAccounts (kind ServiceAccount, group "") or
	// a Namespace (every ServiceAccount in it).
	IdentityRefs []PolicyTargetReference `json:"identityRefs,omitempty"`
}

// NetworkAuthentication accepts clients by address.
type NetworkAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NetworkAuthenticationSpec `json:"spec"`
}

// NetworkAuthenticationSpec lists networks.
type NetworkAuthenticationSpec struct {
	Networks []Network `json:"networks"`
}

// Network is a CIDR with exceptions.
type Network struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except,omitempty"`
}

// HTTPRoute is the Gateway API HTTPRoute shape, attached to a Server by
// parentRefs (group policy.weft.io, kind Server).
type HTTPRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              HTTPRouteSpec `json:"spec"`
}

// HTTPRouteSpec is the subset of Gateway API's HTTPRoute that Linkerd's
// policy.linkerd.io HTTPRoute uses for authorization.
type HTTPRouteSpec struct {
	ParentRefs []ParentReference `json:"parentRefs,omitempty"`
	Hostnames  []string          `json:"hostnames,omitempty"`
	Rules      []HTTPRouteRule   `json:"rules,omitempty"`
}

// ParentReference names the Server a route attaches to.
type ParentReference struct {
	Group       string `json:"group,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Namespace   string `json:"namespace,omitempty"`
	Name        string `json:"name"`
	SectionName string `json:"sectionName,omitempty"`
	Port        *int32 `json:"port,omitempty"`
}

// HTTPRouteRule is one rule: its matches are ORed.
type HTTPRouteRule struct {
	Matches []HTTPRouteMatch `json:"matches,omitempty"`
}

// HTTPRouteMatch: set fields are ANDed.
type HTTPRouteMatch struct {
	Path    *HTTPPathMatch    `json:"path,omitempty"`
	Headers []HTTPHeaderMatch `json:"headers,omitempty"`
	Method  string            `json:"method,omitempty"`
}

// Path match types.
const (
	PathMatchExact             = "Exact"
	PathMatchPathPrefix        = "PathPrefix"
	PathMatchRegularExpression = "RegularExpression"
)

// HTTPPathMatch matches the normalised path.
type HTTPPathMatch struct {
	Type  string `json:"type,omitempty"`
	Value string `json:"value,omitempty"`
}

// HTTPHeaderMatch matches one header (type Exact or RegularExpression).
type HTTPHeaderMatch struct {
	Type  string `json:"type,omitempty"`
	Name  string `json:"name"`
	Value string `json:"value"`
}
