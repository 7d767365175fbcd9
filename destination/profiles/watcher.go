package profiles

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
)

// Key names a ServiceProfile: its namespace and its name (an FQDN).
type Key struct{ Namespace, Name string }

// Watcher keeps the translated ServiceProfiles of the cluster.
type Watcher struct {
	dyn       dynamic.Interface
	disco     discovery.DiscoveryInterface
	log       *slog.Logger
	retry     time.Duration
	mu        sync.Mutex
	profiles  map[Key]*destinationv1.DestinationProfile
	subs      map[Key]map[*Subscription]struct{}
	OnInvalid func(Key, error) // optional: counts/reports invalid profiles
}

// New returns a Watcher. disco may be nil (the CRD is assumed installed).
func New(dyn dynamic.Interface, disco discovery.DiscoveryInterface, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.Default()
	}
	return &Watcher{
		dyn: dyn, disco: disco, log: log, retry: 30 * time.Second,
		profiles: map[Key]*destinationv1.DestinationProfile{},
		subs:     map[Key]map[*Subscription]struct{}{},
	}
}

// Start begins watching. If the CRD is not installed it keeps checking in the
// background and serves no profiles meanwhile; otherwise it returns once the
// initial list is processed.
func (w *Watcher) Start(ctx context.Context) error {
	if w.crdInstalled() {
		return w.startInformer(ctx)
	}
	w.log.Warn("ServiceProfile CRD not installed; serving no profiles until it is", "crd", sp.Resource+"."+sp.Group)
	go func() {
		t := time.NewTicker(w.retry)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if w.crdInstalled() {
					if err := w.startInformer(ctx); err != nil {
						w.log.Error("watch ServiceProfiles", "err", err)
					}
					return
				}
			}
		}
	}()
	return nil
}

func (w *Watcher) crdInstalled() bool {
	if w.disco == nil {
		return true
	}
	_, err := w.disco.ServerResourcesForGroupVersion(sp.Group + "/" + sp.Version)
	return err == nil
}

func (w *Watcher) startInformer(ctx context.Context) error {
	f := dynamicinformer.NewDynamicSharedInformerFactory(w.dyn, 0)
	inf := f.ForResource(sp.GroupVersionResource).Informer()
	h, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.set(o) },
		UpdateFunc: func(_, o any) { w.set(o) },
		DeleteFunc: func(o any) {
			if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = t.Obj
			}
			if u, ok := o.(*unstructured.Unstructured); ok {
				w.store(Key{u.GetNamespace(), u.GetName()}, nil)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("add ServiceProfile handler: %w", err)
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), h.HasSynced) {
		return fmt.Errorf("sync ServiceProfiles: %w", ctx.Err())
	}
	return nil
}

func (w *Watcher) set(o any) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	key := Key{u.GetNamespace(), u.GetName()}
	profile, err := FromUnstructured(u)
	if err != nil {
		// Keep serving the last valid version; say why loudly.
		w.log.Error("invalid ServiceProfile; keeping the previous version", "namespace", key.Namespace, "name", key.Name, "err", err)
		if w.OnInvalid != nil {
			w.OnInvalid(key, err)
		}
		return
	}
	w.store(key, profile)
}

// FromUnstructured decodes and translates a ServiceProfile object.
func FromUnstructured(u *unstructured.Unstructured) (*destinationv1.DestinationProfile, error) {
	obj := u.DeepCopy().Object
	normalizeNot(obj)
	var p sp.ServiceProfile
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &p); err != nil {
		return nil, fmt.Errorf("decode ServiceProfile %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	out, err := Translate(p.Name, &p.Spec)
	if err != nil {
		return nil, fmt.Errorf("ServiceProfile %s/%s: %w", p.Namespace, p.Name, err)
	}
	return out, nil
}

// normalizeNot rewrites Linkerd's list spelling of `not` ([a, b]) into the
// object form: not(any(a, b)), i.e. it matches when none of the items match.
func normalizeNot(v any) {
	switch t := v.(type) {
	case map[string]any:
		if list, ok := t["not"].([]any); ok {
			t["not"] = map[string]any{"any": list}
		}
		for _, c := range t {
			normalizeNot(c)
		}
	case []any:
		for _, c := range t {
			normalizeNot(c)
		}
	}
}

func (w *Watcher) store(key Key, p *destinationv1.DestinationProfile) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p == nil {
		delete(w.profiles, key)
	} else {
		w.profiles[key] = p
	}
	for sub := range w.subs[key] {
		select {
		case sub.C <- struct{}{}:
		default:
		}
	}
}

// Subscription follows one profile. C is signalled when it may have changed.
type Subscription struct {
	w   *Watcher
	key Key
	C   chan struct{}
}

// Subscribe follows the profile key.
func (w *Watcher) Subscribe(key Key) *Subscription {
	w.mu.Lock()
	defer w.mu.Unlock()
	sub := &Subscription{w: w, key: key, C: make(chan struct{}, 1)}
	if w.subs[key] == nil {
		w.subs[key] = map[*Subscription]struct{}{}
	}
	w.subs[key][sub] = struct{}{}
	return sub
}

// Current returns the profile, or nil when none exists. The value is shared:
// callers must not modify it.
func (s *Subscription) Current() *destinationv1.DestinationProfile {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return s.w.profiles[s.key]
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	delete(s.w.subs[s.key], s)
	if len(s.w.subs[s.key]) == 0 {
		delete(s.w.subs, s.key)
	}
}
