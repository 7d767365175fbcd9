//go:build e2e

package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/internal/annotations"
)

// kubectlKubelet runs kubectl with the cluster's kubeconfig and returns stdout, stderr and the
// exit code.
func kubectlKubelet(t *testing.T, c *cli, stdin string, argv ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := c.command(ctx, append([]string{"kubectl"}, argv...))
	var out, errb strings.Builder
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(argv, " "), err)
	}
	t.Logf("$ kubectl %s\n%s%s(exit %d)", strings.Join(argv, " "), tail(out.String(), 800), tail(errb.String(), 800), code)
	return out.String(), errb.String(), code
}

func toolbox(name, script string) corev1.Container {
	return corev1.Container{Name: name, Image: "weft/toolbox:latest", Command: []string{"sh", "-c", script}}
}

// TestKubeletLogsExec: kubectl logs (-c, --tail, -f, --previous) and kubectl exec (non-TTY
// exit code, a TTY session) against the node agent's kubelet API.
func TestKubeletLogsExec(t *testing.T) {
	c := newCLI(t)
	ns := newNamespace(t)
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: ptr[int64](2),
		Containers: []corev1.Container{
			toolbox("ticker", "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done"),
			// exits after three lines: the restart gives --previous something to show.
			toolbox("crasher", "echo run-$(date +%s%N); echo second; echo third; sleep 2; exit 3"),
		},
	}}
	pod.Name = "kubelet-logs"
	createPod(t, ns, pod)
	node := waitPod(t, ns, pod.Name, "crasher restarted", func(p *corev1.Pod) bool {
		for _, s := range p.Status.ContainerStatuses {
			if s.Name == "crasher" && s.RestartCount >= 1 && s.State.Running != nil {
				return true
			}
		}
		return false
	}).Spec.NodeName

	out, _, code := kubectlKubelet(t, c, "", "-n", ns, "logs", pod.Name, "-c", "ticker", "--tail", "2")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "tick-") {
		t.Errorf("logs --tail 2 = %q (exit %d), want two tick lines", out, code)
	}
	out, _, code = kubectlKubelet(t, c, "", "-n", ns, "logs", pod.Name, "-c", "crasher", "--previous")
	if code != 0 || !strings.Contains(out, "run-") || !strings.Contains(out, "third") {
		t.Errorf("logs --previous = %q (exit %d), want the previous run's three lines", out, code)
	}
	cur, _, _ := kubectlKubelet(t, c, "", "-n", ns, "logs", pod.Name, "-c", "crasher")
	if strings.Contains(cur, "run-") && firstLine(cur) == firstLine(out) {
		t.Errorf("current log %q repeats the previous one %q", cur, out)
	}
	out, _, _ = kubectlKubelet(t, c, "", "-n", ns, "logs", pod.Name, "-c", "ticker", "--timestamps", "--tail", "1")
	if _, err := time.Parse(time.RFC3339Nano, strings.Fields(out + " x")[0]); err != nil {
		t.Errorf("logs --timestamps = %q: no RFC 3339 time first: %v", out, err)
	}

	// -f: a new line arrives while following (bounded wait).
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	f := c.command(ctx, []string{"kubectl", "-n", ns, "logs", "-f", pod.Name, "-c", "ticker", "--tail", "0"})
	stdout, _ := f.StdoutPipe()
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			got <- sc.Text()
		}
		close(got)
	}()
	select {
	case line := <-got:
		if !strings.HasPrefix(line, "tick-") {
			t.Errorf("logs -f first line = %q", line)
		}
	case <-time.After(15 * time.Second):
		t.Error("logs -f: no new line within 15s")
	}
	cancel()
	_ = f.Wait()

	// exec, non-TTY: output, stdin and exit code.
	out, _, code = kubectlKubelet(t, c, "hello-stdin\n", "-n", ns, "exec", "-i", pod.Name, "-c", "ticker", "--", "sh", "-c", "cat; echo uid=$(id -u); exit 7")
	if code != 7 || !strings.Contains(out, "hello-stdin") || !strings.Contains(out, "uid=0") {
		t.Errorf("exec = %q exit %d, want stdin echoed, uid=0 and exit 7", out, code)
	}
	out, _, code = kubectlKubelet(t, c, "", "-n", ns, "exec", pod.Name, "-c", "ticker", "--", "cat", "/etc/hostname")
	if code != 0 || strings.TrimSpace(out) != pod.Name {
		t.Errorf("exec cat /etc/hostname = %q exit %d, want the pod's hostname (the container's mount namespace)", out, code)
	}

	// exec with a TTY through a pseudo-terminal.
	tctx, tcancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer tcancel()
	tc := c.command(tctx, []string{"kubectl", "-n", ns, "exec", "-it", pod.Name, "-c", "ticker", "--", "sh"})
	ptm, err := pty.Start(tc)
	if err != nil {
		t.Fatalf("start kubectl exec -it: %v", err)
	}
	defer ptm.Close()
	_, _ = io.WriteString(ptm, "tty -s && echo IS-A-TTY; exit 5\n")
	var all strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(all.String(), "IS-A-TTY") {
		n, err := ptm.Read(buf)
		all.Write(buf[:n])
		if err != nil {
			break
		}
	}
	werr := tc.Wait()
	if !strings.Contains(all.String(), "IS-A-TTY") {
		t.Errorf("exec -it output %q lacks IS-A-TTY", all.String())
	}
	if ee, ok := werr.(*exec.ExitError); !ok || ee.ExitCode() != 5 {
		t.Errorf("exec -it exit = %v, want 5", werr)
	}

	// healthz, pods and stats/summary through the apiserver's node proxy.
	out, _, code = kubectlKubelet(t, c, "", "get", "--raw", "/api/v1/nodes/"+node+"/proxy/healthz")
	if code != 0 || strings.TrimSpace(out) != "ok" {
		t.Errorf("node proxy healthz = %q (exit %d)", out, code)
	}
	out, _, code = kubectlKubelet(t, c, "", "get", "--raw", "/api/v1/nodes/"+node+"/proxy/pods")
	if code != 0 || !strings.Contains(out, `"name":"`+pod.Name+`"`) {
		t.Errorf("node proxy /pods (exit %d) does not list %s", code, pod.Name)
	}
	out, _, code = kubectlKubelet(t, c, "", "get", "--raw", "/api/v1/nodes/"+node+"/proxy/stats/summary")
	if code != 0 || !strings.Contains(out, `"name":"ticker"`) || !strings.Contains(out, "usageCoreNanoSeconds") {
		t.Errorf("node proxy /stats/summary (exit %d) lacks the ticker container's CPU", code)
	}

	// A user without pods/exec is refused by the apiserver.
	_, errOut, code := kubectlKubelet(t, c, "", "-n", ns, "exec", pod.Name, "-c", "ticker", "--as", "nobody-"+ns, "--", "true")
	if code == 0 || !strings.Contains(errOut, "forbidden") {
		t.Errorf("exec as an unprivileged user: exit %d, stderr %q, want forbidden", code, errOut)
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// TestKubeletPortForwardMeshed: kubectl port-forward to a meshed pod's application port and
// to a Service; the traffic passes the pod's proxy (its inbound metrics count it), and
// kubectl logs reads the proxy's own container.
func TestKubeletPortForwardMeshed(t *testing.T) {
	c := newCLI(t)
	ns := newNamespace(t)
	server := testappPod("pf-server")
	server.Spec.RestartPolicy = corev1.RestartPolicyAlways
	server.Spec.Containers = []corev1.Container{httpServerContainer()}
	createPod(t, ns, meshed(t, server, corev1.EnvVar{Name: "WEFT_PROXY_IDENTITY_DISABLED", Value: "true"}))
	srv := waitPod(t, ns, server.Name, "ready", podReady)
	svc := &corev1.Service{Spec: corev1.ServiceSpec{Selector: map[string]string{"app": server.Name},
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	svc.Name = "pf-svc"
	if _, err := kube.CoreV1().Services(ns).Create(ctxFor(t, time.Minute), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for i, target := range []string{"pod/" + server.Name, "svc/" + svc.Name} {
		port := 18080 + i
		remote := "8080"
		if strings.HasPrefix(target, "svc/") {
			remote = "80"
		}
		ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
		pf := c.command(ctx, []string{"kubectl", "-n", ns, "port-forward", "--address", "127.0.0.1", target, fmt.Sprintf("%d:%s", port, remote)})
		stdout, _ := pf.StdoutPipe()
		if err := pf.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if strings.Contains(sc.Text(), "Forwarding from") {
					close(ready)
					break
				}
			}
			_, _ = io.Copy(io.Discard, stdout)
		}()
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			t.Fatalf("port-forward %s never reported Forwarding", target)
		}
		for n := 0; n < 3; n++ {
			resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext, DisableKeepAlives: true}}).
				Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err != nil {
				t.Fatalf("GET through port-forward %s: %v", target, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET through port-forward %s: %s", target, resp.Status)
			}
		}
		cancel()
		_ = pf.Wait()
	}
	m := metricsOf(t, srv)
	if !hasSample(m, "request_total", `direction="inbound"`) {
		t.Errorf("proxy metrics count no inbound request after port-forward:\n%s", tail(m, 3000))
	}
	out, _, code := kubectlKubelet(t, c, "", "-n", ns, "logs", server.Name, "-c", annotations.ProxyContainer, "--tail", "20")
	if code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("kubectl logs -c weft-proxy = %q (exit %d), want the proxy's log", out, code)
	}
}
