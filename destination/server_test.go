package destination

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
	"github.com/weftmesh/weft/destination/watcher"
)

func ptr[T any](v T) *T { return &v }

type fixture struct {
	client destinationv1.DestinationClient
	kube   *fake.Clientset
	dyn    *dynamicfake.FakeDynamicClient
	admin  string
}

func startServer(t *testing.T) fixture {
	t.Helper()
	kube := fake.NewClientset(
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "books", Annotations: map[string]string{watcher.OpaquePortsAnnotation: "3306"}},
			Spec: corev1.ServiceSpec{ClusterIPs: []string{"198.19.0.40"}, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}, {Name: "db", Port: 3306, Protocol: corev1.ProtocolTCP}}},
		},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "books-1", Annotations: map[string]string{watcher.ProxyVersionAnnotation: "dev"}},
			Spec:       corev1.PodSpec{ServiceAccountName: "books"},
			Status:     corev1.PodStatus{PodIP: "198.18.0.5"},
		},
		endpointSlice("198.18.0.5"),
	)
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{sp.GroupVersionResource: "ServiceProfileList"})
	srv, err := New(Config{Client: kube, Dynamic: dyn, TrustDomain: "example.org", SelfTestAuthority: "books.demo.svc.cluster.local:80"})
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
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return fixture{destinationv1.NewDestinationClient(conn), kube, dyn, admin.Addr().String()}
}

func endpointSlice(ips ...string) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "demo", Name: "books-x", Labels: map[string]string{discoveryv1.LabelServiceName: "books"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr("http"), Port: ptr(int32(7000)), Protocol: ptr(corev1.ProtocolTCP)},
			{Name: ptr("db"), Port: ptr(int32(3306)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for i, ip := range ips {
		name := "books-1"
		if i > 0 {
			name = "books-other"
		}
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "demo", Name: name},
		})
	}
	return es
}

func recvUpdate(t *testing.T, s grpc.ServerStreamingClient[destinationv1.Update]) *destinationv1.Update {
	t.Helper()
	u, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGetServiceStreamsChanges(t *testing.T) {
	t.Parallel()
	f := startServer(t)
	ctx := ctxT(t)
	stream, err := f.client.Get(ctx, &destinationv1.GetDestination{Path: "books.demo.svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	add := recvUpdate(t, stream).GetAdd()
	if add == nil || len(add.Addrs) != 1 {
		t.Fatalf("first message should add the one endpoint, got %v", add)
	}
	a := add.Addrs[0]
	ip, _ := netip.AddrFromSlice(a.Addr.Ip)
	if ip.String() != "198.18.0.5" || a.Addr.Port != 7000 {
		t.Fatalf("address %v:%d", ip, a.Addr.Port)
	}
	if got := a.GetTlsIdentity().GetSpiffeId(); got != "spiffe://example.org/ns/demo/sa/books" {
		t.Fatalf("identity %q", got)
	}
	if a.MetricLabels["pod"] != "books-1" || add.MetricLabels["service"] != "books" {
		t.Fatalf("labels %v / %v", a.MetricLabels, add.MetricLabels)
	}
	// Scale up, then remove everything.
	if _, err := f.kube.DiscoveryV1().EndpointSlices("demo").Update(ctx, endpointSlice("198.18.0.5", "198.18.0.6"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if add := recvUpdate(t, stream).GetAdd(); add == nil || len(add.Addrs) != 1 || add.Addrs[0].TlsIdentity != nil {
		t.Fatalf("scale up should add one unmeshed endpoint, got %v", add)
	}
	if err := f.kube.DiscoveryV1().EndpointSlices("demo").Delete(ctx, "books-x", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ne := recvUpdate(t, stream).GetNoEndpoints(); ne == nil || !ne.Exists {
		t.Fatalf("all endpoints gone: want NoEndpoints{exists}, got %v", ne)
	}
}

func TestGetByClusterIPAndOpaqueHint(t *testing.T) {
	t.Parallel()
	f := startServer(t)
	stream, err := f.client.Get(ctxT(t), &destinationv1.GetDestination{Path: "198.19.0.40:3306"})
	if err != nil {
		t.Fatal(err)
	}
	add := recvUpdate(t, stream).GetAdd()
	if add == nil || add.Addrs[0].Addr.Port != 3306 || add.Addrs[0].GetProtocolHint().GetProtocol() != destinationv1.ProtocolHint_OPAQUE {
		t.Fatalf("cluster IP on an opaque port: %v", add)
	}
}

func TestGetPodIPAndUnknown(t *testing.T) {
	t.Parallel()
	f := startServer(t)
	ctx := ctxT(t)
	stream, err := f.client.Get(ctx, &destinationv1.GetDestination{Path: "198.18.0.5:7000"})
	if err != nil {
		t.Fatal(err)
	}
	if add := recvUpdate(t, stream).GetAdd(); add == nil || add.Addrs[0].GetTlsIdentity() == nil {
		t.Fatalf("pod IP lookup: %v", add)
	}
	for _, path := range []string{"198.18.9.9:80", "missing.demo.svc.cluster.local:80"} {
		stream, err := f.client.Get(ctx, &destinationv1.GetDestination{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		if ne := recvUpdate(t, stream).GetNoEndpoints(); ne == nil || ne.Exists {
			t.Fatalf("%s: want NoEndpoints{exists:false}, got %v", path, ne)
		}
	}
}

func TestInvalidPath(t *testing.T) {
	t.Parallel()
	f := startServer(t)
	for _, path := range []string{"books", "books.demo:0", "a.b.c.d.e.f:80", ":80"} {
		stream, err := f.client.Get(ctxT(t), &destinationv1.GetDestination{Path: path})
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%q: got %v, want InvalidArgument", path, err)
		}
	}
}

func TestGetProfileFollowsServiceProfile(t *testing.T) {
	t.Parallel()
	f := startServer(t)
	ctx := ctxT(t)
	stream, err := f.client.GetProfile(ctx, &destinationv1.GetDestination{Path: "books.demo.svc.cluster.local:80"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.FullyQualifiedName != "books.demo.svc.cluster.local" || len(first.Routes) != 0 || first.RetryBudget.GetRetryRatio() != 0.2 {
		t.Fatalf("default profile: %v", first)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "weft.io/v1alpha1", "kind": "ServiceProfile",
		"metadata": map[string]any{"name": "books.demo.svc.cluster.local", "namespace": "demo"},
		"spec": map[string]any{"routes": []any{map[string]any{
			"name": "GET /books", "condition": map[string]any{"method": "GET", "pathRegex": "/books"},
			"isRetryable": true, "timeout": "100ms"}}},
	}}
	if _, err := f.dyn.Resource(sp.GroupVersionResource).Namespace("demo").Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	next, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Routes) != 1 || next.Routes[0].Name != "GET /books" || next.Routes[0].Timeout.AsDuration() != 100*time.Millisecond {
		t.Fatalf("profile after create: %v", next)
	}
	opaque, err := f.client.GetProfile(ctx, &destinationv1.GetDestination{Path: "books.demo.svc.cluster.local:3306"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := opaque.Recv(); err != nil || !p.OpaqueProtocol {
		t.Fatalf("opaque port profile: %v %v", p, err)
	}
}

func TestParseTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		svc     string
		ip      string
		port    uint32
		wantErr bool
	}{
		{in: "books.demo.svc.cluster.local:80", svc: "demo/books", port: 80},
		{in: "books.demo.svc:80", svc: "demo/books", port: 80},
		{in: "books.demo:80", svc: "demo/books", port: 80},
		{in: "BOOKS.Demo.svc.cluster.local.:80", svc: "demo/books", port: 80},
		{in: "198.18.0.5:7000", ip: "198.18.0.5", port: 7000},
		{in: "[fd00:198:18::5]:7000", ip: "fd00:198:18::5", port: 7000},
		{in: "books:80", wantErr: true},
		{in: "books.demo.svc.cluster.local", wantErr: true},
		{in: "books.demo:99999", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseTarget(tt.in, "cluster.local")
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if err != nil {
			continue
		}
		if tt.svc != "" && got.Service.String() != tt.svc || tt.ip != "" && got.IP.String() != tt.ip || got.Port != tt.port {
			t.Errorf("%q: got %+v", tt.in, got)
		}
	}
}
