package kubelet

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var sidecarPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)

func TestBindsUnscheduledPodAndRunsIt(t *testing.T) {
	pod := testPod("web", func(p *corev1.Pod) { p.Spec.NodeName = "" })
	other := testPod("custom", func(p *corev1.Pod) { p.Spec.NodeName = ""; p.Spec.SchedulerName = "my-scheduler" })
	h := newHarness(t, newFakeRuntime(), pod, other)
	got := h.waitPod("default", "web", "Running and Ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && cond(p, corev1.PodReady) == corev1.ConditionTrue
	})
	if got.Spec.NodeName != "weft-node" {
		t.Errorf("nodeName = %q, want weft-node", got.Spec.NodeName)
	}
	for _, c := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady} {
		if s := cond(got, c); s != corev1.ConditionTrue {
			t.Errorf("condition %s = %q, want True", c, s)
		}
	}
	if got.Status.PodIP != "127.0.0.1" || got.Status.HostIP != "198.18.0.1" {
		t.Errorf("podIP %q hostIP %q", got.Status.PodIP, got.Status.HostIP)
	}
	cs := got.Status.ContainerStatuses
	if len(cs) != 1 || cs[0].State.Running == nil || !cs[0].Ready || cs[0].ImageID != "weft://weft/testapp:latest" || cs[0].ContainerID == "" {
		t.Errorf("container status = %+v", cs)
	}
	node, err := h.client.CoreV1().Nodes().Get(context.Background(), "weft-node", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Status.NodeInfo.KubeletVersion != "v1.36.3" || len(node.Spec.Taints) != 0 {
		t.Errorf("node = %+v", node.Status.NodeInfo)
	}
	if _, err := h.client.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), "weft-node", metav1.GetOptions{}); err != nil {
		t.Errorf("lease: %v", err)
	}
	o, _ := h.client.CoreV1().Pods("default").Get(context.Background(), "custom", metav1.GetOptions{})
	if o.Spec.NodeName != "" {
		t.Errorf("pod of another scheduler was bound to %q", o.Spec.NodeName)
	}
}

func TestInitContainersRunInOrder(t *testing.T) {
	rt := newFakeRuntime()
	rt.behave = func(c ContainerSpec) behaviour {
		if c.Name == "init-a" || c.Name == "init-b" {
			return behaviour{exitAfter: 20 * time.Millisecond}
		}
		return behaviour{}
	}
	pod := testPod("init", func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: "init-a", Image: "x"}, {Name: "init-b", Image: "x"}}
	})
	h := newHarness(t, rt, pod)
	got := h.waitPod("default", "init", "Ready", func(p *corev1.Pod) bool { return cond(p, corev1.PodReady) == corev1.ConditionTrue })
	ev := rt.Events()
	a, aExit, b, bExit, m := indexOf(ev, "start init-a"), indexOf(ev, "exit init-a 0"), indexOf(ev, "start init-b"), indexOf(ev, "exit init-b 0"), indexOf(ev, "start main")
	if !(a >= 0 && a < aExit && aExit < b && b < bExit && bExit < m) {
		t.Errorf("order of events wrong: %v", ev)
	}
	for _, s := range got.Status.InitContainerStatuses {
		if s.State.Terminated == nil || s.State.Terminated.Reason != "Completed" {
			t.Errorf("init status %s = %+v", s.Name, s.State)
		}
	}
}

func TestFailedInitContainerWithNeverFailsPod(t *testing.T) {
	rt := newFakeRuntime()
	rt.behave = func(c ContainerSpec) behaviour {
		if c.Name == "init" {
			return behaviour{exitAfter: 5 * time.Millisecond, exitCode: 3}
		}
		return behaviour{}
	}
	pod := testPod("initfail", func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "x"}}
	})
	h := newHarness(t, rt, pod)
	h.waitPod("default", "initfail", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if n := rt.count("start main"); n != 0 {
		t.Errorf("main started %d times after a failed init container", n)
	}
}

func TestSidecarGatesNextInitOnStartupProbe(t *testing.T) {
	rt := newFakeRuntime()
	var proxyUp atomic.Bool
	rt.exec = func(container string, _ []string) int {
		if container == "proxy" && proxyUp.Load() {
			return 0
		}
		return 1
	}
	pod := testPod("sidecar", func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{
			Name: "proxy", Image: "weft/proxy", RestartPolicy: sidecarPolicy,
			StartupProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"ready"}}},
				PeriodSeconds: 1, FailureThreshold: 100,
			},
		}}
	})
	h := newHarness(t, rt, pod)
	h.waitPod("default", "sidecar", "sidecar running, not started", func(p *corev1.Pod) bool {
		s := p.Status.InitContainerStatuses
		return len(s) == 1 && s[0].State.Running != nil && s[0].Started != nil && !*s[0].Started
	})
	time.Sleep(1500 * time.Millisecond) // at least one failed startup probe
	if n := rt.count("start main"); n != 0 {
		t.Fatalf("main started before the sidecar's startup probe succeeded: %v", rt.Events())
	}
	proxyUp.Store(true)
	got := h.waitPod("default", "sidecar", "Ready", func(p *corev1.Pod) bool { return cond(p, corev1.PodReady) == corev1.ConditionTrue })
	ev := rt.Events()
	if indexOf(ev, "start proxy") > indexOf(ev, "start main") {
		t.Errorf("order: %v", ev)
	}
	if s := got.Status.InitContainerStatuses[0]; !*s.Started || !s.Ready {
		t.Errorf("sidecar status: %+v", s)
	}
}

func TestRestartBackoffAndCrashLoop(t *testing.T) {
	rt := newFakeRuntime()
	rt.behave = func(ContainerSpec) behaviour { return behaviour{exitAfter: time.Millisecond, exitCode: 1} }
	h := newHarness(t, rt, testPod("crash", nil))
	got := h.waitPod("default", "crash", "restartCount >= 3", func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return len(s) == 1 && s[0].RestartCount >= 3 && s[0].LastTerminationState.Terminated != nil
	})
	lt := got.Status.ContainerStatuses[0].LastTerminationState.Terminated
	if lt.ExitCode != 1 || lt.Reason != "Error" {
		t.Errorf("lastState.terminated = %+v", lt)
	}
	h.waitPod("default", "crash", "CrashLoopBackOff", func(p *corev1.Pod) bool {
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "CrashLoopBackOff"
	})
	if got.Status.Phase != corev1.PodRunning {
		t.Errorf("phase = %s, want Running", got.Status.Phase)
	}
}

func TestOnFailureSucceedsAfterZeroExit(t *testing.T) {
	rt := newFakeRuntime()
	var runs atomic.Int32
	rt.behave = func(ContainerSpec) behaviour {
		if runs.Add(1) < 3 {
			return behaviour{exitAfter: time.Millisecond, exitCode: 2}
		}
		return behaviour{exitAfter: time.Millisecond}
	}
	h := newHarness(t, rt, testPod("onfail", func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure }))
	got := h.waitPod("default", "onfail", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if rc := got.Status.ContainerStatuses[0].RestartCount; rc != 2 {
		t.Errorf("restartCount = %d, want 2", rc)
	}
}

func TestJobSucceedsWithRunningSidecarThenStopsIt(t *testing.T) {
	rt := newFakeRuntime()
	rt.behave = func(c ContainerSpec) behaviour {
		if c.Name == "main" {
			return behaviour{exitAfter: 30 * time.Millisecond}
		}
		return behaviour{}
	}
	pod := testPod("job", func(p *corev1.Pod) {
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "weft/proxy", RestartPolicy: sidecarPolicy}}
	})
	h := newHarness(t, rt, pod)
	succeeded := h.waitPod("default", "job", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	// As kubelet (1.28+): the pod is terminal only once its sidecars have stopped.
	if s := succeeded.Status.InitContainerStatuses; len(s) != 1 || s[0].State.Terminated == nil {
		t.Errorf("phase Succeeded reported while the sidecar still runs: %+v", s)
	}
	h.waitPod("default", "job", "sidecar terminated", func(p *corev1.Pod) bool {
		s := p.Status.InitContainerStatuses
		return len(s) == 1 && s[0].State.Terminated != nil && cond(p, corev1.PodReadyToStartContainers) == corev1.ConditionFalse
	})
	ev := rt.Events()
	if indexOf(ev, "exit main 0") > indexOf(ev, "term proxy") || indexOf(ev, "term proxy") > indexOf(ev, "destroy") {
		t.Errorf("order: %v", ev)
	}
	if p, _ := h.client.CoreV1().Pods("default").Get(context.Background(), "job", metav1.GetOptions{}); p.Status.Phase != corev1.PodSucceeded {
		t.Errorf("phase moved to %s after stopping the sidecar", p.Status.Phase)
	}
}

func TestDeletionStopsMainThenSidecarsInReverse(t *testing.T) {
	rt := newFakeRuntime()
	rt.behave = func(c ContainerSpec) behaviour {
		// The main container ignores SIGTERM and is killed after the grace period.
		return behaviour{ignoreTerm: c.Name == "main"}
	}
	pod := testPod("del", func(p *corev1.Pod) {
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(1))
		p.Spec.InitContainers = []corev1.Container{
			{Name: "side-a", Image: "x", RestartPolicy: sidecarPolicy},
			{Name: "side-b", Image: "x", RestartPolicy: sidecarPolicy},
		}
		p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"drain"}}}}
	})
	rt.exec = func(container string, cmd []string) int {
		rt.record("exec %s %s", container, cmd[0])
		return 0
	}
	h := newHarness(t, rt, pod)
	got := h.waitPod("default", "del", "Running", func(p *corev1.Pod) bool { return cond(p, corev1.PodReady) == corev1.ConditionTrue })
	// What the apiserver does on a graceful delete.
	now := metav1.Now()
	got.DeletionTimestamp, got.DeletionGracePeriodSeconds = &now, ptr.To(int64(1))
	if _, err := h.client.CoreV1().Pods("default").Update(context.Background(), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitGone("default", "del")
	ev := rt.Events()
	order := []string{"exec main drain", "term main", "kill main", "exit main 137", "term side-b", "exit side-b 143", "term side-a", "exit side-a 143", "destroy"}
	last := -1
	for _, e := range order {
		i := indexOf(ev, e)
		if i <= last {
			t.Fatalf("event %q out of order (want %v): %v", e, order, ev)
		}
		last = i
	}
}

func TestRunAsNonRootRefusesRoot(t *testing.T) {
	pod := testPod("root", func(p *corev1.Pod) {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
		p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To(int64(0))}
	})
	rt := newFakeRuntime()
	h := newHarness(t, rt, pod)
	got := h.waitPod("default", "root", "CreateContainerConfigError", func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return len(s) == 1 && s[0].State.Waiting != nil && s[0].State.Waiting.Reason == "CreateContainerConfigError"
	})
	if got.Status.Phase != corev1.PodPending || rt.count("start main") != 0 {
		t.Errorf("phase %s, events %v", got.Status.Phase, rt.Events())
	}
}

func TestUnknownImageReportsErrImagePull(t *testing.T) {
	rt := newFakeRuntime()
	rt.startErr = map[string]error{"main": errors.Join(ErrImage, errors.New(`image "nope" is not in the image table`))}
	h := newHarness(t, rt, testPod("img", nil))
	h.waitPod("default", "img", "ErrImagePull", func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return len(s) == 1 && s[0].State.Waiting != nil && s[0].State.Waiting.Reason == "ErrImagePull"
	})
}

func TestLivenessFailureRestartsContainer(t *testing.T) {
	rt := newFakeRuntime()
	rt.exec = func(string, []string) int { return 1 }
	pod := testPod("live", func(p *corev1.Pod) {
		p.Spec.TerminationGracePeriodSeconds = ptr.To(int64(1))
		p.Spec.Containers[0].LivenessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}},
			PeriodSeconds: 1, FailureThreshold: 1,
		}
	})
	h := newHarness(t, rt, pod)
	got := h.waitPod("default", "live", "restarted", func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return len(s) == 1 && s[0].RestartCount >= 1
	})
	if lt := got.Status.ContainerStatuses[0].LastTerminationState.Terminated; lt == nil || lt.ExitCode != 143 {
		t.Errorf("lastState = %+v", lt)
	}
}

func TestPostStartBlocksNextContainer(t *testing.T) {
	rt := newFakeRuntime()
	release := make(chan struct{})
	rt.exec = func(container string, cmd []string) int {
		if container == "a" && cmd[0] == "hook" {
			<-release
		}
		return 0
	}
	pod := testPod("hooks", func(p *corev1.Pod) {
		p.Spec.Containers = []corev1.Container{
			{Name: "a", Image: "x", Lifecycle: &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"hook"}}}}},
			{Name: "b", Image: "x"},
		}
	})
	h := newHarness(t, rt, pod)
	h.waitPod("default", "hooks", "a running, not started", func(p *corev1.Pod) bool {
		s := p.Status.ContainerStatuses
		return len(s) == 2 && s[0].State.Running != nil && !*s[0].Started
	})
	time.Sleep(100 * time.Millisecond)
	if n := rt.count("start b"); n != 0 {
		t.Fatalf("b started while a's postStart was running: %v", rt.Events())
	}
	close(release)
	h.waitPod("default", "hooks", "Ready", func(p *corev1.Pod) bool { return cond(p, corev1.PodReady) == corev1.ConditionTrue })
	if ev := rt.Events(); indexOf(ev, "start a") > indexOf(ev, "start b") {
		t.Errorf("order: %v", ev)
	}
}
