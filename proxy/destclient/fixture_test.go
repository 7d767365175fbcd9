package destclient

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
	"github.com/weftmesh/weft/destination"
	"github.com/weftmesh/weft/destination/watcher"
	"github.com/weftmesh/weft/proxy/target"
)

func ptr[T any](v T) *T { return &v }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// controlPlane is an in-process destination service over fake clientsets
// that can be stopped and started again on the same address.
type controlPlane struct {
	kube   *fake.Clientset
	dyn    *dynamicfake.FakeDynamicClient
	addr   string
	cancel context.CancelFunc
	done   chan error
}

const (
	booksName = "books.demo.svc.cluster.local:80"
	booksVIP  = "198.19.0.40"
)

func service(name, vip string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: name},
		Spec: corev1.ServiceSpec{ClusterIPs: []string{vip}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
}

func newControlPlane(t *testing.T) *controlPlane { return newControlPlaneB(t) }

func newControlPlaneB(t testing.TB) *controlPlane {
	t.Helper()
	kube := fake.NewClientset(
		service("books", booksVIP),
		service("books-v2", "198.19.0.41"),
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "books-1", Annotations: map[string]string{watcher.ProxyVersionAnnotation: "dev"}},
			Spec:       corev1.PodSpec{ServiceAccountName: "books"},
			Status:     corev1.PodStatus{PodIP: "198.18.0.5"},
		},
		slice("books", "198.18.0.5"),
		slice("books-v2", "198.18.0.20"),
	)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{sp.GroupVersionResource: "ServiceProfileList"})
	cp := &controlPlane{kube: kube, dyn: dyn, addr: "127.0.0.1:0"}
	cp.start(t)
	t.Cleanup(func() { cp.stop(t) })
	return cp
}

func (cp *controlPlane) start(t testing.TB) {
	t.Helper()
	srv, err := destination.New(destination.Config{Client: cp.kube, Dynamic: cp.dyn, TrustDomain: "example.org", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var lis net.Listener
	for i := 0; ; i++ { // the old socket may linger briefly after a stop
		if lis, err = net.Listen("tcp", cp.addr); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	cp.addr = lis.Addr().String()
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cp.cancel, cp.done = cancel, make(chan error, 1)
	go func() { cp.done <- srv.Serve(ctx, lis, admin) }()
}

func (cp *controlPlane) stop(t testing.TB) {
	t.Helper()
	if cp.cancel == nil {
		return
	}
	cp.cancel()
	if err := <-cp.done; err != nil {
		t.Errorf("serve: %v", err)
	}
	cp.cancel = nil
}

// slice is the EndpointSlice of service svc with the given ready IPs on
// port 7000; the first IP is the books-1 pod's.
func slice(svc string, ips ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "demo", Name: svc + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(7000)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for i, ip := range ips {
		e := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}
		if i == 0 && svc == "books" {
			e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: "demo", Name: "books-1"}
		}
		es.Endpoints = append(es.Endpoints, e)
	}
	return es
}

func (cp *controlPlane) setEndpoints(t testing.TB, svc string, ips ...string) {
	t.Helper()
	ctx := context.Background()
	es := cp.kube.DiscoveryV1().EndpointSlices("demo")
	if len(ips) == 0 {
		if err := es.Delete(ctx, svc+"-x", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := es.Update(ctx, slice(svc, ips...), metav1.UpdateOptions{}); err != nil {
		if _, err := es.Create(ctx, slice(svc, ips...), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func serviceProfile(spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "weft.io/v1alpha1", "kind": "ServiceProfile",
		"metadata": map[string]any{"name": "books.demo.svc.cluster.local", "namespace": "demo"},
		"spec":     spec,
	}}
}

func newClientB(t testing.TB, cp *controlPlane) *Client { return newClient(t, cp, nil) }

func newClient(t testing.TB, cp *controlPlane, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{Addr: cp.addr, FailFastTimeout: 500 * time.Millisecond, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Logger: quiet}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// eventually polls cond every 10 ms for up to 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// picked resolves n times, as n concurrent requests (each request's load
// ends after all were sent), and counts the addresses picked.
func picked(t *testing.T, c *Client, authority string, orig netip.AddrPort, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	type pending struct {
		l   target.Load
		tok int64
	}
	var ends []pending
	for i := 0; i < n; i++ {
		ep, err := c.Resolve(authority, orig)
		if err != nil {
			t.Fatalf("resolve %s: %v", authority, err)
		}
		if ep.Load != nil {
			ends = append(ends, pending{ep.Load, ep.Load.Begin()})
		}
		out[ep.Addr.String()]++
	}
	for _, p := range ends {
		p.l.End(p.tok, false)
	}
	return out
}

func keys(m map[string]int) string { return fmt.Sprint(len(m), m) }
