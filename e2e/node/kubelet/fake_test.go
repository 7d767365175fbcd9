package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeRuntime records what the kubelet asks of it, in order.
type fakeRuntime struct {
	mu     sync.Mutex
	events []string
	pid    int
	// behave decides how a started container behaves; nil means it runs until signalled.
	behave func(spec ContainerSpec) behaviour
	// exec answers exec probes and hooks; nil means exit 0.
	exec func(container string, cmd []string) int
	// startErr fails Start for a container name.
	startErr map[string]error
	specs    map[string]ContainerSpec
	procs    map[string]*fakeProc
}

type behaviour struct {
	exitAfter  time.Duration // > 0: exits by itself after this long
	exitCode   int
	ignoreTerm bool
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{specs: map[string]ContainerSpec{}, procs: map[string]*fakeProc{}}
}

func (f *fakeRuntime) record(format string, a ...any) {
	f.mu.Lock()
	f.events = append(f.events, fmt.Sprintf(format, a...))
	f.mu.Unlock()
}

func (f *fakeRuntime) Events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

func (f *fakeRuntime) count(ev string) int {
	n := 0
	for _, e := range f.Events() {
		if e == ev {
			n++
		}
	}
	return n
}

func (f *fakeRuntime) CreateSandbox(_ context.Context, pod *corev1.Pod) (Sandbox, error) {
	f.record("sandbox %s", pod.Name)
	return &fakeSandbox{rt: f}, nil
}

type fakeSandbox struct{ rt *fakeRuntime }

func (s *fakeSandbox) PodIPs() []netip.Addr { return []netip.Addr{netip.MustParseAddr("127.0.0.1")} }

func (s *fakeSandbox) Start(_ context.Context, c ContainerSpec) (Process, error) {
	f := s.rt
	f.mu.Lock()
	if err := f.startErr[c.Name]; err != nil {
		f.mu.Unlock()
		return nil, err
	}
	f.pid++
	p := &fakeProc{pid: f.pid, done: make(chan struct{}), rt: f, name: c.Name}
	f.specs[c.Name] = c
	f.procs[c.Name] = p
	behave := f.behave
	f.mu.Unlock()
	var b behaviour
	if behave != nil {
		b = behave(c)
	}
	p.ignoreTerm = b.ignoreTerm
	f.record("start %s", c.Name)
	if b.exitAfter > 0 {
		go func() {
			time.Sleep(b.exitAfter)
			p.exit(b.exitCode)
		}()
	}
	return p, nil
}

func (s *fakeSandbox) Exec(_ context.Context, c ContainerSpec, cmd []string) (int, []byte, error) {
	s.rt.mu.Lock()
	fn := s.rt.exec
	s.rt.mu.Unlock()
	if fn == nil {
		return 0, nil, nil
	}
	return fn(c.Name, cmd), nil, nil
}

func (s *fakeSandbox) Destroy(context.Context) error {
	s.rt.record("destroy")
	return nil
}

type fakeProc struct {
	rt         *fakeRuntime
	name       string
	pid        int
	ignoreTerm bool
	once       sync.Once
	done       chan struct{}
	code       int
}

func (p *fakeProc) Pid() int              { return p.pid }
func (p *fakeProc) Done() <-chan struct{} { return p.done }
func (p *fakeProc) ExitCode() int         { return p.code }

func (p *fakeProc) Signal(sig os.Signal) error {
	switch sig {
	case syscall.SIGTERM:
		p.rt.record("term %s", p.name)
		if !p.ignoreTerm {
			p.exit(143)
		}
	case os.Kill, syscall.SIGKILL:
		p.rt.record("kill %s", p.name)
		p.exit(137)
	}
	return nil
}

func (p *fakeProc) exit(code int) {
	p.once.Do(func() {
		p.code = code
		p.rt.record("exit %s %d", p.name, code)
		close(p.done)
	})
}

// harness runs a Kubelet against a fake clientset and a fake runtime.
type harness struct {
	t      *testing.T
	client *fake.Clientset
	rt     *fakeRuntime
	k      *Kubelet
}

func newHarness(t *testing.T, rt *fakeRuntime, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewClientset(objs...)
	// The fake tracker does not implement pods/binding: set spec.nodeName like the apiserver.
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca, ok := a.(k8stesting.CreateAction)
		if !ok || ca.GetSubresource() != "binding" {
			return false, nil, nil
		}
		b := ca.GetObject().(*corev1.Binding)
		obj, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), b.Namespace, b.Name)
		if err != nil {
			return true, nil, err
		}
		pod := obj.(*corev1.Pod).DeepCopy()
		pod.Spec.NodeName = b.Target.Name
		return true, b, client.Tracker().Update(corev1.SchemeGroupVersion.WithResource("pods"), pod, b.Namespace)
	})
	k, err := New(Config{
		Client:             client,
		Runtime:            rt,
		NodeIP:             netip.MustParseAddr("198.18.0.1"),
		KubernetesService:  netip.MustParseAddrPort("198.19.0.1:443"),
		RestartBackoffBase: 20 * time.Millisecond,
		RestartBackoffMax:  200 * time.Millisecond,
		StatusDelay:        5 * time.Millisecond,
		LeasePeriod:        time.Second,
		Capacity:           corev1.ResourceList{},
		Logger:             slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return")
		}
	})
	return &harness{t: t, client: client, rt: rt, k: k}
}

// waitPod polls the pod until cond holds (10s bound) and returns it.
func (h *harness) waitPod(ns, name string, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var pod *corev1.Pod
	for time.Now().Before(deadline) {
		p, err := h.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			pod = p
			if cond(p) {
				return p
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("pod %s/%s: timed out waiting for %s; last status: %+v\nruntime events: %v", ns, name, what, pod.Status, h.rt.Events())
	return nil
}

func (h *harness) waitGone(ns, name string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := h.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{}); err != nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("pod %s/%s was not deleted; runtime events: %v", ns, name, h.rt.Events())
}

func testPod(name string, mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{
			NodeName:      "weft-node",
			RestartPolicy: corev1.RestartPolicyAlways,
			Containers:    []corev1.Container{{Name: "main", Image: "weft/testapp:latest"}},
		},
	}
	if mut != nil {
		mut(p)
	}
	return p
}

func cond(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

func indexOf(events []string, ev string) int {
	for i, e := range events {
		if e == ev {
			return i
		}
	}
	return -1
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
