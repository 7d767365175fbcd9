package kubelet

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// startEvents records Events (Scheduled, Started, Killing, Unhealthy, BackOff, Failed) for pods,
// as kubelet does, until the returned stop function is called.
func (k *Kubelet) startEvents(ctx context.Context) (stop func()) {
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.client.CoreV1().Events("")})
	k.recorder = b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: k.cfg.NodeName})
	return b.Shutdown
}

// event records an Event on the worker's pod; a no-op before Run.
func (w *podWorker) event(typ, reason, format string, args ...any) {
	if w.k.recorder == nil {
		return
	}
	w.k.recorder.Eventf(w.pod, typ, reason, format, args...)
}
