package watcher

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Watcher tracks Services, EndpointSlices and Pods.
type Watcher struct {
	mu         sync.Mutex
	services   map[ServiceID]*service
	pods       map[podKey]*Pod
	podsByIP   map[netip.Addr]*Pod
	clusterIPs map[netip.Addr]ServiceID
	// podServices indexes which services' endpoints reference a pod, so a pod
	// change (e.g. it became meshed) republishes just those.
	podServices map[podKey]map[ServiceID]struct{}
	// ClusterDomain is the DNS suffix of service names; "" means cluster.local.
	ClusterDomain string
	log           *slog.Logger
	onUpdate      func() // counts published changes; may be nil
	factory       informers.SharedInformerFactory
}

type podKey struct{ ns, name string }

// Config configures a Watcher.
type Config struct {
	Client kubernetes.Interface
	// ClusterDomain; "" means cluster.local.
	ClusterDomain string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// OnUpdate, when non-nil, is called once per published change.
	OnUpdate func()
}

// New returns a Watcher; Run starts it.
func New(cfg Config) *Watcher {
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Watcher{
		services:      map[ServiceID]*service{},
		pods:          map[podKey]*Pod{},
		podsByIP:      map[netip.Addr]*Pod{},
		clusterIPs:    map[netip.Addr]ServiceID{},
		podServices:   map[podKey]map[ServiceID]struct{}{},
		ClusterDomain: cfg.ClusterDomain,
		log:           cfg.Logger,
		onUpdate:      cfg.OnUpdate,
		factory:       informers.NewSharedInformerFactory(cfg.Client, 0),
	}
}

// Start registers the informers, starts them and waits for their caches.
func (w *Watcher) Start(ctx context.Context) error {
	svcInf := w.factory.Core().V1().Services().Informer()
	sliceInf := w.factory.Discovery().V1().EndpointSlices().Informer()
	podInf := w.factory.Core().V1().Pods().Informer()
	var synced []cache.InformerSynced
	for _, reg := range []struct {
		inf       cache.SharedIndexInformer
		transform cache.TransformFunc
		handler   cache.ResourceEventHandler
	}{
		{svcInf, trimService, handlerFor(w.setService, w.deleteService)},
		{sliceInf, trimSlice, handlerFor(w.setSlice, w.deleteSlice)},
		{podInf, trimPod, handlerFor(w.setPod, w.deletePod)},
	} {
		if err := reg.inf.SetTransform(reg.transform); err != nil {
			return fmt.Errorf("set transform: %w", err)
		}
		h, err := reg.inf.AddEventHandler(reg.handler)
		if err != nil {
			return fmt.Errorf("add event handler: %w", err)
		}
		synced = append(synced, h.HasSynced)
	}
	w.factory.Start(ctx.Done())
	// Wait until our handlers (not just the caches) have seen the initial
	// lists, so the first answer to a subscriber is complete.
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("sync informers: %w", ctx.Err())
	}
	return nil
}

// Shutdown stops the informers.
func (w *Watcher) Shutdown() { w.factory.Shutdown() }

func handlerFor[T any](set func(T), del func(T)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { callTyped(o, set) },
		UpdateFunc: func(_, o any) { callTyped(o, set) },
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			callTyped(o, del)
		},
	}
}

func callTyped[T any](o any, fn func(T)) {
	if t, ok := o.(T); ok {
		fn(t)
	}
}

func (w *Watcher) serviceLocked(id ServiceID) *service {
	s := w.services[id]
	if s == nil {
		s = newService(id)
		w.services[id] = s
	}
	return s
}

func (w *Watcher) setService(svc *corev1.Service) {
	id := ServiceID{svc.Namespace, svc.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.serviceLocked(id)
	for _, ip := range s.clusterIPs {
		delete(w.clusterIPs, ip)
	}
	s.setSpec(svc)
	for _, ip := range s.clusterIPs {
		w.clusterIPs[ip] = id
	}
	w.publishLocked(s)
}

func (w *Watcher) deleteService(svc *corev1.Service) {
	id := ServiceID{svc.Namespace, svc.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.services[id]
	if s == nil {
		return
	}
	for _, ip := range s.clusterIPs {
		delete(w.clusterIPs, ip)
	}
	s.exists = false
	s.clusterIPs = nil
	w.publishLocked(s)
	w.gcLocked(s)
}

func (w *Watcher) setSlice(es *discoveryv1.EndpointSlice) {
	name := es.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.serviceLocked(ServiceID{es.Namespace, name})
	s.slices[es.Name] = es
	w.indexPodsLocked(s.id, es)
	w.publishLocked(s)
}

func (w *Watcher) deleteSlice(es *discoveryv1.EndpointSlice) {
	name := es.Labels[discoveryv1.LabelServiceName]
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.services[ServiceID{es.Namespace, name}]
	if s == nil {
		return
	}
	delete(s.slices, es.Name)
	w.publishLocked(s)
	w.gcLocked(s)
}

func (w *Watcher) indexPodsLocked(id ServiceID, es *discoveryv1.EndpointSlice) {
	for _, ep := range es.Endpoints {
		if ep.TargetRef == nil || ep.TargetRef.Kind != "Pod" {
			continue
		}
		k := podKey{ep.TargetRef.Namespace, ep.TargetRef.Name}
		if k.ns == "" {
			k.ns = es.Namespace
		}
		set := w.podServices[k]
		if set == nil {
			set = map[ServiceID]struct{}{}
			w.podServices[k] = set
		}
		set[id] = struct{}{}
	}
}

func (w *Watcher) setPod(p *corev1.Pod) {
	k := podKey{p.Namespace, p.Name}
	info := podFromObject(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if old := w.pods[k]; old != nil && old.IP.IsValid() {
		delete(w.podsByIP, old.IP)
	}
	w.pods[k] = info
	if info.IP.IsValid() {
		w.podsByIP[info.IP] = info
	}
	for id := range w.podServices[k] {
		if s := w.services[id]; s != nil {
			w.publishLocked(s)
		}
	}
}

func (w *Watcher) deletePod(p *corev1.Pod) {
	k := podKey{p.Namespace, p.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	if old := w.pods[k]; old != nil && old.IP.IsValid() && w.podsByIP[old.IP] == old {
		delete(w.podsByIP, old.IP)
	}
	delete(w.pods, k)
	delete(w.podServices, k)
}

// publishLocked recomputes every subscribed port of s and signals the
// subscribers of those that changed.
func (w *Watcher) publishLocked(s *service) {
	now := time.Now()
	for port, ps := range s.ports {
		next := s.addressSet(port, w.pods)
		if ps.replace(next, now) && w.onUpdate != nil {
			w.onUpdate()
		}
	}
}

// gcLocked forgets a service that no longer exists, has no slices and no
// subscribers.
func (w *Watcher) gcLocked(s *service) {
	if !s.exists && len(s.slices) == 0 && len(s.ports) == 0 {
		delete(w.services, s.id)
	}
}

// Subscribe returns a subscription to a Service port's address set.
func (w *Watcher) Subscribe(id ServiceID, port uint32) *Subscription {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.serviceLocked(id)
	ps := s.ports[port]
	if ps == nil {
		ps = newPortState(s.addressSet(port, w.pods))
		s.ports[port] = ps
	}
	sub := &Subscription{w: w, svc: s, port: port, ps: ps, C: make(chan struct{}, 1)}
	ps.subs[sub] = struct{}{}
	return sub
}

func (w *Watcher) unsubscribe(sub *Subscription) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(sub.ps.subs, sub)
	if len(sub.ps.subs) == 0 {
		delete(sub.svc.ports, sub.port)
		w.gcLocked(sub.svc)
	}
}

// LookupIP says what an IP is: a Service ClusterIP (ok, svc set) or a pod
// (pod set). Both zero when unknown.
func (w *Watcher) LookupIP(ip netip.Addr) (svc ServiceID, isService bool, pod *Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id, ok := w.clusterIPs[ip]; ok {
		return id, true, nil
	}
	return ServiceID{}, false, w.podsByIP[ip]
}

// ServiceOpaquePorts returns the opaque ports declared on a Service.
func (w *Watcher) ServiceOpaquePorts(id ServiceID) map[uint32]bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.services[id]; s != nil {
		return s.opaquePorts
	}
	return nil
}
