package kubelet

import (
	"context"
	"os"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// grace is the pod's termination grace period (deletionGracePeriodSeconds when being deleted).
func (w *podWorker) grace() time.Duration {
	pod := w.pod
	if pod.DeletionGracePeriodSeconds != nil {
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

// stopRun stops one container instance as kubelet's killContainer: preStop hook, SIGTERM, wait
// until deadline, SIGKILL. It returns once the process exited (or 10s after SIGKILL).
func (w *podWorker) stopRun(ctx context.Context, c *ctr, r *run, deadline time.Time) {
	w.mu.Lock()
	r.stopping = true
	exited := r.exited
	w.mu.Unlock()
	if exited {
		return
	}
	if c.spec.Lifecycle != nil && c.spec.Lifecycle.PreStop != nil {
		hctx, cancel := context.WithDeadline(ctx, deadline)
		if err := w.runHook(hctx, c, r, c.spec.Lifecycle.PreStop); err != nil {
			w.log.Warn("preStop hook failed", "container", c.name(), "err", err)
		}
		cancel()
	}
	w.log.Info("stopping container", "container", c.name(), "grace", time.Until(deadline).Round(time.Millisecond))
	w.mu.Lock()
	w.event(corev1.EventTypeNormal, "Killing", "Stopping container %s", c.name())
	w.mu.Unlock()
	_ = r.proc.Signal(syscall.SIGTERM)
	t := time.NewTimer(max(time.Until(deadline), 0))
	defer t.Stop()
	select {
	case <-r.proc.Done():
	case <-t.C:
		w.log.Info("killing container after grace period", "container", c.name())
		_ = r.proc.Signal(os.Kill)
		select {
		case <-r.proc.Done():
		case <-time.After(10 * time.Second):
			w.log.Warn("container did not exit after SIGKILL", "container", c.name())
		}
	}
	w.log.Info("container stopped", "container", c.name())
}

// stopAll stops every running container in kubelet's order: regular containers (and a running
// regular init container) in parallel, then native sidecars one by one in reverse order, each
// given the rest of the grace period but at least 2s.
func (w *podWorker) stopAll(ctx context.Context, grace time.Duration, why string) {
	ctx = context.WithoutCancel(ctx)
	w.mu.Lock()
	w.terminating = true
	type target struct {
		c *ctr
		r *run
	}
	var mains, sidecars []target
	for _, c := range append(append([]*ctr{}, w.inits...), w.ctrs...) {
		if !c.cur.running() {
			continue
		}
		if c.kind == kindSidecar {
			sidecars = append(sidecars, target{c, c.cur})
		} else {
			mains = append(mains, target{c, c.cur})
		}
	}
	w.mu.Unlock()
	w.log.Info("stopping pod", "why", why, "grace", grace)
	deadline := time.Now().Add(grace)
	var wg sync.WaitGroup
	for _, t := range mains {
		wg.Add(1)
		go func() { defer wg.Done(); w.stopRun(ctx, t.c, t.r, deadline) }()
	}
	wg.Wait()
	for i := len(sidecars) - 1; i >= 0; i-- {
		t := sidecars[i]
		w.stopRun(ctx, t.c, t.r, maxTime(deadline, time.Now().Add(2*time.Second)))
	}
	// Give exit watchers a moment to record the exits.
	w.mu.Lock()
	for _, t := range append(mains, sidecars...) {
		if t.r.cancel != nil {
			t.r.cancel()
		}
	}
	w.mu.Unlock()
	for _, t := range append(mains, sidecars...) {
		<-t.r.proc.Done()
	}
	w.waitExitsRecorded()
}

// waitExitsRecorded waits (bounded) until the exit watchers recorded every exited process.
func (w *podWorker) waitExitsRecorded() {
	for i := 0; i < 100; i++ {
		w.mu.Lock()
		pending := false
		for _, c := range append(append([]*ctr{}, w.inits...), w.ctrs...) {
			if c.cur != nil && !c.cur.exited {
				select {
				case <-c.cur.proc.Done():
					pending = true
				default:
				}
			}
		}
		w.mu.Unlock()
		if !pending {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *podWorker) destroySandbox(ctx context.Context) {
	w.mu.Lock()
	sb, gone := w.sandbox, w.sandboxGone
	w.mu.Unlock()
	if sb == nil || gone {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := sb.Destroy(dctx); err != nil {
		w.log.Warn("destroy sandbox", "err", err)
	}
	w.mu.Lock()
	w.sandboxGone = true
	w.mu.Unlock()
	w.log.Info("sandbox destroyed")
}

// terminateAndDelete handles a deleted pod: stop containers in order, destroy the sandbox, report
// the final status and delete the Pod object with grace period 0, as kubelet does.
func (w *podWorker) terminateAndDelete(ctx context.Context, gone bool) {
	w.mu.Lock()
	grace, pod, passive := w.grace(), w.pod, w.passive
	w.mu.Unlock()
	if !passive {
		w.stopAll(ctx, grace, "pod deleted")
		w.destroySandbox(ctx)
		w.mu.Lock()
		if w.phase == "" {
			// kubelet moves deleted pods to a terminal phase before removing them.
			w.phase = w.finalPhase()
		}
		w.mu.Unlock()
	}
	w.removePodFiles()
	if gone {
		return
	}
	api := context.WithoutCancel(ctx)
	if !passive {
		w.k.status.syncNow(api, w)
	}
	err := w.k.client.CoreV1().Pods(pod.Namespace).Delete(api, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64),
		Preconditions:      &metav1.Preconditions{UID: &w.uid},
	})
	if err != nil && !apierrors.IsNotFound(err) {
		w.log.Warn("delete pod", "err", err)
		return
	}
	w.log.Info("pod deleted")
}

// podFilesRemover is implemented by runtimes whose sandboxes leave files
// (container logs) behind until the Pod object is deleted.
type podFilesRemover interface {
	RemovePodFiles(pod *corev1.Pod) error
}

func (w *podWorker) removePodFiles() {
	r, ok := w.k.cfg.Runtime.(podFilesRemover)
	if !ok {
		return
	}
	w.mu.Lock()
	pod := w.pod
	w.mu.Unlock()
	if err := r.RemovePodFiles(pod); err != nil {
		w.log.Warn("remove pod files", "err", err)
	}
}

// finalPhase is the phase of a pod whose containers were all stopped: Succeeded when every
// regular container exited 0, else Failed. Caller holds mu.
func (w *podWorker) finalPhase() corev1.PodPhase {
	if len(w.ctrs) == 0 {
		return corev1.PodFailed
	}
	for _, c := range w.ctrs {
		if c.cur == nil || c.cur.exitCode != 0 {
			return corev1.PodFailed
		}
	}
	return corev1.PodSucceeded
}

// stopForShutdown stops the pod's containers and sandbox when the node agent shuts down; the Pod
// object stays as it is so that the next agent starts it again.
func (w *podWorker) stopForShutdown() {
	w.mu.Lock()
	grace := min(w.grace(), w.k.cfg.ShutdownGracePeriod)
	w.mu.Unlock()
	ctx := context.Background()
	w.stopAll(ctx, grace, "node shutdown")
	w.destroySandbox(ctx)
}
