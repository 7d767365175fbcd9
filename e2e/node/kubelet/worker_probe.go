package kubelet

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/e2e/node/kubelet/probe"
)

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
