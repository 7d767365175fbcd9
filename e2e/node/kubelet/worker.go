package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/weftmesh/weft/e2e/node/kubelet/probe"
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

// probeTarget is the probe target of a run: the pod IP and an exec into the container.
func (w *podWorker) probeTarget(c *ctr, r *run) probe.Target {
	t := probe.Target{Ports: c.spec.Ports}
	if len(w.podIPs) > 0 {
		t.IP = w.podIPs[0]
	}
	sb := w.sandbox
	t.Exec = func(ctx context.Context, cmd []string) (int, []byte, error) {
		return sb.Exec(ctx, r.spec, cmd)
	}
	return t
}

// startProbes starts the startup probe, or (when there is none or once it succeeded) the
// readiness and liveness probes. Caller holds mu.
func (w *podWorker) startProbes(ctx context.Context, c *ctr, r *run) {
	if c.spec.StartupProbe != nil && !r.startupOK {
		pw := &probe.Worker{Kind: probe.Startup, Spec: c.spec.StartupProbe, Target: w.probeTarget(c, r), StartedAt: r.startedAt,
			Report: func(res probe.Result, msg string) { w.probeResult(ctx, c, r, probe.Startup, res, msg) }}
		go pw.Run(ctx)
		return
	}
	r.startupOK = true
	if c.spec.ReadinessProbe == nil {
		r.ready = true
	} else {
		pw := &probe.Worker{Kind: probe.Readiness, Spec: c.spec.ReadinessProbe, Target: w.probeTarget(c, r), StartedAt: r.startedAt,
			Report: func(res probe.Result, msg string) { w.probeResult(ctx, c, r, probe.Readiness, res, msg) }}
		go pw.Run(ctx)
	}
	if c.spec.LivenessProbe != nil {
		pw := &probe.Worker{Kind: probe.Liveness, Spec: c.spec.LivenessProbe, Target: w.probeTarget(c, r), StartedAt: r.startedAt,
			Report: func(res probe.Result, msg string) { w.probeResult(ctx, c, r, probe.Liveness, res, msg) }}
		go pw.Run(ctx)
	}
}

func (w *podWorker) probeResult(ctx context.Context, c *ctr, r *run, kind probe.Kind, res probe.Result, msg string) {
	w.mu.Lock()
	if r.exited || r.stopping || w.terminating {
		w.mu.Unlock()
		return
	}
	switch {
	case kind == probe.Readiness:
		r.ready = res == probe.Success
		if !r.ready {
			w.log.Info("readiness probe failed", "container", c.name(), "msg", msg)
			w.event(corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed: %s", msg)
		}
	case res == probe.Success: // startup
		w.log.Info("startup probe succeeded", "container", c.name())
		r.startupOK = true
		w.startProbes(ctx, c, r)
	default: // liveness or startup failure: kill and restart per policy
		w.log.Info(kind.String()+" probe failed, restarting container", "container", c.name(), "msg", msg)
		r.killReason = fmt.Sprintf("container %s failed %s probe, will be restarted: %s", c.name(), kind, msg)
		w.event(corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", kind, msg)
		grace := w.grace()
		var spec *corev1.Probe = c.spec.LivenessProbe
		if kind == probe.Startup {
			spec = c.spec.StartupProbe
		}
		if spec.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		}
		r.stopping = true
		go w.stopRun(context.WithoutCancel(ctx), c, r, time.Now().Add(grace))
	}
	w.mu.Unlock()
	w.k.status.dirty(w)
	w.poke()
}

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
