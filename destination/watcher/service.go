package watcher

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// service is the watcher's state for one Service.
type service struct {
	id          ServiceID
	exists      bool
	ports       map[uint32]*portState // subscribed service ports
	portNames   map[uint32]string     // service port number → name (matches slice port names)
	clusterIPs  []netip.Addr
	opaquePorts map[uint32]bool
	slices      map[string]*discoveryv1.EndpointSlice
}

func newService(id ServiceID) *service {
	return &service{id: id, ports: map[uint32]*portState{}, slices: map[string]*discoveryv1.EndpointSlice{}}
}

func (s *service) setSpec(svc *corev1.Service) {
	s.exists = true
	s.portNames = make(map[uint32]string, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
			s.portNames[uint32(p.Port)] = p.Name
		}
	}
	s.clusterIPs = s.clusterIPs[:0]
	for _, raw := range svc.Spec.ClusterIPs {
		if ip, err := netip.ParseAddr(raw); err == nil {
			s.clusterIPs = append(s.clusterIPs, ip)
		}
	}
	s.opaquePorts = ParsePorts(svc.Annotations[OpaquePortsAnnotation])
}

// addressSet computes the endpoints of a service port: ready endpoints, or,
// when none is ready, those serving while terminating (as kube-proxy does).
func (s *service) addressSet(port uint32, pods map[podKey]*Pod) AddressSet {
	set := AddressSet{
		Exists:    s.exists,
		Addresses: map[netip.AddrPort]Address{},
		Labels:    map[string]string{"namespace": s.id.Namespace, "service": s.id.Name},
	}
	name, known := s.portNames[port]
	if !s.exists || !known {
		set.Exists = s.exists && known
		return set
	}
	var fallback []Address
	for _, es := range s.slices {
		target, ok := slicePort(es, name)
		if !ok {
			continue
		}
		for i := range es.Endpoints {
			ep := &es.Endpoints[i]
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			serving := ep.Conditions.Serving != nil && *ep.Conditions.Serving
			terminating := ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
			if !ready && !(serving && terminating) {
				continue
			}
			for _, raw := range ep.Addresses {
				ip, err := netip.ParseAddr(raw)
				if err != nil {
					continue
				}
				a := Address{AddrPort: netip.AddrPortFrom(ip, target), Pod: podOf(ep, es.Namespace, pods), Terminating: !ready}
				if ep.Zone != nil {
					a.Zone = *ep.Zone
				}
				if ep.Hostname != nil {
					a.Hostname = *ep.Hostname
				}
				if ready {
					set.Addresses[a.AddrPort] = a
				} else {
					fallback = append(fallback, a)
				}
			}
		}
	}
	if len(set.Addresses) == 0 {
		for _, a := range fallback {
			set.Addresses[a.AddrPort] = a
		}
	}
	return set
}

// slicePort finds the numeric target port of the service port named name.
func slicePort(es *discoveryv1.EndpointSlice, name string) (uint16, bool) {
	for _, p := range es.Ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		if pn == name && p.Port != nil && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) {
			return uint16(*p.Port), true
		}
	}
	return 0, false
}

func podOf(ep *discoveryv1.Endpoint, ns string, pods map[podKey]*Pod) *Pod {
	if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
		return nil
	}
	if ep.TargetRef.Namespace != "" {
		ns = ep.TargetRef.Namespace
	}
	return pods[podKey{ns, ep.TargetRef.Name}]
}
