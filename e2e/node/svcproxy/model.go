package svcproxy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// servicePort is one ClusterIP:port/protocol of a Service with the endpoints traffic to it goes to.
type servicePort struct {
	name      string // "<ns>/<svc>:<port name>"
	clusterIP netip.Addr
	port      uint16
	protocol  corev1.Protocol // TCP or UDP
	endpoints []netip.AddrPort
}

// buildServicePorts turns Services and their EndpointSlices (keyed "<ns>/<svc>") into the service
// ports to program, sorted by name and protocol. It skips headless and ExternalName Services,
// non-IPv4 and out-of-range cluster IPs, SCTP ports and the cluster DNS address (a static rule
// owns it); skipped reports why for logging.
func buildServicePorts(svcs []*corev1.Service, slicesBySvc map[string][]*discoveryv1.EndpointSlice, serviceCIDR netip.Prefix, clusterDNS netip.Addr) (out []servicePort, skipped []string) {
	for _, svc := range svcs {
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		key := svc.Namespace + "/" + svc.Name
		for _, s := range svc.Spec.ClusterIPs {
			ip, err := netip.ParseAddr(s)
			switch {
			case err != nil: // "None" (headless) or empty
				continue
			case !ip.Is4():
				continue // ip6tables is not programmed
			case !serviceCIDR.Contains(ip):
				skipped = append(skipped, fmt.Sprintf("%s: cluster IP %s outside the service CIDR %s", key, ip, serviceCIDR))
				continue
			case ip == clusterDNS:
				skipped = append(skipped, fmt.Sprintf("%s: cluster IP %s is the cluster DNS address, served by the static rule", key, ip))
				continue
			}
			for _, p := range svc.Spec.Ports {
				proto := cmp.Or(p.Protocol, corev1.ProtocolTCP)
				if proto != corev1.ProtocolTCP && proto != corev1.ProtocolUDP {
					skipped = append(skipped, fmt.Sprintf("%s: port %d/%s: only TCP and UDP are proxied", key, p.Port, proto))
					continue
				}
				out = append(out, servicePort{
					name:      fmt.Sprintf("%s:%s", key, p.Name),
					clusterIP: ip,
					port:      uint16(p.Port),
					protocol:  proto,
					endpoints: endpointsFor(slicesBySvc[key], p.Name, proto),
				})
			}
		}
	}
	slices.SortFunc(out, func(a, b servicePort) int {
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.protocol, b.protocol), a.clusterIP.Compare(b.clusterIP))
	})
	return out, skipped
}

// endpointsFor picks the endpoints of one service port from the Service's slices the way
// kube-proxy does: the ready endpoints, or when none is ready the serving and terminating ones
// (so connections still drain to pods that are shutting down). A nil Ready condition means
// ready, a nil Serving condition means the value of Ready, a nil Terminating means false.
func endpointsFor(slices_ []*discoveryv1.EndpointSlice, portName string, proto corev1.Protocol) []netip.AddrPort {
	var ready, fallback []netip.AddrPort
	for _, s := range slices_ {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		port, ok := slicePort(s, portName, proto)
		if !ok {
			continue
		}
		for _, e := range s.Endpoints {
			isReady := e.Conditions.Ready == nil || *e.Conditions.Ready
			serving := isReady
			if e.Conditions.Serving != nil {
				serving = *e.Conditions.Serving
			}
			terminating := e.Conditions.Terminating != nil && *e.Conditions.Terminating
			for _, a := range e.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil || !ip.Is4() {
					continue
				}
				ap := netip.AddrPortFrom(ip, port)
				switch {
				case isReady:
					ready = append(ready, ap)
				case serving && terminating:
					fallback = append(fallback, ap)
				}
			}
		}
	}
	eps := ready
	if len(eps) == 0 {
		eps = fallback
	}
	slices.SortFunc(eps, netip.AddrPort.Compare)
	return slices.Compact(eps)
}

// slicePort returns the number of the slice's port matching the service port name and protocol.
func slicePort(s *discoveryv1.EndpointSlice, name string, proto corev1.Protocol) (uint16, bool) {
	for _, p := range s.Ports {
		pname := ""
		if p.Name != nil {
			pname = *p.Name
		}
		pproto := corev1.ProtocolTCP
		if p.Protocol != nil {
			pproto = *p.Protocol
		}
		if pname == name && pproto == proto && p.Port != nil && *p.Port > 0 && *p.Port < 65536 {
			return uint16(*p.Port), true
		}
	}
	return 0, false
}
