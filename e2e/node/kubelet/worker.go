package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// podWorker runs one pod. Its goroutine (run) owns the decisions; container exits, hook
// completions and probe results are recorded under mu by their goroutines, which then wake it.
type podWorker struct {
	k    *Kubelet
	uid  types.UID
	log  *slog.Logger
	wake chan struct{}

	mu      sync.Mutex
	pod     *corev1.Pod // latest object seen
	gone    bool        // the Pod disappeared from the API
	passive bool        // the pod was already finished when first seen: only delete it
	sandbox Sandbox
	podIPs  []netip.Addr
	// sandboxErr is the last sandbox creation error; "" means none.
	sandboxErr   string
	sandboxRetry time.Time
	sandboxBo    backoff
	startTime    time.Time
	inits, ctrs  []*ctr
	initialized  bool
	terminating  bool
	// phase is the latched terminal phase; "" means not terminal.
	phase corev1.PodPhase
	// finishing is the terminal phase the pod reaches once its remaining
	// containers (native sidecars) are stopped; until then it reports Running,
	// as kubelet does.
	finishing corev1.PodPhase
	cleanedUp bool
	// sandboxGone means the sandbox was destroyed.
	sandboxGone bool
	// transitions remembers each condition's status and transition time.
	transitions map[corev1.PodConditionType]condState
}

type condState struct {
	status corev1.ConditionStatus
	at     time.Time
}

func newPodWorker(k *Kubelet, pod *corev1.Pod) *podWorker {
	w := &podWorker{
		k:           k,
		uid:         pod.UID,
		log:         k.log.With("pod", pod.Namespace+"/"+pod.Name),
		wake:        make(chan struct{}, 1),
		pod:         pod,
		transitions: map[corev1.PodConditionType]condState{},
		sandboxBo:   backoff{base: time.Second, max: 30 * time.Second},
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		w.passive = true
		w.phase = pod.Status.Phase
	}
	bo := backoff{base: k.cfg.RestartBackoffBase, max: k.cfg.RestartBackoffMax}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		kind := kindInit
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			kind = kindSidecar
		}
		w.inits = append(w.inits, &ctr{spec: c, kind: kind, bo: bo})
	}
	for i := range pod.Spec.Containers {
		w.ctrs = append(w.ctrs, &ctr{spec: &pod.Spec.Containers[i], kind: kindRegular, bo: bo})
	}
	w.seed(pod)
	return w
}

// seed carries restart counts over from a status written by a previous agent (after a crash or
// restart of the node agent): containers that had run count one more restart when started again.
func (w *podWorker) seed(pod *corev1.Pod) {
	if pod.Status.StartTime != nil {
		w.startTime = pod.Status.StartTime.Time
	}
	apply := func(list []*ctr, statuses []corev1.ContainerStatus) {
		for _, c := range list {
			for _, s := range statuses {
				if s.Name != c.name() {
					continue
				}
				c.restarts = s.RestartCount
				c.lastTerm = s.LastTerminationState.Terminated
				if s.State.Terminated != nil {
					c.lastTerm = s.State.Terminated
				}
				c.hadRun = s.State.Running != nil || s.State.Terminated != nil || c.lastTerm != nil
			}
		}
	}
	apply(w.inits, pod.Status.InitContainerStatuses)
	apply(w.ctrs, pod.Status.ContainerStatuses)
}

func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) markGone() {
	w.mu.Lock()
	w.gone = true
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run is the worker's loop: sync, report, sleep until woken or a back-off expires.
func (w *podWorker) run(ctx context.Context) {
	for {
		w.mu.Lock()
		pod, gone, passive := w.pod, w.gone, w.passive
		w.mu.Unlock()
		switch {
		case ctx.Err() != nil:
			if !passive {
				w.stopForShutdown()
			}
			return
		case gone || pod.DeletionTimestamp != nil:
			w.terminateAndDelete(ctx, gone)
			return
		}
		var next time.Time
		if !passive {
			next = w.sync(ctx)
			w.k.status.dirty(w)
		}
		var timer <-chan time.Time
		var t *time.Timer
		if !next.IsZero() {
			t = time.NewTimer(time.Until(next))
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// sync moves the pod one step towards its spec and returns when it wants to be woken again
// (zero: only on events).
func (w *podWorker) sync(ctx context.Context) time.Time {
	w.mu.Lock()
	if w.phase != "" || w.finishing != "" {
		cleaned := w.cleanedUp
		w.cleanedUp = true
		w.mu.Unlock()
		if !cleaned {
			// Stop what still runs (native sidecars), then report the terminal
			// phase. Destroying the sandbox keeps the container logs; they go
			// when the Pod object is deleted (terminateAndDelete).
			w.stopAll(ctx, w.grace(), "pod finished")
			w.mu.Lock()
			if w.phase == "" {
				w.phase = w.finishing
			}
			w.mu.Unlock()
			w.k.status.dirty(w)
			w.destroySandbox(ctx)
		}
		return time.Time{}
	}
	defer w.mu.Unlock()
	now := time.Now()
	if w.sandbox == nil {
		if now.Before(w.sandboxRetry) {
			return w.sandboxRetry
		}
		sb, err := w.k.cfg.Runtime.CreateSandbox(ctx, w.pod)
		if err != nil {
			w.sandboxErr = err.Error()
			w.sandboxRetry = now.Add(max(w.sandboxBo.next(0), time.Second))
			w.log.Warn("create sandbox", "err", err)
			return w.sandboxRetry
		}
		w.sandbox, w.podIPs, w.sandboxErr = sb, sb.PodIPs(), ""
		if w.startTime.IsZero() {
			w.startTime = now
		}
		w.log.Info("sandbox created", "ips", fmt.Sprint(w.podIPs))
	}
	w.handleExits(now)
	if ph := w.computePhase(); ph == corev1.PodSucceeded || ph == corev1.PodFailed {
		w.finishing = ph
		w.log.Info("pod finished", "phase", ph)
		return now // sync again at once to stop what remains
	}
	var wakeAt time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (wakeAt.IsZero() || t.Before(wakeAt)) {
			wakeAt = t
		}
	}
	// Init containers in order; once initialized, only sidecars restart.
	for _, c := range w.inits {
		if w.initialized && c.kind != kindSidecar {
			continue
		}
		switch {
		case c.done:
			continue
		case c.cur.running():
			if c.kind == kindSidecar && (w.initialized || c.cur.started()) {
				continue
			}
			return wakeAt // wait for it to complete / start
		}
		if now.Before(c.nextStart) {
			earliest(c.nextStart)
			if w.initialized {
				continue
			}
			return wakeAt
		}
		if !w.startContainer(ctx, c, now) {
			earliest(c.nextStart)
		}
		if w.initialized {
			continue
		}
		if c.kind == kindSidecar && c.cur.started() {
			continue
		}
		return wakeAt
	}
	if !w.initialized {
		w.initialized = true
		w.log.Info("pod initialized")
	}
	for _, c := range w.ctrs {
		switch {
		case c.done:
			continue
		case c.cur.running():
			if !c.cur.hookDone {
				// kubelet starts containers one after another: postStart blocks the next.
				return wakeAt
			}
			continue
		}
		if now.Before(c.nextStart) {
			earliest(c.nextStart)
			continue
		}
		if !w.startContainer(ctx, c, now) {
			earliest(c.nextStart)
			continue
		}
		if !c.cur.hookDone {
			return wakeAt
		}
	}
	return wakeAt
}

// computePhase is kubelet's getPhase for a pod that is not yet terminal; "" while undecided.
func (w *podWorker) computePhase() corev1.PodPhase {
	policy := w.pod.Spec.RestartPolicy
	for _, c := range w.inits {
		if c.kind == kindInit && policy == corev1.RestartPolicyNever && c.cur != nil && c.cur.exited && c.cur.exitCode != 0 {
			return corev1.PodFailed
		}
	}
	if !w.initialized || len(w.ctrs) == 0 {
		return corev1.PodPending
	}
	running, stopped, succeeded, waiting := 0, 0, 0, 0
	for _, c := range w.ctrs {
		switch {
		case c.cur.running():
			running++
		case c.done:
			stopped++
			if c.cur != nil && c.cur.exitCode == 0 {
				succeeded++
			}
		case c.lastTerm != nil:
			stopped++ // restarting
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case policy == corev1.RestartPolicyAlways || policy == "":
		return corev1.PodRunning
	case stopped == succeeded:
		return corev1.PodSucceeded
	case policy == corev1.RestartPolicyOnFailure:
		return corev1.PodRunning
	default:
		return corev1.PodFailed
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func metaTime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t)
}
