package promsource_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"

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
)

// startDestination runs weft's destination service on loopback over a fake
// cluster holding Service demo/books, whose one endpoint is 127.0.0.1:port
// (pod books-1 of deploy/books), and a ServiceProfile with routes GET /ok
// and GET /fail. It returns the gRPC address.
func startDestination(t *testing.T, port int32) string {
	t.Helper()
	ctrl, ready := true, true
	name := "http"
	kube := fake.NewClientset(
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "books"},
			Spec: corev1.ServiceSpec{ClusterIPs: []string{"198.19.0.40"}, Ports: []corev1.ServicePort{
				{Name: name, Port: 80, Protocol: corev1.ProtocolTCP}}},
		},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "books-1", Labels: map[string]string{"pod-template-hash": "abc"},
				OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "books-abc", Controller: &ctrl}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "127.0.0.1"},
		},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "demo", Name: "books-x", Labels: map[string]string{discoveryv1.LabelServiceName: "books"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "demo", Name: "books-1"}}},
		},
	)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{sp.GroupVersionResource: "ServiceProfileList"})
	route := func(name, path string) map[string]any {
		return map[string]any{"name": name, "condition": map[string]any{"method": "GET", "pathRegex": path}}
	}
	profile := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "weft.io/v1alpha1", "kind": "ServiceProfile",
		"metadata": map[string]any{"name": booksHost, "namespace": "demo"},
		"spec":     map[string]any{"routes": []any{route("GET /ok", "/ok"), route("GET /fail", "/fail")}},
	}}
	if _, err := dyn.Resource(sp.GroupVersionResource).Namespace("demo").Create(context.Background(), profile, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	srv, err := destination.New(destination.Config{Client: kube, Dynamic: dyn, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, admin) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("destination: %v", err)
		}
	})
	return lis.Addr().String()
}
