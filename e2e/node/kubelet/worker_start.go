package kubelet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// handleExits decides, once per exited run, whether the container restarts.
func (w *podWorker) handleExits(now time.Time) {
	policy := w.pod.Spec.RestartPolicy
	for _, c := range append(append([]*ctr{}, w.inits...), w.ctrs...) {
		r := c.cur
		if r == nil || !r.exited || r.handled {
			continue
		}
		r.handled = true
		term := c.terminated()
		w.log.Info("container exited", "container", c.name(), "exitCode", r.exitCode, "reason", r.killReason)
		restart := false
		switch c.kind {
		case kindSidecar:
			restart = true
		case kindInit:
			if r.exitCode == 0 {
				c.done = true
			} else {
				restart = policy != corev1.RestartPolicyNever
			}
		case kindRegular:
			switch policy {
			case corev1.RestartPolicyNever:
			case corev1.RestartPolicyOnFailure:
				restart = r.exitCode != 0
			default:
				restart = true
			}
			c.done = !restart
		}
		if !restart {
			continue
		}
		c.lastTerm = term
		d := c.bo.next(r.finishedAt.Sub(r.startedAt))
		c.nextStart = r.finishedAt.Add(d)
		c.waitReason, c.waitMsg = "", ""
		if d > 0 {
			w.event(corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.name(), w.pod.Name, w.pod.Namespace, w.pod.UID)
			c.waitReason = "CrashLoopBackOff"
			c.waitMsg = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
				d, c.name(), w.pod.Name, w.pod.Namespace, w.pod.UID)
		}
	}
}

// startContainer starts c (caller holds mu). It returns false when the start failed; the failure
// is recorded as the container's waiting reason and nextStart.
func (w *podWorker) startContainer(ctx context.Context, c *ctr, now time.Time) bool {
	spec, err := w.containerSpec(ctx, c.spec)
	if err != nil {
		c.waitReason, c.waitMsg = "CreateContainerConfigError", err.Error()
		c.nextStart = now.Add(w.k.cfg.RestartBackoffBase)
		w.log.Warn("container config", "container", c.name(), "err", err)
		w.event(corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return false
	}
	proc, err := w.sandbox.Start(ctx, spec)
	if err != nil {
		c.waitReason, c.waitMsg = "RunContainerError", err.Error()
		if errors.Is(err, ErrImage) {
			c.waitReason = "ErrImagePull"
		}
		c.nextStart = now.Add(max(c.bo.next(0), w.k.cfg.RestartBackoffBase))
		w.log.Warn("start container", "container", c.name(), "err", err)
		w.event(corev1.EventTypeWarning, "Failed", "Error: %s: %v", c.waitReason, err)
		return false
	}
	if c.hadRun {
		c.restarts++
	}
	c.hadRun = true
	rctx, cancel := context.WithCancel(ctx)
	r := &run{
		id:        "weft://" + strconv.Itoa(proc.Pid()),
		proc:      proc,
		spec:      spec,
		startedAt: time.Now(),
		cancel:    cancel,
	}
	c.cur, c.waitReason, c.waitMsg, c.nextStart = r, "", "", time.Time{}
	w.log.Info("container started", "container", c.name(), "pid", proc.Pid(), "restarts", c.restarts)
	w.event(corev1.EventTypeNormal, "Started", "Started container %s", c.name())
	go w.watchExit(c, r)
	if c.spec.Lifecycle != nil && c.spec.Lifecycle.PostStart != nil {
		go w.postStart(rctx, c, r)
	} else {
		r.hookDone = true
		w.startProbes(rctx, c, r)
	}
	return true
}

func (w *podWorker) watchExit(c *ctr, r *run) {
	<-r.proc.Done()
	w.mu.Lock()
	r.exited = true
	r.exitCode = r.proc.ExitCode()
	r.finishedAt = time.Now()
	r.ready = false
	w.mu.Unlock()
	r.cancel()
	w.k.status.dirty(w)
	w.poke()
}

func (w *podWorker) postStart(ctx context.Context, c *ctr, r *run) {
	err := w.runHook(ctx, c, r, c.spec.Lifecycle.PostStart)
	w.mu.Lock()
	r.hookDone = true
	if err != nil && !r.exited {
		w.log.Warn("postStart hook failed", "container", c.name(), "err", err)
		r.killReason = "FailedPostStartHook: " + err.Error()
		_ = r.proc.Signal(syscall.SIGKILL)
	} else if !r.exited {
		w.startProbes(ctx, c, r)
	}
	w.mu.Unlock()
	w.k.status.dirty(w)
	w.poke()
}
