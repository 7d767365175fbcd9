package routes

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	kfake "k8s.io/client-go/kubernetes/fake"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	routesv1 "github.com/weftmesh/weft/api/routes/v1"
	"github.com/weftmesh/weft/proxy/httproute"
)

func svc(ns, name string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

func httpRoute(ns, name string, parent map[string]any, rules ...any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"namespace": ns, "name": name, "generation": int64(1)},
		"spec":     map[string]any{"parentRefs": []any{parent}, "rules": rules},
	}}
}

func serviceParent(name string) map[string]any {
	return map[string]any{"group": "", "kind": "Service", "name": name, "port": int64(80)}
}

func bref(name string, weight int64) map[string]any {
	return map[string]any{"name": name, "port": int64(80), "weight": weight}
}

type harness struct {
	dyn *dynfake.FakeDynamicClient
	c   *Controller
}

func start(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	kube := kfake.NewSimpleClientset(svc("demo", "web"), svc("demo", "web-v2"))
	lists := map[schema.GroupVersionResource]string{HTTPRouteGVR: "HTTPRouteList", GRPCRouteGVR: "GRPCRouteList", HTTPFaultGVR: "HTTPFaultList"}
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), lists, objs...)
	c, err := New(Config{Kube: kube, Dynamic: dyn})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &harness{dyn: dyn, c: c}
}

// waitStatus polls the route's status.parents until weft's entry appears
// (bounded: 200 polls).
func (h *harness) waitStatus(t *testing.T, name string) map[string]map[string]any {
	t.Helper()
	for range 200 {
		u, err := h.dyn.Resource(HTTPRouteGVR).Namespace("demo").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ps, _, _ := unstructured.NestedSlice(u.Object, "status", "parents")
		for _, p := range ps {
			m := p.(map[string]any)
			if m["controllerName"] != DefaultControllerName {
				continue
			}
			out := map[string]map[string]any{}
			for _, c := range m["conditions"].([]any) {
				cm := c.(map[string]any)
				out[cm["type"].(string)] = cm
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no status written for %s", name)
	return nil
}

func TestStatusConditions(t *testing.T) {
	good := httpRoute("demo", "split", serviceParent("web"), map[string]any{"backendRefs": []any{bref("web", 90), bref("web-v2", 10)}})
	missing := httpRoute("demo", "missing-backend", serviceParent("web"), map[string]any{"backendRefs": []any{bref("nope", 1)}})
	unsupported := httpRoute("demo", "session", serviceParent("web"), map[string]any{"sessionPersistence": map[string]any{}, "backendRefs": []any{bref("web", 1)}})
	noParent := httpRoute("demo", "orphan", serviceParent("ghost"), map[string]any{"backendRefs": []any{bref("web", 1)}})
	badFilter := httpRoute("demo", "cors", serviceParent("web"), map[string]any{"filters": []any{map[string]any{"type": "CORS"}}, "backendRefs": []any{bref("web", 1)}})
	h := start(t, good, missing, unsupported, noParent, badFilter)
	for _, c := range []struct {
		route                          string
		accepted, resolved             string
		acceptedReason, resolvedReason string
	}{
		{"split", "True", "True", ReasonAccepted, ReasonResolvedRefs},
		{"missing-backend", "True", "False", ReasonAccepted, ReasonBackendNotFound},
		{"session", "False", "True", ReasonUnsupported, ReasonResolvedRefs},
		{"orphan", "False", "True", ReasonNoMatchingParent, ReasonResolvedRefs},
		{"cors", "False", "True", ReasonUnsupported, ReasonResolvedRefs},
	} {
		conds := h.waitStatus(t, c.route)
		a, r := conds["Accepted"], conds["ResolvedRefs"]
		if a["status"] != c.accepted || a["reason"] != c.acceptedReason || r["status"] != c.resolved || r["reason"] != c.resolvedReason {
			t.Errorf("%s: Accepted %v/%v (%v), ResolvedRefs %v/%v (%v); want %s/%s, %s/%s", c.route, a["status"], a["reason"], a["message"], r["status"], r["reason"], r["message"], c.accepted, c.acceptedReason, c.resolved, c.resolvedReason)
		}
	}
	routes, _ := h.c.Routes(Key{Namespace: "demo", Name: "web", Port: 80}, "demo")
	names := []string{}
	for _, r := range routes {
		names = append(names, r.Name)
	}
	if len(names) != 2 || names[0] != "missing-backend" || names[1] != "split" {
		t.Fatalf("served routes %v, want [missing-backend split] (rejected routes are not served)", names)
	}
}

// TestUpdatesStream: editing a route's weights closes the change channel and
// the next read carries the new weights; a consumer route replaces the
// producer routes for its namespace only.
func TestUpdatesStream(t *testing.T) {
	r := httpRoute("demo", "split", serviceParent("web"), map[string]any{"backendRefs": []any{bref("web", 90), bref("web-v2", 10)}})
	h := start(t, r)
	h.waitStatus(t, "split")
	var changed <-chan struct{}
	for range 200 {
		var rs []any
		got, ch := h.c.Routes(Key{Namespace: "demo", Name: "web", Port: 80}, "demo")
		changed = ch
		if len(got) == 1 {
			_ = rs
			if w := got[0].Rules[0].Backends[1].Weight; w != 10 {
				t.Fatalf("canary weight %d, want 10", w)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	u, err := h.dyn.Resource(HTTPRouteGVR).Namespace("demo").Get(context.Background(), "split", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"backendRefs": []any{bref("web", 50), bref("web-v2", 50)}}}, "spec", "rules")
	if _, err := h.dyn.Resource(HTTPRouteGVR).Namespace("demo").Update(context.Background(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	consumer := httpRoute("client-ns", "pin", map[string]any{"group": "", "kind": "Service", "name": "web", "namespace": "demo"}, map[string]any{})
	if _, err := h.dyn.Resource(HTTPRouteGVR).Namespace("client-ns").Create(context.Background(), consumer, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		select {
		case <-changed:
		case <-time.After(5 * time.Second):
			t.Fatal("no change notification after an edit")
		}
		got, ch := h.c.Routes(Key{Namespace: "demo", Name: "web", Port: 80}, "demo")
		changed = ch
		cons, _ := h.c.Routes(Key{Namespace: "demo", Name: "web", Port: 80}, "client-ns")
		if len(got) == 1 && got[0].Rules[0].Backends[1].Weight == 50 && len(cons) == 1 && cons[0].Name == "pin" {
			return
		}
	}
	t.Fatal("edit and consumer route never served")
}

func TestServerStreamsEdits(t *testing.T) {
	r := httpRoute("demo", "split", serviceParent("web"), map[string]any{"backendRefs": []any{bref("web", 90), bref("web-v2", 10)}})
	h := start(t, r)
	h.waitStatus(t, "split")
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	NewServer(h.c).Register(gs)
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := routesv1.NewRoutesClient(conn).Watch(ctx, &routesv1.WatchRequest{Namespace: "demo", Name: "web", Port: 80, ClientNamespace: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	weights := func() []int {
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var rs []httproute.RouteSpec
		if err := json.Unmarshal(m.RoutesJson, &rs); err != nil {
			t.Fatal(err)
		}
		if _, err := httproute.Compile(rs, httproute.Options{}); err != nil {
			t.Fatalf("streamed routes do not compile: %v", err)
		}
		var w []int
		for _, r := range rs {
			for _, b := range r.Rules[0].Backends {
				w = append(w, b.Weight)
			}
		}
		return w
	}
	if w := weights(); len(w) != 2 || w[1] != 10 {
		t.Fatalf("first table weights %v, want [90 10]", w)
	}
	u, err := h.dyn.Resource(HTTPRouteGVR).Namespace("demo").Get(ctx, "split", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"backendRefs": []any{bref("web", 50), bref("web-v2", 50)}}}, "spec", "rules")
	if _, err := h.dyn.Resource(HTTPRouteGVR).Namespace("demo").Update(ctx, u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if w := weights(); len(w) != 2 || w[1] != 50 {
		t.Fatalf("after the edit weights %v, want [50 50]", w)
	}
}
