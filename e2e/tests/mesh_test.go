//go:build e2e

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/e2e/demo/traffic"
	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/annotations"
)

// meshed adds weft's proxy to p with the injector's own code (what the webhook
// does), with extra proxy environment.
func meshed(t *testing.T, p *corev1.Pod, env ...corev1.EnvVar) *corev1.Pod {
	t.Helper()
	v := injector.DefaultValues()
	v.ProxyVersion = "latest"
	if _, err := injector.Inject(p, v); err != nil {
		t.Fatalf("inject %s: %v", p.Name, err)
	}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			if c := &cs[i]; c.Name == annotations.ProxyContainer {
				c.Env = append(c.Env, env...)
			}
		}
	}
	return p
}

// metricsOf reads a pod's proxy metrics from the host (the admin port is
// never redirected).
func metricsOf(t *testing.T, p *corev1.Pod) string {
	t.Helper()
	var body string
	waitFor(t, time.Minute, "proxy metrics of "+p.Name, func(ctx context.Context) (bool, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/metrics", p.Status.PodIP, injector.AdminPort), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err == nil && resp.StatusCode == http.StatusOK, resp.Status, nil
	})
	return body
}

// hasSample reports whether metrics has a sample of name whose labels contain
// every fragment and whose value is not zero.
func hasSample(metrics, name string, fragments ...string) bool {
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(line, f)
		}
		if ok && !strings.HasSuffix(line, " 0") {
			return true
		}
	}
	return false
}

// TestMeshedPodsHTTPgRPCTCP: two meshed pods — proxies as native sidecars,
// iptables installed by weft-proxy init, proxies running as uid 2102 — talk
// HTTP/1.1, gRPC (unary and server-streaming) and opaque TCP through both
// proxies, and the proxies' metrics record it.
func TestMeshedPodsHTTPgRPCTCP(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	noIdentity := corev1.EnvVar{Name: "WEFT_PROXY_IDENTITY_DISABLED", Value: "true"}

	server := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Labels: map[string]string{"app": "server"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr[int64](5),
			Containers: []corev1.Container{
				{Name: "books", Image: "weft/demo-books:latest", Env: []corev1.EnvVar{{Name: "ADDR", Value: ":7000"}},
					Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 7000}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(7000)}}, PeriodSeconds: 1}},
				{Name: "authors", Image: "weft/demo-authors:latest", Env: []corev1.EnvVar{{Name: "ADDR", Value: ":7001"}, {Name: "HEALTH_ADDR", Value: ":7002"}},
					Ports:          []corev1.ContainerPort{{Name: "grpc", ContainerPort: 7001}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(7002)}}, PeriodSeconds: 1}},
				testappContainer("echo", "tcp-echo", "--addr", ":9000"),
			},
		},
	}
	createPod(t, ns, meshed(t, server, noIdentity))
	srv := waitPod(t, ns, "server", "to be ready", podReady)
	ip := srv.Status.PodIP

	// HTTP/1.1 and gRPC from a meshed traffic generator, bounded to 10 s.
	gen := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "traffic"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr[int64](5),
			Containers: []corev1.Container{{
				Name: "traffic", Image: "weft/demo-traffic:latest",
				Env: []corev1.EnvVar{
					{Name: "BOOKS_URL", Value: "http://" + ip + ":7000"},
					{Name: "AUTHORS_ADDR", Value: ip + ":7001"},
					{Name: "RATE_WEB_INDEX", Value: "0"}, {Name: "RATE_WEB_STREAM", Value: "0"},
					{Name: "RATE_BOOKS_FAIL", Value: "0"}, {Name: "RATE_BOOKS_SLOW", Value: "0"},
					{Name: "RATE_BOOKS_LIST", Value: "5"}, {Name: "RATE_AUTHORS_GET", Value: "5"}, {Name: "RATE_AUTHORS_LIST", Value: "2"},
					{Name: "DURATION", Value: "10s"}, {Name: "STATS_ADDR", Value: ":9100"},
				},
			}},
		},
	}
	createPod(t, ns, meshed(t, gen, noIdentity))
	tr := waitPod(t, ns, "traffic", "to be running", func(p *corev1.Pod) bool { return p.Status.PodIP != "" && podReady(p) })

	// TCP through both proxies: a meshed client writes, half-closes and reads the echo.
	client := createPod(t, ns, meshed(t, testappPod("tcp-client", "tcp", ip+":9000", "hello-through-weft"), noIdentity))
	logs := followLogs(t, client, "app")
	waitSucceeded(t, ns, client.Name, logs)
	if out := logs.text(t, "app"); !strings.Contains(out, "hello-through-weft") {
		t.Fatalf("tcp echo through the mesh: log lacks the echoed message:\n%s", out)
	}

	// The generator's own figures: every target got (nearly) its scheduled
	// requests — 10 s at 5, 5 and 2 per second — and none failed.
	want := map[string]uint64{"books GET /books": 40, "authors GetAuthor": 40, "authors ListAuthors": 16}
	var stats []traffic.TargetStats
	waitFor(t, 90*time.Second, "the traffic run to finish", func(ctx context.Context) (bool, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+tr.Status.PodIP+":9100/stats", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		defer resp.Body.Close()
		var rep traffic.Report
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			return false, err.Error(), nil
		}
		stats = rep.Targets
		for _, s := range rep.Targets {
			if s.Requests < want[s.Name] || s.InFlight != 0 {
				return false, fmt.Sprintf("%+v", rep.Targets), nil
			}
		}
		return true, "", nil
	})
	for _, s := range stats {
		if _, enabled := want[s.Name]; enabled && s.Failures != 0 {
			t.Errorf("target %s through the mesh: %d of %d failed", s.Name, s.Failures, s.Requests)
		}
	}

	// Both proxies saw it: the client side outbound, the server side inbound.
	srvMetrics := metricsOf(t, srv)
	for _, want := range []struct{ name, frag string }{
		{"request_total", `direction="inbound"`},
		{"response_total", `classification="success"`},
		{"tcp_open_total", `direction="inbound"`},
	} {
		if !hasSample(srvMetrics, want.name, want.frag) {
			t.Errorf("server proxy metrics lack %s{%s}", want.name, want.frag)
		}
	}
	trMetrics := metricsOf(t, tr)
	if !hasSample(trMetrics, "request_total", `direction="outbound"`) {
		t.Errorf("traffic pod proxy metrics lack outbound requests:\n%s", tail(trMetrics, 40))
	}
}

// TestMeshedLegacyMode: with config.weft.io/native-sidecar: "false" the proxy
// is the first regular container and its postStart hook (`weft-proxy await`)
// holds the application until the proxy is ready; traffic still flows.
func TestMeshedLegacyMode(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	server := testappPod("legacy-server", "http", "--addr", ":8080")
	server.Spec.RestartPolicy = corev1.RestartPolicyAlways
	server.Annotations = map[string]string{annotations.NativeSidecar: "false"}
	meshed(t, server, corev1.EnvVar{Name: "WEFT_PROXY_IDENTITY_DISABLED", Value: "true"})
	if server.Spec.Containers[0].Name != annotations.ProxyContainer || server.Spec.Containers[0].Lifecycle == nil {
		t.Fatalf("legacy mode must put the proxy first with a postStart hook: %v", containerNames(server))
	}
	srv := waitPod(t, ns, createPod(t, ns, server).Name, "to be ready", podReady)
	client := createPod(t, ns, meshed(t, testappPod("legacy-client", "get", "--attempts", "30", "http://"+srv.Status.PodIP+":8080/"),
		corev1.EnvVar{Name: "WEFT_PROXY_IDENTITY_DISABLED", Value: "true"}))
	logs := followLogs(t, client, "app")
	waitSucceeded(t, ns, client.Name, logs)
	if !hasSample(metricsOf(t, srv), "request_total", `direction="inbound"`) {
		t.Fatal("the legacy-mode proxy did not serve the inbound request")
	}
}
