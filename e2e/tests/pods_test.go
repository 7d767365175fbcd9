//go:build e2e

package tests

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestServiceReachability: a pod reaches an HTTP server through the Service's DNS name (full and
// short via the search path), its ClusterIP, and the server pod's IP.
func TestServiceReachability(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	echoService(t, ns, 1)
	waitReadyEndpoints(t, ns, "echo", 1)
	pods, err := kube.CoreV1().Pods(ns).List(ctxFor(t, podTimeout), metav1.ListOptions{LabelSelector: "app=echo"})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("list echo pods: %d pods, %v", len(pods.Items), err)
	}
	server := pods.Items[0]
	svc, err := kube.CoreV1().Services(ns).Get(ctxFor(t, podTimeout), "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, url string }{
		{"dns-full", fmt.Sprintf("http://echo.%s.svc.cluster.local/", ns)},
		{"dns-short", "http://echo/"},
		{"cluster-ip", fmt.Sprintf("http://%s/", svc.Spec.ClusterIP)},
		{"pod-ip", fmt.Sprintf("http://%s:8080/", server.Status.PodIP)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := createPod(t, ns, testappPod("get-"+tt.name, "get", "--attempts", "30", tt.url))
			logs := followLogs(t, p, "app")
			waitSucceeded(t, ns, p.Name, logs)
			log := logs.text(t, "app")
			// The echo body names the server pod's IP: the request really reached that pod.
			if want := fmt.Sprintf("%q", server.Status.PodIP); !strings.Contains(log, `"podIP": `+want) {
				t.Errorf("GET %s: log lacks the server's pod IP %s:\n%s", tt.url, want, log)
			}
		})
	}
}

// TestNativeSidecarOrdering: a native sidecar starts and passes its startup probe before the main
// container starts, and stops only after the main container has exited.
func TestNativeSidecarOrdering(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	p := testappPod("ordered")
	p.Spec.InitContainers = []corev1.Container{sidecarContainer()}
	p.Spec.Containers = []corev1.Container{testappContainer("main", "record-lifecycle", "-", "--name", "main", "--for", "3s")}
	p = createPod(t, ns, p)
	logs := followLogs(t, p, "sidecar", "main")
	waitSucceeded(t, ns, p.Name, logs)
	// The sidecar is stopped once main has exited; its last line may come after the phase.
	logs.waitContains(t, "sidecar", "stop sidecar ")

	events := map[string]int64{}
	for _, c := range []string{"sidecar", "main"} {
		for _, line := range strings.Split(logs.text(t, c), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || (f[0] != "start" && f[0] != "ready" && f[0] != "stop") || f[1] != c {
				continue
			}
			ts, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				t.Fatalf("container %s: bad line %q", c, line)
			}
			events[f[0]+" "+c] = ts
		}
	}
	order := []string{"start sidecar", "ready sidecar", "start main", "stop main", "stop sidecar"}
	for _, e := range order {
		if _, ok := events[e]; !ok {
			t.Fatalf("no %q line in the container logs (have %v)", e, events)
		}
	}
	for i := 1; i < len(order); i++ {
		if a, b := order[i-1], order[i]; !(events[a] < events[b]) {
			t.Errorf("%q at %d is not before %q at %d (want order %v)", a, events[a], b, events[b], order)
		}
	}
}

// TestRunAsUser: securityContext.runAsUser/runAsGroup decide the process's ids.
func TestRunAsUser(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	p := testappPod("whoami", "whoami")
	p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr[int64](2102), RunAsGroup: ptr[int64](2102)}
	p = createPod(t, ns, p)
	logs := followLogs(t, p, "app")
	waitSucceeded(t, ns, p.Name, logs)
	if log := logs.text(t, "app"); !strings.Contains(log, "uid=2102 gid=2102 ") {
		t.Errorf("whoami as 2102 printed:\n%s", log)
	}
}
