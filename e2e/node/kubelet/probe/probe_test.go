package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func TestTrackerThresholds(t *testing.T) {
	S, F := Success, Failure
	tests := []struct {
		name     string
		kind     Kind
		succ     int32
		fail     int32
		results  []Result
		reported []Result
	}{
		{"readiness starts failed, one success flips", Readiness, 1, 3, []Result{S, F, F, F, S}, []Result{S, S, S, F, S}},
		{"readiness successThreshold 2", Readiness, 2, 1, []Result{S, S, F, S, S}, []Result{F, S, F, F, S}},
		{"liveness starts ok, failureThreshold 3", Liveness, 1, 3, []Result{F, F, S, F, F, F}, []Result{S, S, S, S, S, F}},
		{"liveness successThreshold forced to 1", Liveness, 5, 1, []Result{F, S}, []Result{F, S}},
		{"startup unknown until success", Startup, 1, 3, []Result{F, F, S}, []Result{Unknown, Unknown, S}},
		{"startup fails at threshold", Startup, 1, 2, []Result{F, F}, []Result{Unknown, F}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(tt.kind, &corev1.Probe{SuccessThreshold: tt.succ, FailureThreshold: tt.fail})
			for i, r := range tt.results {
				got, _ := tr.Observe(r)
				if got != tt.reported[i] {
					t.Fatalf("after %d results %v: reported %s, want %s", i+1, tt.results[:i+1], got, tt.reported[i])
				}
			}
		})
	}
}

func TestHTTPGet(t *testing.T) {
	var gotUA, gotHeader, gotHost atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUA.Store(r.UserAgent())
		gotHeader.Store(r.Header.Get("X-Probe"))
		gotHost.Store(r.Host)
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusOK)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/away":
			http.Redirect(w, r, "http://127.0.0.2:1/", http.StatusFound)
		default:
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer tlsSrv.Close()
	p := port(t, srv.Listener.Addr().String())
	ports := []corev1.ContainerPort{{Name: "http", ContainerPort: int32(p)}}
	target := Target{IP: loopback, Ports: ports}
	tests := []struct {
		name   string
		action corev1.HTTPGetAction
		want   Result
		msg    string
	}{
		{"ok by number", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(int32(p))}, Success, ""},
		{"ok by name", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("http")}, Success, ""},
		{"500", corev1.HTTPGetAction{Path: "/bad", Port: intstr.FromInt32(int32(p))}, Failure, "statuscode: 500"},
		{"same-host redirect followed", corev1.HTTPGetAction{Path: "/redirect", Port: intstr.FromInt32(int32(p))}, Success, ""},
		{"other-host redirect is success", corev1.HTTPGetAction{Path: "/away", Port: intstr.FromInt32(int32(p))}, Success, ""},
		{"unknown port name", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("grpc")}, Failure, `no container port named "grpc"`},
		{"https without verification", corev1.HTTPGetAction{Scheme: corev1.URISchemeHTTPS, Path: "/", Port: intstr.FromInt32(int32(port(t, tlsSrv.Listener.Addr().String())))}, Success, ""},
		{"nothing listening", corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(1)}, Failure, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := Do(context.Background(), &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &tt.action}, TimeoutSeconds: 2}, target)
			if got != tt.want || !strings.Contains(msg, tt.msg) {
				t.Errorf("got %s %q, want %s containing %q", got, msg, tt.want, tt.msg)
			}
		})
	}
	a := &corev1.HTTPGetAction{Path: "ok", Port: intstr.FromInt32(int32(p)), HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Probe", Value: "1"}, {Name: "Host", Value: "app.local"}}}
	if got, msg := HTTPGet(context.Background(), a, target); got != Success {
		t.Fatalf("headers probe: %s %s", got, msg)
	}
	if gotUA.Load() != UserAgent || gotHeader.Load() != "1" || gotHost.Load() != "app.local" {
		t.Errorf("UA %v header %v host %v", gotUA.Load(), gotHeader.Load(), gotHost.Load())
	}
}

func TestHTTPGetTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	start := time.Now()
	got, _ := Do(context.Background(), &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(int32(port(t, srv.Listener.Addr().String())))}}}, Target{IP: loopback})
	if got != Failure {
		t.Errorf("hanging server: %s", got)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("timeout not enforced: %s", el)
	}
}

func TestTCPSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p := port(t, ln.Addr().String())
	if got, msg := TCPSocket(context.Background(), &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(p))}, Target{IP: loopback}); got != Success {
		t.Errorf("listening: %s %s", got, msg)
	}
	ln.Close()
	if got, _ := TCPSocket(context.Background(), &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(p))}, Target{IP: loopback}); got != Failure {
		t.Errorf("closed: %s", got)
	}
}

func TestExec(t *testing.T) {
	target := Target{Exec: func(_ context.Context, cmd []string) (int, []byte, error) {
		if cmd[0] == "ok" {
			return 0, nil, nil
		}
		return 2, []byte("not ready"), nil
	}}
	if got, _ := Exec(context.Background(), &corev1.ExecAction{Command: []string{"ok"}}, target); got != Success {
		t.Errorf("ok: %s", got)
	}
	if got, msg := Exec(context.Background(), &corev1.ExecAction{Command: []string{"bad"}}, target); got != Failure || !strings.Contains(msg, "not ready") {
		t.Errorf("bad: %s %q", got, msg)
	}
	if got, _ := Exec(context.Background(), &corev1.ExecAction{Command: []string{"ok"}}, Target{}); got != Failure {
		t.Errorf("no exec: %s", got)
	}
}

func TestGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go func() { _ = s.Serve(ln) }()
	defer s.Stop()
	p := int32(port(t, ln.Addr().String()))
	hs.SetServingStatus("books", healthpb.HealthCheckResponse_NOT_SERVING)
	if got, msg := GRPC(context.Background(), &corev1.GRPCAction{Port: p}, Target{IP: loopback}); got != Success {
		t.Errorf("overall: %s %s", got, msg)
	}
	svc := "books"
	if got, _ := GRPC(context.Background(), &corev1.GRPCAction{Port: p, Service: &svc}, Target{IP: loopback}); got != Failure {
		t.Errorf("not serving: %s", got)
	}
}

func TestWorkerReportsThresholdedChanges(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		if !healthy.Load() {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	var mu sync.Mutex
	var reports []Result
	w := &Worker{
		Kind:   Liveness,
		Spec:   &corev1.Probe{PeriodSeconds: 1, FailureThreshold: 2, ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(int32(port(t, srv.Listener.Addr().String())))}}},
		Target: Target{IP: loopback},
		Report: func(r Result, _ string) { mu.Lock(); reports = append(reports, r); mu.Unlock() },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	for hits.Load() < 1 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	healthy.Store(false)
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("liveness worker did not report the failure")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 1 || reports[0] != Failure {
		t.Errorf("reports = %v, want one failure", reports)
	}
	if n := hits.Load(); n < 3 {
		t.Errorf("probe hits = %d, want >= 3 (one success, two failures)", n)
	}
}
