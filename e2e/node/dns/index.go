package dns

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

const (
	byClusterIP  = "clusterIP"
	byService    = "service"
	byAddress    = "address"
	serviceLabel = discoveryv1.LabelServiceName
)

// endpoint is one address of a Service, with the ports of the EndpointSlice that holds it.
type endpoint struct {
	addr     netip.Addr
	hostname string // spec hostname, "" when unset
	ports    []discoveryv1.EndpointPort
}

// name is the endpoint's DNS label: its hostname, or its dashed IP (as CoreDNS does).
func (e endpoint) name() string {
	if e.hostname != "" {
		return strings.ToLower(e.hostname)
	}
	return dashedIP(e.addr)
}

// index answers the lookups the handler needs from the Service and EndpointSlice informers.
type index struct {
	services cache.Indexer
	slices   cache.Indexer
	synced   []cache.InformerSynced
}

func newIndex(f informers.SharedInformerFactory) (*index, error) {
	svcInf := f.Core().V1().Services().Informer()
	// The shared informer already indexes by namespace (cache.NamespaceIndex).
	if err := svcInf.AddIndexers(cache.Indexers{byClusterIP: serviceClusterIPs}); err != nil {
		return nil, err
	}
	sliceInf := f.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInf.AddIndexers(cache.Indexers{
		byService: sliceService,
		byAddress: sliceAddresses,
	}); err != nil {
		return nil, err
	}
	return &index{
		services: svcInf.GetIndexer(),
		slices:   sliceInf.GetIndexer(),
		synced:   []cache.InformerSynced{svcInf.HasSynced, sliceInf.HasSynced},
	}, nil
}

func serviceClusterIPs(obj any) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, ip := range clusterIPs(svc) {
		out = append(out, ip.String())
	}
	return out, nil
}

func sliceService(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || s.Labels[serviceLabel] == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + s.Labels[serviceLabel]}, nil
}

func sliceAddresses(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || s.Labels[serviceLabel] == "" {
		return nil, nil
	}
	var out []string
	for _, ep := range s.Endpoints {
		for _, a := range ep.Addresses {
			if ip, err := netip.ParseAddr(a); err == nil {
				out = append(out, ip.String())
			}
		}
	}
	return out, nil
}

// clusterIPs returns the Service's parsed cluster IPs; none for headless and ExternalName Services.
func clusterIPs(svc *corev1.Service) []netip.Addr {
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	var out []netip.Addr
	for _, s := range ips {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip)
		}
	}
	return out
}

// service returns the Service ns/name (lower-case names; Kubernetes names are lower-case).
func (x *index) service(ns, name string) (*corev1.Service, bool) {
	obj, ok, err := x.services.GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	svc, ok := obj.(*corev1.Service)
	return svc, ok
}

// namespaceHasServices reports whether any Service exists in ns; a namespace without Services is
// answered NXDOMAIN since we do not watch Namespaces.
func (x *index) namespaceHasServices(ns string) bool {
	objs, err := x.services.ByIndex(cache.NamespaceIndex, ns)
	return err == nil && len(objs) > 0
}

// endpoints returns the distinct endpoints of svc that DNS publishes: ready ones (a nil Ready
// condition counts as ready), or all of them when the Service publishes not-ready addresses.
// The result is sorted by address so answers are stable.
func (x *index) endpoints(svc *corev1.Service) []endpoint {
	objs, err := x.slices.ByIndex(byService, svc.Namespace+"/"+svc.Name)
	if err != nil {
		return nil
	}
	seen := map[netip.Addr]bool{}
	var out []endpoint
	for _, obj := range objs {
		s := obj.(*discoveryv1.EndpointSlice)
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		for _, ep := range s.Endpoints {
			if !svc.Spec.PublishNotReadyAddresses && ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, a := range ep.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil || seen[ip] {
					continue
				}
				seen[ip] = true
				e := endpoint{addr: ip, ports: s.Ports}
				if ep.Hostname != nil {
					e.hostname = *ep.Hostname
				}
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b endpoint) int { return a.addr.Compare(b.addr) })
	return out
}

// reverse returns the names that own ip: "<svc>.<ns>.svc.<zone>" for a cluster IP and
// "<endpoint>.<svc>.<ns>.svc.<zone>" for an endpoint address. zone is fully qualified.
func (x *index) reverse(ip netip.Addr, zone string) []string {
	var out []string
	objs, _ := x.services.ByIndex(byClusterIP, ip.String())
	for _, obj := range objs {
		svc := obj.(*corev1.Service)
		out = append(out, svc.Name+"."+svc.Namespace+".svc."+zone)
	}
	objs, _ = x.slices.ByIndex(byAddress, ip.String())
	for _, obj := range objs {
		s := obj.(*discoveryv1.EndpointSlice)
		svc, ok := x.service(s.Namespace, s.Labels[serviceLabel])
		if !ok {
			continue
		}
		for _, e := range x.endpoints(svc) {
			if e.addr == ip {
				out = append(out, e.name()+"."+svc.Name+"."+svc.Namespace+".svc."+zone)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
