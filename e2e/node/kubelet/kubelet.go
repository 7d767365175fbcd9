// Package kubelet is the node agent of weft's local cluster: it stands in for kubelet on the one
// Node "weft-node". It registers and heartbeats the Node, binds unscheduled pods to it, runs each
// pod's containers through a Runtime (sandbox, init containers, native sidecars, probes,
// lifecycle hooks, restart back-off), reports pod status through the pods/status subresource and
// tears pods down in kubelet's order when they are deleted.
package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
)

// Config configures a Kubelet.
type Config struct {
	// Client talks to the apiserver. Required.
	Client kubernetes.Interface
	// Runtime runs sandboxes and containers. Required.
	Runtime Runtime
	// NodeName is the Node this agent registers; "" means "weft-node".
	NodeName string
	// NodeIP is the Node's InternalIP and every pod's hostIP. Required.
	NodeIP netip.Addr
	// KubeletPort is the kubelet API port advertised in the Node's daemonEndpoints; 0 means
	// none is served.
	KubeletPort int32
	// PodCIDR is written to the Node's spec.podCIDR; the zero value leaves it unset.
	PodCIDR netip.Prefix
	// KubernetesService is the address of the `kubernetes` Service put into every container's
	// KUBERNETES_SERVICE_HOST/PORT; the zero value sets no such variables.
	KubernetesService netip.AddrPort
	// KubeletVersion is reported in the Node's nodeInfo; "" means "v1.36.3".
	KubeletVersion string
	// RestartBackoffBase is the first container restart back-off; 0 means 10s (kubelet's).
	RestartBackoffBase time.Duration
	// RestartBackoffMax caps the back-off; 0 means 5m (kubelet's).
	RestartBackoffMax time.Duration
	// ShutdownGracePeriod bounds each pod's termination grace period when the agent shuts down;
	// 0 means 20s.
	ShutdownGracePeriod time.Duration
	// LeasePeriod is how often the node Lease is renewed; 0 means 10s. The Node status is
	// refreshed every sixth period.
	LeasePeriod time.Duration
	// StatusDelay is how long pod status changes are gathered before one update is sent; 0 means
	// 50ms.
	StatusDelay time.Duration
	// Capacity is the Node's capacity and allocatable; nil means this machine's CPUs and memory
	// and 110 pods.
	Capacity corev1.ResourceList
	// Logger receives the agent's log; nil means slog.Default().
	Logger *slog.Logger
}

// Kubelet is the node agent. Create it with New and start it with Run.
type Kubelet struct {
	cfg    Config
	log    *slog.Logger
	client kubernetes.Interface

	pods     corelisters.PodLister
	services corelisters.ServiceLister
	status   *statusManager
	recorder record.EventRecorder // nil until Run

	mu       sync.Mutex
	workers  map[types.UID]*podWorker
	binding  map[types.UID]bool
	shutdown bool
	wg       sync.WaitGroup
	runCtx   context.Context
}

// New checks cfg and returns a Kubelet.
func New(cfg Config) (*Kubelet, error) {
	if cfg.Client == nil {
		return nil, errors.New("kubelet: Client is required")
	}
	if cfg.Runtime == nil {
		return nil, errors.New("kubelet: Runtime is required")
	}
	if !cfg.NodeIP.IsValid() {
		return nil, errors.New("kubelet: NodeIP is required")
	}
	if cfg.NodeName == "" {
		cfg.NodeName = "weft-node"
	}
	if cfg.KubeletVersion == "" {
		cfg.KubeletVersion = "v1.36.3"
	}
	if cfg.RestartBackoffBase <= 0 {
		cfg.RestartBackoffBase = 10 * time.Second
	}
	if cfg.RestartBackoffMax <= 0 {
		cfg.RestartBackoffMax = 5 * time.Minute
	}
	if cfg.RestartBackoffMax < cfg.RestartBackoffBase {
		return nil, fmt.Errorf("kubelet: RestartBackoffMax %s is below RestartBackoffBase %s", cfg.RestartBackoffMax, cfg.RestartBackoffBase)
	}
	if cfg.ShutdownGracePeriod <= 0 {
		cfg.ShutdownGracePeriod = 20 * time.Second
	}
	if cfg.LeasePeriod <= 0 {
		cfg.LeasePeriod = 10 * time.Second
	}
	if cfg.StatusDelay <= 0 {
		cfg.StatusDelay = 50 * time.Millisecond
	}
	if cfg.Capacity == nil {
		cfg.Capacity = machineCapacity()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	k := &Kubelet{
		cfg:     cfg,
		log:     log,
		client:  cfg.Client,
		workers: map[types.UID]*podWorker{},
		binding: map[types.UID]bool{},
	}
	k.status = newStatusManager(k)
	return k, nil
}

// Run registers the Node, watches pods and runs them until ctx is done; then it stops every pod
// (bounded by ShutdownGracePeriod), leaving the Pod objects in the API, and returns.
func (k *Kubelet) Run(ctx context.Context) error {
	if err := k.registerNode(ctx); err != nil {
		return err
	}
	k.runCtx = ctx
	stopEvents := k.startEvents(ctx)
	defer stopEvents()
	factory := informers.NewSharedInformerFactory(k.client, 0)
	podInf := factory.Core().V1().Pods()
	svcInf := factory.Core().V1().Services()
	k.pods = podInf.Lister()
	k.services = svcInf.Lister()
	if _, err := podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.onPod(obj) },
		UpdateFunc: func(_, obj any) { k.onPod(obj) },
		DeleteFunc: func(obj any) { k.onPodDeleted(obj) },
	}); err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			return fmt.Errorf("sync %v cache", typ)
		}
	}
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); k.heartbeat(ctx) }()
	go func() { defer bg.Done(); k.status.run(ctx) }()
	k.log.Info("node agent running", "node", k.cfg.NodeName)

	<-ctx.Done()
	k.mu.Lock()
	k.shutdown = true
	n := len(k.workers)
	k.mu.Unlock()
	k.log.Info("stopping pods", "count", n)
	done := make(chan struct{})
	go func() { k.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(k.cfg.ShutdownGracePeriod + 15*time.Second):
		k.log.Warn("pods did not stop in time")
	}
	bg.Wait()
	return nil
}

// onPod dispatches a pod add/update from the informer.
func (k *Kubelet) onPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.Spec.NodeName == "" {
		k.maybeBind(pod)
		return
	}
	if pod.Spec.NodeName != k.cfg.NodeName {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.shutdown {
		return
	}
	w := k.workers[pod.UID]
	if w == nil {
		w = newPodWorker(k, pod)
		k.workers[pod.UID] = w
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			w.run(k.runCtx)
		}()
		return
	}
	w.update(pod)
}

func (k *Kubelet) onPodDeleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	k.mu.Lock()
	w := k.workers[pod.UID]
	delete(k.workers, pod.UID)
	delete(k.binding, pod.UID)
	k.mu.Unlock()
	if w != nil {
		w.markGone()
	}
	k.status.forget(pod.UID)
}

// namespaceServices lists the services of ns for docker-links variables.
func (k *Kubelet) namespaceServices(ns string) []*corev1.Service {
	if k.services == nil {
		return nil
	}
	svcs, err := k.services.Services(ns).List(labels.Everything())
	if err != nil {
		return nil
	}
	return svcs
}
