package probe

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Kind is the role of a probe.
type Kind int

// Probe kinds.
const (
	Startup Kind = iota
	Readiness
	Liveness
)

func (k Kind) String() string {
	switch k {
	case Startup:
		return "startup"
	case Readiness:
		return "readiness"
	}
	return "liveness"
}

// Defaults fills unset probe fields with the API defaults (the apiserver does it for stored pods;
// this covers objects that did not go through it). It returns a copy.
func Defaults(p *corev1.Probe) *corev1.Probe {
	c := p.DeepCopy()
	if c.PeriodSeconds <= 0 {
		c.PeriodSeconds = 10
	}
	if c.TimeoutSeconds <= 0 {
		c.TimeoutSeconds = 1
	}
	if c.SuccessThreshold <= 0 {
		c.SuccessThreshold = 1
	}
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = 3
	}
	return c
}

// Tracker applies success/failure thresholds to a sequence of probe results, as kubelet's probe
// worker: the reported result changes only after SuccessThreshold consecutive successes or
// FailureThreshold consecutive failures.
type Tracker struct {
	kind             Kind
	success, failure int32
	last, reported   Result
	run              int32
}

// NewTracker returns a tracker with kubelet's initial result: readiness starts as Failure,
// liveness as Success, startup as Unknown.
func NewTracker(kind Kind, p *corev1.Probe) *Tracker {
	p = Defaults(p)
	t := &Tracker{kind: kind, success: p.SuccessThreshold, failure: p.FailureThreshold}
	switch kind {
	case Readiness:
		t.reported = Failure
	case Liveness:
		t.reported = Success
	}
	if kind != Readiness {
		// Liveness and startup probes must have successThreshold 1.
		t.success = 1
	}
	return t
}

// Reported is the current thresholded result.
func (t *Tracker) Reported() Result { return t.reported }

// Observe records one attempt and returns the thresholded result and whether it changed.
func (t *Tracker) Observe(r Result) (Result, bool) {
	if r == t.last {
		t.run++
	} else {
		t.last, t.run = r, 1
	}
	if (r == Failure && t.run < t.failure) || (r == Success && t.run < t.success) {
		return t.reported, false
	}
	changed := r != t.reported
	t.reported = r
	if r == Failure && t.kind != Readiness {
		// kubelet puts the worker on hold until the container restarts.
		t.run = 0
	}
	return r, changed
}

// Worker probes one container periodically until its context ends.
type Worker struct {
	Kind   Kind
	Spec   *corev1.Probe
	Target Target
	// StartedAt is when the container started; initialDelaySeconds counts from it. Zero means now.
	StartedAt time.Time
	// Report is called (from the worker's goroutine) whenever the thresholded result changes,
	// with the message of the last attempt.
	Report func(r Result, msg string)
}

// Run probes until ctx ends. A startup worker returns after its first reported result (success:
// the container started; failure: it must be restarted); a liveness worker returns after
// reporting a failure (the container is restarted and gets a new worker).
func (w *Worker) Run(ctx context.Context) {
	spec := Defaults(w.Spec)
	tr := NewTracker(w.Kind, spec)
	start := w.StartedAt
	if start.IsZero() {
		start = time.Now()
	}
	if d := time.Until(start.Add(time.Duration(spec.InitialDelaySeconds) * time.Second)); d > 0 {
		if !sleep(ctx, d) {
			return
		}
	}
	period := time.Duration(spec.PeriodSeconds) * time.Second
	for {
		res, msg := Do(ctx, spec, w.Target)
		if ctx.Err() != nil {
			return
		}
		if rep, changed := tr.Observe(res); changed {
			w.Report(rep, msg)
			if w.Kind == Startup || (w.Kind == Liveness && rep == Failure) {
				return
			}
		}
		if !sleep(ctx, period) {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
