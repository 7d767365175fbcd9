package kubelet

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ctrKind is the role of a container in its pod.
type ctrKind int

const (
	kindInit    ctrKind = iota // regular init container: must exit 0 before the next one starts
	kindSidecar                // init container with restartPolicy Always (native sidecar)
	kindRegular                // spec.containers
)

// ctr is the kubelet's state of one container of a pod; guarded by the pod worker's mutex.
type ctr struct {
	spec *corev1.Container
	kind ctrKind
	// cur is the current or last run; nil means never started by this worker.
	cur *run
	// hadRun means a previous instance existed (so the next start counts as a restart).
	hadRun   bool
	restarts int32
	lastTerm *corev1.ContainerStateTerminated
	bo       backoff
	// nextStart is the earliest time of the next start attempt (back-off); zero means now.
	nextStart time.Time
	// waitReason/waitMsg describe why the container is waiting; "" means no particular reason.
	waitReason, waitMsg string
	// done means the container will not run again (init container completed, or a regular
	// container finished and the restart policy does not restart it).
	done bool
}

// run is one instance of a container.
type run struct {
	id        string
	proc      Process
	spec      ContainerSpec
	startedAt time.Time
	// hookDone means postStart returned (or there was none).
	hookDone bool
	// startupOK means the startup probe succeeded (or there is none).
	startupOK bool
	// ready is the readiness result (true after start when there is no readiness probe).
	ready bool
	// exited is set once the process is gone; handled once the worker acted on it.
	exited, handled bool
	exitCode        int
	finishedAt      time.Time
	// killReason is why the kubelet killed it ("" = it exited by itself).
	killReason string
	// stopping means a stop (preStop + SIGTERM) is in progress.
	stopping bool
	cancel   context.CancelFunc
}

func (r *run) running() bool { return r != nil && !r.exited }

// started is kubelet's "started": running, postStart done and startup probe passed.
func (r *run) started() bool { return r.running() && r.hookDone && r.startupOK }

func (c *ctr) name() string { return c.spec.Name }

func (c *ctr) terminated() *corev1.ContainerStateTerminated {
	r := c.cur
	if r == nil || !r.exited {
		return nil
	}
	reason := "Completed"
	if r.exitCode != 0 {
		reason = "Error"
	}
	return &corev1.ContainerStateTerminated{
		ExitCode:    int32(r.exitCode),
		Reason:      reason,
		Message:     r.killReason,
		StartedAt:   metaTime(r.startedAt),
		FinishedAt:  metaTime(r.finishedAt),
		ContainerID: r.id,
	}
}
