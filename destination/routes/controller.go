package routes

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/weftmesh/weft/proxy/httproute"
)

// Config configures a Controller.
type Config struct {
	Kube           kubernetes.Interface
	Dynamic        dynamic.Interface
	ControllerName string // default DefaultControllerName
	ClusterDomain  string // default cluster.local
	Resync         time.Duration
	Log            *slog.Logger
}

// Key names a Service port that routes attach to.
type Key struct {
	Namespace, Name string
	Port            int // 0: every port
}

type attached struct {
	spec     httproute.RouteSpec
	port     int    // parentRef port, 0 for all
	consumer string // client namespace of a consumer route, "" for producer
}

// Controller watches routes, writes their status and serves compiled routes.
type Controller struct {
	cfg      Config
	services corelisters.ServiceLister
	informer map[schema.GroupVersionResource]cache.SharedIndexInformer
	kick     chan struct{}

	mu       sync.Mutex
	byParent map[Key][]attached // Port in key always 0: per-port filtering at read
	version  uint64
	changed  chan struct{} // closed and replaced on every change
}

// New builds a controller; Run starts it.
func New(cfg Config) (*Controller, error) {
	if cfg.Kube == nil || cfg.Dynamic == nil {
		return nil, fmt.Errorf("route controller needs a Kubernetes and a dynamic client")
	}
	if cfg.ControllerName == "" {
		cfg.ControllerName = DefaultControllerName
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	c := &Controller{cfg: cfg, kick: make(chan struct{}, 1), byParent: map[Key][]attached{}, changed: make(chan struct{}), informer: map[schema.GroupVersionResource]cache.SharedIndexInformer{}}
	return c, nil
}

func (c *Controller) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run watches until ctx ends. It returns once informers are stopped.
func (c *Controller) Run(ctx context.Context) error {
	kf := informers.NewSharedInformerFactory(c.cfg.Kube, c.cfg.Resync)
	svc := kf.Core().V1().Services()
	c.services = svc.Lister()
	df := dynamicinformer.NewDynamicSharedInformerFactory(c.cfg.Dynamic, c.cfg.Resync)
	h := cache.ResourceEventHandlerFuncs{AddFunc: func(any) { c.poke() }, UpdateFunc: func(_, _ any) { c.poke() }, DeleteFunc: func(any) { c.poke() }}
	if _, err := svc.Informer().AddEventHandler(h); err != nil {
		return fmt.Errorf("watch services: %w", err)
	}
	for _, gvr := range []schema.GroupVersionResource{HTTPRouteGVR, GRPCRouteGVR, HTTPFaultGVR} {
		inf := df.ForResource(gvr).Informer()
		if _, err := inf.AddEventHandler(h); err != nil {
			return fmt.Errorf("watch %s: %w", gvr.Resource, err)
		}
		c.informer[gvr] = inf
	}
	kf.Start(ctx.Done())
	df.Start(ctx.Done())
	kf.WaitForCacheSync(ctx.Done())
	df.WaitForCacheSync(ctx.Done())
	c.poke()
	for {
		select {
		case <-ctx.Done():
			kf.Shutdown()
			df.Shutdown()
			return nil
		case <-c.kick:
			c.reconcile(ctx)
		}
	}
}

func (c *Controller) lookup() Lookup {
	return Lookup{
		ClusterDomain: c.cfg.ClusterDomain,
		ServiceExists: func(ns, name string) bool {
			_, err := c.services.Services(ns).Get(name)
			return err == nil
		},
		Fault: func(ns, name string) (*faultSpec, bool) {
			o, ok, _ := c.informer[HTTPFaultGVR].GetStore().GetByKey(ns + "/" + name)
			if !ok {
				return nil, false
			}
			var f struct {
				Spec faultSpec `json:"spec"`
			}
			if err := fromUnstructured(o.(*unstructured.Unstructured), &f); err != nil {
				return nil, false
			}
			return &f.Spec, true
		},
	}
}

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// reconcile recompiles every route, writes changed statuses and publishes
// the new index.
func (c *Controller) reconcile(ctx context.Context) {
	lk := c.lookup()
	index := map[Key][]attached{}
	for gvr, kind := range map[schema.GroupVersionResource]httproute.Kind{HTTPRouteGVR: httproute.KindHTTP, GRPCRouteGVR: httproute.KindGRPC} {
		for _, o := range c.informer[gvr].GetStore().List() {
			u := o.(*unstructured.Unstructured)
			for _, a := range c.route(ctx, gvr, kind, u, lk) {
				k := Key{Namespace: a.parentNS, Name: a.parentName}
				index[k] = append(index[k], a.attached)
			}
		}
	}
	c.publish(index)
}

type parentAttach struct {
	attached
	parentNS, parentName string
}

func (c *Controller) route(ctx context.Context, gvr schema.GroupVersionResource, kind httproute.Kind, u *unstructured.Unstructured, lk Lookup) []parentAttach {
	var spec struct {
		Spec routeSpec `json:"spec"`
	}
	if err := fromUnstructured(u, &spec); err != nil {
		c.cfg.Log.Warn("undecodable route", "kind", kind, "route", u.GetNamespace()+"/"+u.GetName(), "err", err)
		return nil
	}
	ns := u.GetNamespace()
	v := compileRoute(kind, ns, u.GetName(), u.GetCreationTimestamp().Time, spec.Spec.Rules, lk)
	var out []parentAttach
	var statuses []parentStatus
	for _, p := range spec.Spec.ParentRefs {
		if p.Group == nil || *p.Group != "" || p.Kind == nil || *p.Kind != "Service" {
			continue // a Gateway parent: another controller's business
		}
		pns := ns
		if p.Namespace != nil && *p.Namespace != "" {
			pns = *p.Namespace
		}
		ps := parentStatus{ref: p, v: v}
		if !lk.ServiceExists(pns, p.Name) {
			ps.v.accepted, ps.v.acceptedReason, ps.v.acceptedMessage = false, ReasonNoMatchingParent, fmt.Sprintf("parent Service %s/%s not found", pns, p.Name)
		}
		statuses = append(statuses, ps)
		if ps.v.accepted && v.spec != nil {
			a := parentAttach{attached: attached{spec: *v.spec}, parentNS: pns, parentName: p.Name}
			if p.Port != nil {
				a.port = *p.Port
			}
			if ns != pns {
				a.consumer = ns
			}
			out = append(out, a)
		}
	}
	if len(statuses) > 0 {
		if err := c.writeStatus(ctx, gvr, u, statuses); err != nil {
			c.cfg.Log.Warn("route status not written", "kind", kind, "route", ns+"/"+u.GetName(), "err", err)
		}
	}
	return out
}

func (c *Controller) publish(index map[Key][]attached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byParent = index
	c.version++
	close(c.changed)
	c.changed = make(chan struct{})
}

// Routes returns the routes a client in clientNS uses for a Service port:
// that namespace's consumer routes when it has any, otherwise the producer
// routes; sorted by name. The channel is closed on the next change.
func (c *Controller) Routes(k Key, clientNS string) ([]httproute.RouteSpec, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var producer, consumer []httproute.RouteSpec
	for _, a := range c.byParent[Key{Namespace: k.Namespace, Name: k.Name}] {
		if a.port != 0 && k.Port != 0 && a.port != k.Port {
			continue
		}
		switch a.consumer {
		case "":
			producer = append(producer, a.spec)
		case clientNS:
			consumer = append(consumer, a.spec)
		}
	}
	out := producer
	if len(consumer) > 0 {
		out = consumer
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name })
	return out, c.changed
}
