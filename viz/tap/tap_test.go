package tap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
)

func req(id uint64) *tapv1.Event {
	return &tapv1.Event{Id: id, Kind: &tapv1.Event_Request{Request: &tapv1.RequestInit{Method: "GET", Path: "/"}}}
}
func rsp(id uint64) *tapv1.Event {
	return &tapv1.Event{Id: id, Kind: &tapv1.Event_Response{Response: &tapv1.ResponseInit{Status: 200}}}
}
func end(id uint64) *tapv1.Event {
	return &tapv1.Event{Id: id, Kind: &tapv1.Event_End{End: &tapv1.ResponseEnd{}}}
}

// fakeSource replays fixed events per pod, then blocks until ctx ends.
type fakeSource struct {
	mu     sync.Mutex
	events map[string][]*tapv1.Event
	opened []string
}

func (f *fakeSource) Observe(ctx context.Context, pod *corev1.Pod, _ *tapv1.ObserveRequest) (func() (*tapv1.Event, error), error) {
	f.mu.Lock()
	evs := f.events[pod.Name]
	f.opened = append(f.opened, pod.Name)
	f.mu.Unlock()
	i := 0
	return func() (*tapv1.Event, error) {
		if i < len(evs) {
			i++
			return evs[i-1], nil
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}, nil
}

func pod(name string) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}, Status: corev1.PodStatus{PodIP: "198.18.0." + name[len(name)-1:]}}
}

func TestMergerLimitAcrossPods(t *testing.T) {
	src := &fakeSource{events: map[string][]*tapv1.Event{
		"web-1": {req(1), rsp(1), end(1), req(2), rsp(2), end(2)},
		"web-2": {req(1), rsp(1), end(1), req(2), end(2)},
	}}
	m := &Merger{Source: src, Follow: time.Hour, Pods: func(context.Context) ([]corev1.Pod, error) {
		return []corev1.Pod{pod("web-1"), pod("web-2")}, nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []Event
	if err := m.Run(ctx, &tapv1.ObserveRequest{}, 3, func(ev Event) error { got = append(got, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("merger did not stop at the limit")
	}
	reqs, ends := 0, 0
	perPod := map[string]int{}
	for _, ev := range got {
		perPod[ev.Pod]++
		switch ev.Event.Kind.(type) {
		case *tapv1.Event_Request:
			reqs++
		case *tapv1.Event_End:
			ends++
		}
	}
	if reqs != 3 || ends != 3 {
		t.Fatalf("%d requests, %d ends, want 3 and 3: %v", reqs, ends, got)
	}
	if perPod["web-1"] == 0 || perPod["web-2"] == 0 {
		t.Fatalf("streams not merged: %v", perPod)
	}
}

func TestMergerFollowsNewPods(t *testing.T) {
	src := &fakeSource{events: map[string][]*tapv1.Event{"web-1": {req(1), end(1)}, "web-2": {req(1), end(1)}}}
	var mu sync.Mutex
	pods := []corev1.Pod{pod("web-1")}
	m := &Merger{Source: src, Follow: 10 * time.Millisecond, Pods: func(context.Context) ([]corev1.Pod, error) {
		mu.Lock()
		defer mu.Unlock()
		return pods, nil
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := 0
	err := m.Run(ctx, &tapv1.ObserveRequest{}, 2, func(ev Event) error {
		n++
		if n == 2 { // web-1 is done: a new pod appears
			mu.Lock()
			pods = []corev1.Pod{pod("web-2")}
			mu.Unlock()
		}
		return nil
	})
	if err != nil || ctx.Err() != nil || n != 4 {
		t.Fatalf("err %v ctx %v events %d, want 4 events before the deadline", err, ctx.Err(), n)
	}
}

func TestMergerPropagatesEmitError(t *testing.T) {
	src := &fakeSource{events: map[string][]*tapv1.Event{"web-1": {req(1)}}}
	m := &Merger{Source: src, Pods: func(context.Context) ([]corev1.Pod, error) { return []corev1.Pod{pod("web-1")}, nil }}
	boom := errors.New("client gone")
	if err := m.Run(context.Background(), &tapv1.ObserveRequest{}, 0, func(Event) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

func TestCodecRoundTrip(t *testing.T) {
	var b bytes.Buffer
	in := []Event{{Namespace: "demo", Pod: "web-1", Event: req(7)}, {Namespace: "demo", Pod: "web-2", Event: end(7)}}
	for _, ev := range in {
		if err := WriteEvent(&b, ev); err != nil {
			t.Fatal(err)
		}
	}
	d := NewDecoder(&b)
	for i := range in {
		ev, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Pod != in[i].Pod || ev.Event.GetId() != 7 {
			t.Fatalf("event %d = %+v", i, ev)
		}
	}
	if _, err := d.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func FuzzDecodeLine(f *testing.F) {
	f.Add([]byte(`{"namespace":"demo","pod":"web-1","event":{"id":"1","request":{"method":"GET"}}}`))
	f.Add([]byte(`{"event":{"end":{"grpcStatus":-1}}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := DecodeLine(line)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteEvent(&b, ev); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodeLine(bytes.TrimSpace(b.Bytes())); err != nil {
			t.Fatalf("decode of re-encoded line: %v", err)
		}
	})
}

func TestDeniedMessage(t *testing.T) {
	msg := DeniedMessage("system:serviceaccount:demo:nobody", Target{Namespace: "demo", Resource: "deployments", Name: "web"})
	for _, want := range []string{`"watch" on "deployments/tap"`, "tap.weft.io", "kubectl create clusterrolebinding", "--clusterrole=weft-viz-tap", "--serviceaccount=demo:nobody"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in, res, ns string
		ok          bool
	}{
		{"deploy/web", "deployments", "demo", true},
		{"sts/db", "statefulsets", "demo", true},
		{"ns/prod", "namespaces", "prod", true},
		{"svc/web", "services", "demo", true},
		{"web", "", "", false},
		{"cronjob/x", "", "", false},
	} {
		got, err := ParseTarget(tc.in, "demo")
		if (err == nil) != tc.ok || (tc.ok && (got.Resource != tc.res || got.Namespace != tc.ns)) {
			t.Errorf("ParseTarget(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Target
		ok   bool
	}{
		{"/apis/tap.weft.io/v1alpha1/watch/namespaces/demo/deployments/web/tap", Target{"demo", "deployments", "web"}, true},
		{"/apis/tap.weft.io/v1alpha1/watch/namespaces/demo/namespaces/demo/tap", Target{"demo", "namespaces", "demo"}, true},
		{"/apis/tap.weft.io/v1alpha1/watch/namespaces/demo/namespaces/prod/tap", Target{}, false},
		{"/apis/tap.weft.io/v1alpha1/namespaces/demo/deployments/web/tap", Target{}, false},
		{"/apis/tap.weft.io/v1alpha1/watch/namespaces/demo/cronjobs/web/tap", Target{}, false},
		{"/apis/tap.weft.io/v1alpha1/watch/namespaces/demo/deployments/web/exec", Target{}, false},
	} {
		got, ok := ParsePath(tc.path)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParsePath(%s) = %+v %v", tc.path, got, ok)
		}
		if ok && Path(got) != tc.path {
			t.Errorf("Path(%+v) = %s", got, Path(got))
		}
	}
}

func TestParseRequestHeader(t *testing.T) {
	ca := `-----BEGIN CERTIFICATE-----
MIIBeTCCASCgAwIBAgIRAP43niPd6F/cFKEjFAM20ckwCgYIKoZIzj0EAwIwGjEY
MBYGA1UEAxMPd2ViaG9vay53ZWZ0LmlvMCAXDTI2MTEyMjAwMjQwNloYDzIwNjYx
MTEyMDAyNDI2WjAaMRgwFgYDVQQDEw93ZWJob29rLndlZnQuaW8wWTATBgcqhkjO
PQIBBggqhkjOPQMBBwNCAAQRxY6OauH5GZ+5dZ4gdha6k62u2V8L4qvv8sOpGLx5
J1/mwUxit2OvlvnqEAgTjylddebh35gBcvAsVrpL0kbPo0UwQzAOBgNVHQ8BAf8E
BAMCAQYwEgYDVR0TAQH/BAgwBgEB/wIBATAdBgNVHQ4EFgQUesp68kpKuRE+fKoJ
vyQgKP7D/wcwCgYIKoZIzj0EAwIDRwAwRAIgSg7P1RsQh2qM59mdofxmuav2x30Z
BKjZYsVoCL0tYQ0CIHG0aSLS7LPKsSGjcVoSdobA2X04pCeRiy9PA2bQTzvq
-----END CERTIFICATE-----
`
	for _, tc := range []struct {
		name string
		data map[string]string
		want string
	}{
		{"ok", map[string]string{"requestheader-client-ca-file": ca, "requestheader-allowed-names": `["front-proxy-client"]`}, ""},
		{"no CA", map[string]string{}, "--requestheader-client-ca-file"},
		{"not PEM", map[string]string{"requestheader-client-ca-file": "junk"}, "no PEM certificate"},
		{"bad names", map[string]string{"requestheader-client-ca-file": ca, "requestheader-allowed-names": `front-proxy-client`}, "requestheader-allowed-names"},
	} {
		rh, err := ParseRequestHeader(tc.data)
		switch {
		case tc.want == "" && (err != nil || rh.AllowedNames[0] != "front-proxy-client"):
			t.Errorf("%s: %+v %v", tc.name, rh, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestPeers(t *testing.T) {
	in := Event{Namespace: "demo", Pod: "web-1", Workload: "deploy/web", Event: &tapv1.Event{Direction: "inbound",
		ClientId: "spiffe://cluster.local/ns/load/sa/traffic", ServerId: "spiffe://cluster.local/ns/demo/sa/web"}}
	src, dst := Peers(in)
	if src.Name() != "sa/traffic" || src.Namespace != "load" || dst.Name() != "deploy/web" || dst.Pod != "web-1" {
		t.Errorf("inbound: %+v → %+v", src, dst)
	}
	out := Event{Namespace: "demo", Pod: "web-1", Workload: "deploy/web", Event: &tapv1.Event{Direction: "outbound", TargetAddr: "198.18.0.9:7000",
		DestinationLabels: map[string]string{"statefulset": "db", "namespace": "data"}}}
	src, dst = Peers(out)
	if src.Name() != "deploy/web" || dst.Name() != "sts/db" || dst.Namespace != "data" || dst.Addr != "198.18.0.9:7000" {
		t.Errorf("outbound: %+v → %+v", src, dst)
	}
	plain := Event{Namespace: "demo", Pod: "web-1", Event: &tapv1.Event{Direction: "outbound", TargetAddr: "198.18.0.9:80"}}
	probe := Event{Namespace: "demo", Pod: "web-1", Event: &tapv1.Event{Direction: "inbound", SourceAddr: "198.18.0.1:53864"}}
	if src, _ := Peers(probe); src.Name() != "198.18.0.1" {
		t.Errorf("unmeshed client: %+v shows as %s, want its IP", src, src.Name())
	}
	if _, dst := Peers(plain); dst.Name() != "198.18.0.9" || dst.Addr != "198.18.0.9:80" {
		t.Errorf("unmeshed destination: %+v", dst)
	}
}
