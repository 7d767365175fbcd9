// Package watcher keeps, from Kubernetes informers, the set of endpoint
// addresses behind every Service port and tells subscribers when a set
// changes. Subscribers are signalled without blocking and read snapshots, so a
// slow subscriber never delays the informers or other subscribers.
package watcher

import (
	"net/netip"
)

// ServiceID names a Service.
type ServiceID struct{ Namespace, Name string }

func (s ServiceID) String() string { return s.Namespace + "/" + s.Name }

// Address is one endpoint of a Service port.
type Address struct {
	AddrPort netip.AddrPort
	// Pod is nil when the endpoint is not a pod this watcher knows.
	Pod *Pod
	// Zone of the endpoint; "" when unknown.
	Zone string
	// Hostname from the EndpointSlice (headless services); "" when none.
	Hostname string
	// Terminating is true for endpoints used only because no ready endpoint
	// exists (serving and terminating).
	Terminating bool
}

// Pod holds what the destination service needs of a pod.
type Pod struct {
	Name, Namespace string
	ServiceAccount  string
	// Meshed is true when the pod runs weft-proxy.
	Meshed bool
	// OwnerKind and OwnerName name the workload (Deployment, StatefulSet, ...).
	OwnerKind, OwnerName string
	// OpaquePorts declared on the pod (config.weft.io/opaque-ports).
	OpaquePorts map[uint32]bool
	IP          netip.Addr
}

// AddressSet is the snapshot of a Service port's endpoints.
type AddressSet struct {
	// Exists is false when the Service itself does not exist.
	Exists bool
	// Addresses keyed by ip:port; empty when the Service has no endpoints.
	Addresses map[netip.AddrPort]Address
	// Labels shared by all addresses (namespace, service).
	Labels map[string]string
}
