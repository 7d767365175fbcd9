package destination

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
)

const (
	benchServices    = 100
	benchEndpoints   = 100 // per service: 10 000 in all
	benchSubscribers = 10  // per service: 1 000 streams in all
)

func benchSlice(svc, extra int) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("s%d", svc), Labels: map[string]string{discoveryv1.LabelServiceName: fmt.Sprintf("s%d", svc)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080)), Protocol: ptr(corev1.ProtocolTCP)}},
	}
	for i := 0; i < benchEndpoints+extra; i++ {
		n := svc*(benchEndpoints+64) + i
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("198.18.%d.%d", 64+n/250, 1+n%250)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
		})
	}
	return es
}

// BenchmarkFanout measures, with 10 000 endpoints behind 100 services and
// 1 000 open Get streams, the delay from an EndpointSlice change to its update
// arriving at every subscriber of that service, and the heap this costs. Each
// iteration changes every service once.
func BenchmarkFanout(b *testing.B) {
	kube := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for s := range benchServices {
		name := fmt.Sprintf("s%d", s)
		if _, err := kube.CoreV1().Services("bench").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
		}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := kube.DiscoveryV1().EndpointSlices("bench").Create(ctx, benchSlice(s, 0), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(k8sruntime.NewScheme(), map[schema.GroupVersionResource]string{sp.GroupVersionResource: "ServiceProfileList"})
	srv, err := New(Config{Client: kube, Dynamic: dyn})
	if err != nil {
		b.Fatal(err)
	}
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	admin, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ctx, lis, admin)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := destinationv1.NewDestinationClient(conn)
	// arrivals[s] receives the arrival time of each update for service s.
	arrivals := make([]chan time.Time, benchServices)
	var ready sync.WaitGroup
	for s := range benchServices {
		arrivals[s] = make(chan time.Time, benchSubscribers*4)
		for range benchSubscribers {
			ready.Add(1)
			stream, err := client.Get(ctx, &destinationv1.GetDestination{Path: fmt.Sprintf("s%d.bench.svc.cluster.local:80", s)})
			if err != nil {
				b.Fatal(err)
			}
			go func(s int) {
				first := true
				for {
					if _, err := stream.Recv(); err != nil {
						return
					}
					if first {
						first = false
						ready.Done()
						continue
					}
					arrivals[s] <- time.Now()
				}
			}(s)
		}
	}
	ready.Wait()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	var delays []time.Duration
	b.ResetTimer()
	for i := range b.N {
		for s := range benchServices {
			start := time.Now()
			if _, err := kube.DiscoveryV1().EndpointSlices("bench").Update(ctx, benchSlice(s, 1+i%2), metav1.UpdateOptions{}); err != nil {
				b.Fatal(err)
			}
			for range benchSubscribers {
				select {
				case at := <-arrivals[s]:
					delays = append(delays, at.Sub(start))
				case <-time.After(30 * time.Second):
					b.Fatal("update not delivered within 30s")
				}
			}
		}
	}
	b.StopTimer()
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	q := func(f float64) float64 { return float64(delays[int(f*float64(len(delays)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/(1<<20), "streams-heap-MiB")
	b.ReportMetric(float64(before.HeapInuse)/(1<<20), "watch-heap-MiB")
}
