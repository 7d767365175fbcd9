package watcher

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

func ptr[T any](v T) *T { return &v }

func svcObj(ns, name string, port int32, portName string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			ClusterIPs: []string{"198.19.0.50"},
			Ports:      []corev1.ServicePort{{Name: portName, Port: port, Protocol: corev1.ProtocolTCP}},
		},
	}
}

type ep struct {
	ip, pod            string
	ready, terminating bool
}

func slice(ns, svc, name, portName string, target int32, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr(portName), Port: ptr(target), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for _, e := range eps {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{e.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(e.ready), Serving: ptr(true), Terminating: ptr(e.terminating)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: e.pod},
			Zone:       ptr("zone-a"),
		})
	}
	return es
}

func pod(ns, name, ip, sa string, meshed bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"pod-template-hash": "abc12"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "books-abc12", Controller: ptr(true)}}},
		Spec:   corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "app"}}},
		Status: corev1.PodStatus{PodIP: ip},
	}
	if meshed {
		p.Annotations = map[string]string{ProxyVersionAnnotation: "dev"}
	}
	return p
}

func startWatcher(t *testing.T, objs ...any) (*Watcher, kubernetes.Interface) {
	t.Helper()
	cs := fake.NewClientset()
	ctx := context.Background()
	for _, o := range objs {
		var err error
		switch v := o.(type) {
		case *corev1.Service:
			_, err = cs.CoreV1().Services(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		case *discoveryv1.EndpointSlice:
			_, err = cs.DiscoveryV1().EndpointSlices(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		case *corev1.Pod:
			_, err = cs.CoreV1().Pods(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	w := New(Config{Client: cs})
	runCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(func() { cancel(); w.Shutdown() })
	if err := w.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	return w, cs
}

// waitChange waits for the subscription to be signalled and returns the change.
// Signals coalesce, so a signal may carry nothing new: keep waiting.
func waitChange(t *testing.T, sub *Subscription) Change {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-sub.C:
		case <-deadline:
			t.Fatal("no update within 10s")
		}
		if ch, ok := sub.Next(); ok {
			return ch
		}
	}
}

func addrs(set AddressSet) []string {
	var out []string
	for k := range set.Addresses {
		out = append(out, k.String())
	}
	sort.Strings(out)
	return out
}

func TestSubscribeInitialAndScale(t *testing.T) {
	t.Parallel()
	w, cs := startWatcher(t,
		svcObj("demo", "books", 80, "http"),
		slice("demo", "books", "books-1", "http", 7000, ep{"198.18.0.5", "books-1", true, false}),
		pod("demo", "books-1", "198.18.0.5", "books", true),
	)
	sub := w.Subscribe(ServiceID{"demo", "books"}, 80)
	defer sub.Close()
	first, ok := sub.Next()
	if !ok || !first.Set.Exists || fmt.Sprint(addrs(first.Set)) != "[198.18.0.5:7000]" {
		t.Fatalf("initial set = %v exists=%v", addrs(first.Set), first.Set.Exists)
	}
	a := first.Set.Addresses[netip.MustParseAddrPort("198.18.0.5:7000")]
	if a.Pod == nil || !a.Pod.Meshed || a.Pod.ServiceAccount != "books" || a.Pod.OwnerKind != "Deployment" || a.Pod.OwnerName != "books" || a.Zone != "zone-a" {
		t.Fatalf("address metadata = %+v pod=%+v", a, a.Pod)
	}

	// Scale to three.
	_, err := cs.DiscoveryV1().EndpointSlices("demo").Update(context.Background(), slice("demo", "books", "books-1", "http", 7000,
		ep{"198.18.0.5", "books-1", true, false}, ep{"198.18.0.6", "books-2", true, false}, ep{"198.18.0.7", "books-3", true, false}), metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch := waitChange(t, sub)
	if len(ch.Added) != 2 || len(ch.Removed) != 0 || len(ch.Set.Addresses) != 3 {
		t.Fatalf("scale up: added %d removed %d total %d", len(ch.Added), len(ch.Removed), len(ch.Set.Addresses))
	}
	// Back to one; a not-ready endpoint is dropped.
	_, err = cs.DiscoveryV1().EndpointSlices("demo").Update(context.Background(), slice("demo", "books", "books-1", "http", 7000,
		ep{"198.18.0.5", "books-1", true, false}, ep{"198.18.0.6", "books-2", false, false}), metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch = waitChange(t, sub)
	if len(ch.Removed) != 2 || len(ch.Set.Addresses) != 1 {
		t.Fatalf("scale down: removed %v total %d", ch.Removed, len(ch.Set.Addresses))
	}
}

func TestTerminatingFallbackOnlyWhenNoneReady(t *testing.T) {
	t.Parallel()
	w, _ := startWatcher(t,
		svcObj("demo", "web", 8080, "http"),
		slice("demo", "web", "web-1", "http", 8080, ep{"198.18.0.9", "web-1", false, true}),
		slice("demo", "web", "web-2", "http", 8080, ep{"198.18.0.10", "web-2", false, true}),
	)
	sub := w.Subscribe(ServiceID{"demo", "web"}, 8080)
	defer sub.Close()
	ch, _ := sub.Next()
	if len(ch.Set.Addresses) != 2 {
		t.Fatalf("no ready endpoints: want the 2 serving-terminating ones, got %v", addrs(ch.Set))
	}
	for _, a := range ch.Set.Addresses {
		if !a.Terminating {
			t.Fatalf("%v should be marked terminating", a.AddrPort)
		}
	}
}

func TestUnknownServiceAndPort(t *testing.T) {
	t.Parallel()
	w, cs := startWatcher(t, svcObj("demo", "books", 80, "http"))
	sub := w.Subscribe(ServiceID{"demo", "nope"}, 80)
	defer sub.Close()
	if ch, _ := sub.Next(); ch.Set.Exists {
		t.Fatal("unknown service reported as existing")
	}
	other := w.Subscribe(ServiceID{"demo", "books"}, 81)
	defer other.Close()
	if ch, _ := other.Next(); ch.Set.Exists {
		t.Fatal("unknown port reported as existing")
	}
	// The service appears: its subscriber is told.
	if _, err := cs.CoreV1().Services("demo").Create(context.Background(), svcObj("demo", "nope", 80, "http"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ch := waitChange(t, sub); !ch.Set.Exists || !ch.ExistsChanged {
		t.Fatal("service creation not published")
	}
}

func TestPodBecomingMeshedRepublishes(t *testing.T) {
	t.Parallel()
	w, cs := startWatcher(t,
		svcObj("demo", "books", 80, "http"),
		slice("demo", "books", "books-1", "http", 7000, ep{"198.18.0.5", "books-1", true, false}),
		pod("demo", "books-1", "198.18.0.5", "books", false),
	)
	sub := w.Subscribe(ServiceID{"demo", "books"}, 80)
	defer sub.Close()
	ch, _ := sub.Next()
	if a := ch.Set.Addresses[netip.MustParseAddrPort("198.18.0.5:7000")]; a.Pod == nil || a.Pod.Meshed {
		t.Fatal("pod should start unmeshed")
	}
	if _, err := cs.CoreV1().Pods("demo").Update(context.Background(), pod("demo", "books-1", "198.18.0.5", "books", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	ch = waitChange(t, sub)
	if len(ch.Added) != 1 || !ch.Added[0].Pod.Meshed {
		t.Fatalf("meshed pod not republished: %+v", ch.Added)
	}
	if _, isSvc, p := w.LookupIP(netip.MustParseAddr("198.18.0.5")); isSvc || p == nil || p.Name != "books-1" {
		t.Fatalf("pod IP lookup = %v %+v", isSvc, p)
	}
	if id, isSvc, _ := w.LookupIP(netip.MustParseAddr("198.19.0.50")); !isSvc || id.Name != "books" {
		t.Fatalf("cluster IP lookup = %v %v", id, isSvc)
	}
}

// TestSlowSubscriberCoalesces proves a subscriber that does not read is never
// blocked on and, when it reads, gets one change from what it saw to now.
func TestSlowSubscriberCoalesces(t *testing.T) {
	t.Parallel()
	w, cs := startWatcher(t,
		svcObj("demo", "books", 80, "http"),
		slice("demo", "books", "books-1", "http", 7000, ep{"198.18.0.5", "books-1", true, false}),
	)
	slow := w.Subscribe(ServiceID{"demo", "books"}, 80)
	defer slow.Close()
	slow.Next()
	fast := w.Subscribe(ServiceID{"demo", "books"}, 80)
	defer fast.Close()
	fast.Next()
	for i := 6; i < 16; i++ {
		eps := []ep{{"198.18.0.5", "books-1", true, false}}
		for j := 6; j <= i; j++ {
			eps = append(eps, ep{fmt.Sprintf("198.18.0.%d", j), fmt.Sprintf("books-%d", j), true, false})
		}
		if _, err := cs.DiscoveryV1().EndpointSlices("demo").Update(context.Background(), slice("demo", "books", "books-1", "http", 7000, eps...), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitChange(t, fast) // the fast one keeps up, one change per update
	}
	ch := waitChange(t, slow)
	if len(ch.Added) != 10 || len(ch.Set.Addresses) != 11 {
		t.Fatalf("slow subscriber: added %d, total %d; want 10 and 11", len(ch.Added), len(ch.Set.Addresses))
	}
	if _, more := slow.Next(); more {
		t.Fatal("slow subscriber got a second change for the same state")
	}
}

func TestParsePorts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []uint32
	}{
		{"", nil},
		{"25, 3306", []uint32{25, 3306}},
		{"8000-8002", []uint32{8000, 8001, 8002}},
		{"x,9-8,70000,11211", []uint32{11211}},
	}
	for _, tt := range tests {
		got := ParsePorts(tt.in)
		var keys []uint32
		for k := range got {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		if fmt.Sprint(keys) != fmt.Sprint(tt.want) && !(len(keys) == 0 && len(tt.want) == 0) {
			t.Errorf("ParsePorts(%q) = %v, want %v", tt.in, keys, tt.want)
		}
	}
}
