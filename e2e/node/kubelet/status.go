package kubelet

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// ownedConditions are the pod conditions the kubelet writes; others are kept as they are.
var ownedConditions = map[corev1.PodConditionType]bool{
	corev1.PodScheduled:              true,
	corev1.PodReadyToStartContainers: true,
	corev1.PodInitialized:            true,
	corev1.ContainersReady:           true,
	corev1.PodReady:                  true,
}

// buildStatus computes the pod status from the worker's state.
func (w *podWorker) buildStatus() corev1.PodStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	pod := w.pod
	st := corev1.PodStatus{
		Phase:              w.phase,
		HostIP:             w.k.cfg.NodeIP.String(),
		HostIPs:            []corev1.HostIP{{IP: w.k.cfg.NodeIP.String()}},
		ObservedGeneration: pod.Generation,
	}
	if st.Phase == "" {
		st.Phase = w.computePhase()
		if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
			// The regular containers are done but sidecars are still being
			// stopped: the pod is terminal only once they are (see sync).
			st.Phase = corev1.PodRunning
		}
	}
	if !w.startTime.IsZero() {
		t := metav1.NewTime(w.startTime)
		st.StartTime = &t
	}
	for i, ip := range w.podIPs {
		if i == 0 {
			st.PodIP = ip.String()
		}
		st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: ip.String()})
	}
	reached := true // init containers before the first unfinished one are "reached"
	var incomplete, unready []string
	for _, c := range w.inits {
		cs := w.containerStatus(c, reached)
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		if c.kind == kindInit && !c.done {
			reached = false
			incomplete = append(incomplete, c.name())
		}
		if c.kind == kindSidecar {
			if !c.cur.started() {
				reached = false
				incomplete = append(incomplete, c.name())
			}
			if !cs.Ready {
				unready = append(unready, c.name())
			}
		}
	}
	for _, c := range w.ctrs {
		cs := w.containerStatus(c, w.initialized)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		if !cs.Ready {
			unready = append(unready, c.name())
		}
	}
	if w.initialized {
		incomplete = nil
	}

	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	sandboxUp := w.sandbox != nil && !w.sandboxGone
	add := func(t corev1.PodConditionType, ok bool, reason, msg string) {
		s := corev1.ConditionFalse
		if ok {
			s, reason, msg = corev1.ConditionTrue, "", ""
		}
		prev, seen := w.transitions[t]
		if !seen || prev.status != s {
			prev = condState{status: s, at: now}
			w.transitions[t] = prev
		}
		st.Conditions = append(st.Conditions, corev1.PodCondition{
			Type: t, Status: s, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(prev.at),
		})
	}
	add(corev1.PodReadyToStartContainers, sandboxUp, "", "")
	add(corev1.PodInitialized, len(incomplete) == 0, "ContainersNotInitialized",
		fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " ")))
	ctrsReady, reason, msg := len(unready) == 0, "ContainersNotReady",
		fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
	if terminal {
		ctrsReady, reason, msg = false, "PodCompleted", ""
	}
	add(corev1.ContainersReady, ctrsReady, reason, msg)
	ready, rreason, rmsg := ctrsReady, reason, msg
	if ready {
		var missing []string
		for _, g := range pod.Spec.ReadinessGates {
			if !conditionTrue(pod.Status.Conditions, g.ConditionType) {
				missing = append(missing, string(g.ConditionType))
			}
		}
		if len(missing) > 0 {
			ready, rreason, rmsg = false, "ReadinessGatesNotReady",
				fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", strings.Join(missing, ", "))
		}
	}
	add(corev1.PodReady, ready, rreason, rmsg)
	add(corev1.PodScheduled, true, "", "")
	return st
}

func conditionTrue(conds []corev1.PodCondition, t corev1.PodConditionType) bool {
	for _, c := range conds {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerStatus reports one container. reached says whether the pod got as far as this
// container (else a never-started container waits with PodInitializing). Caller holds mu.
func (w *podWorker) containerStatus(c *ctr, reached bool) corev1.ContainerStatus {
	s := corev1.ContainerStatus{
		Name:         c.name(),
		Image:        c.spec.Image,
		ImageID:      "weft://" + c.spec.Image,
		RestartCount: c.restarts,
		Started:      ptr.To(false),
	}
	if c.lastTerm != nil {
		s.LastTerminationState.Terminated = c.lastTerm.DeepCopy()
	}
	r := c.cur
	switch {
	case r.running():
		s.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(r.startedAt)}
		s.ContainerID = r.id
		s.Started = ptr.To(r.started())
		s.Ready = r.started() && r.ready && !r.stopping
	case c.waitReason != "" && w.phase == "":
		s.State.Waiting = &corev1.ContainerStateWaiting{Reason: c.waitReason, Message: c.waitMsg}
	case r != nil && r.exited:
		s.State.Terminated = c.terminated()
		s.ContainerID = r.id
		if s.LastTerminationState.Terminated != nil && s.LastTerminationState.Terminated.ContainerID == r.id {
			// Not restarted yet: the last run is the current state, the one before is unknown.
			s.LastTerminationState.Terminated = nil
		}
	case !reached || (c.kind == kindRegular && !w.initialized):
		s.State.Waiting = &corev1.ContainerStateWaiting{Reason: "PodInitializing"}
	default:
		s.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	return s
}
