//go:build e2e

package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// testappImage runs bin/weft-testapp on the node.
	testappImage = "weft/testapp:latest"
	// podTimeout bounds a pod's way to Running/Ready/Succeeded (generous: a 2-core machine
	// running several suites at once).
	podTimeout = 3 * time.Minute
	pollEvery  = 500 * time.Millisecond
)

// ctxFor returns a context bounded by timeout and the test's deadline.
func ctxFor(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond every pollEvery until it returns true, an error, or timeout passes; the
// failure message names what was awaited and the last state cond reported.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (done bool, state string, err error)) {
	t.Helper()
	ctx := ctxFor(t, timeout)
	var state string
	for {
		done, s, err := cond(ctx)
		if s != "" {
			state = s
		}
		if err != nil {
			t.Fatalf("waiting for %s: %v (last state: %s)", what, err, state)
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s (last state: %s)", timeout, what, state)
		case <-time.After(pollEvery):
		}
	}
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// newNamespace creates a namespace for t, waits for its default ServiceAccount, and deletes it
// when t ends (dumping its pods' states and logs first if t failed).
func newNamespace(t *testing.T) string {
	t.Helper()
	base := nonName.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	ns, err := kube.CoreV1().Namespaces().Create(ctxFor(t, time.Minute), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "e2e-" + strings.Trim(base, "-") + "-",
		Labels:       map[string]string{"weft-e2e": "true"},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	name := ns.Name
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	waitFor(t, time.Minute, "ServiceAccount default in "+name, func(ctx context.Context) (bool, string, error) {
		_, err := kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "not created yet (kube-controller-manager serviceaccount controller)", nil
		}
		return err == nil, "", err
	})
	return name
}

// dumpNamespace logs every pod's phase, container states and log tails, for failure diagnosis.
func dumpNamespace(t *testing.T, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Logf("dump %s: list pods: %v", ns, err)
		return
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		t.Logf("pod %s/%s phase=%s node=%q ip=%s reason=%q message=%q", ns, p.Name, p.Status.Phase, p.Spec.NodeName, p.Status.PodIP, p.Status.Reason, p.Status.Message)
		for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			t.Logf("  container %s ready=%t restarts=%d state=%s", cs.Name, cs.Ready, cs.RestartCount, containerState(cs.State))
			if log, err := readContainerLog(p, cs.Name); err == nil {
				t.Logf("  log %s:\n%s", cs.Name, tail(log, 2000))
			} else {
				t.Logf("  log %s: %v", cs.Name, err)
			}
		}
	}
	evs, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, e := range evs.Items {
			t.Logf("event %s %s: %s %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
}

func containerState(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated(exit %d, %s: %s)", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message)
	case s.Waiting != nil:
		return fmt.Sprintf("waiting(%s: %s)", s.Waiting.Reason, s.Waiting.Message)
	}
	return "unknown"
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// logPath is where the node agent writes a container's stdout and stderr (CRI log format).
func logPath(p *corev1.Pod, container string) string {
	return filepath.Join(podsDir, fmt.Sprintf("%s_%s_%s", p.Namespace, p.Name, p.UID), container+".log")
}

// readContainerLog returns a container's log the way a user reads it: through the apiserver and
// the node agent's kubelet API (kubectl logs).
func readContainerLog(p *corev1.Pod, container string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := kube.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("logs of %s/%s -c %s: %w", p.Namespace, p.Name, container, err)
	}
	return string(b), nil
}

// criBodies turns CRI log records ("TIME STREAM TAG BODY", the tag P for a partial line) into
// the text the container wrote; an incomplete last record is left out.
func criBodies(raw []byte) string {
	var out strings.Builder
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		body, full := strings.CutSuffix(line, "\n")
		if !full {
			break // being written
		}
		f := strings.SplitN(body, " ", 4)
		if len(f) < 3 {
			continue
		}
		if len(f) == 4 {
			out.WriteString(f[3])
		}
		if f[2] != "P" {
			out.WriteByte('\n')
		}
	}
	return out.String()
}

// testappContainer is a container running weft-testapp with args.
func testappContainer(name string, args ...string) corev1.Container {
	return corev1.Container{Name: name, Image: testappImage, ImagePullPolicy: corev1.PullIfNotPresent, Args: args}
}

// testappPod is a restartPolicy Never pod with one weft-testapp container "app".
func testappPod(name string, args ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr[int64](5),
			Containers:                    []corev1.Container{testappContainer("app", args...)},
		},
	}
}

// httpServerContainer runs `weft-testapp http` on :8080 with a readiness probe.
func httpServerContainer() corev1.Container {
	c := testappContainer("http", "http", "--addr", ":8080")
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
		PeriodSeconds: 1,
	}
	return c
}

func createPod(t *testing.T, ns string, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := kube.CoreV1().Pods(ns).Create(ctxFor(t, time.Minute), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, p.Name, err)
	}
	return out
}

// waitPod waits until cond holds for the pod and returns it; a Failed pod ends the wait early
// unless cond accepts it.
func waitPod(t *testing.T, ns, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, podTimeout, fmt.Sprintf("pod %s/%s %s", ns, name, what), func(ctx context.Context) (bool, string, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		pod = p
		if cond(p) {
			return true, "", nil
		}
		state := podState(p)
		if p.Status.Phase == corev1.PodFailed {
			return false, state, fmt.Errorf("pod failed")
		}
		return false, state, nil
	})
	return pod
}

func podState(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s", p.Status.Phase)
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		fmt.Fprintf(&b, " %s=%s", cs.Name, containerState(cs.State))
	}
	return b.String()
}

// waitSucceeded waits for phase Succeeded, failing at once on Failed with the followed logs.
func waitSucceeded(t *testing.T, ns, name string, logs *podLogs) {
	t.Helper()
	waitFor(t, podTimeout, fmt.Sprintf("pod %s/%s to succeed", ns, name), func(ctx context.Context) (bool, string, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		switch p.Status.Phase {
		case corev1.PodSucceeded:
			return true, "", nil
		case corev1.PodFailed:
			return false, podState(p), fmt.Errorf("pod failed%s", logs.summary())
		}
		return false, podState(p), nil
	})
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
