package kubelet

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// schedulable reports whether this agent should bind the unscheduled pod: default scheduler, not
// being deleted, not finished, and a nodeSelector the Node satisfies.
func (k *Kubelet) schedulable(pod *corev1.Pod) bool {
	if pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil {
		return false
	}
	if s := pod.Spec.SchedulerName; s != "" && s != corev1.DefaultSchedulerName {
		return false
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	return labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(k.nodeLabels()))
}

// maybeBind binds an unscheduled pod to this node through the pods/binding subresource, in the
// background, with a few retries.
func (k *Kubelet) maybeBind(pod *corev1.Pod) {
	if !k.schedulable(pod) {
		return
	}
	k.mu.Lock()
	if k.binding[pod.UID] || k.shutdown {
		k.mu.Unlock()
		return
	}
	k.binding[pod.UID] = true
	ctx := k.runCtx
	k.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	go func() {
		for attempt := 0; attempt < 5; attempt++ {
			err := k.bind(ctx, pod)
			if err == nil || apierrors.IsConflict(err) || apierrors.IsNotFound(err) || ctx.Err() != nil {
				return
			}
			k.log.Warn("bind pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(attempt+1) * 500 * time.Millisecond):
			}
		}
		k.mu.Lock()
		delete(k.binding, pod.UID)
		k.mu.Unlock()
	}()
}

func (k *Kubelet) bind(ctx context.Context, pod *corev1.Pod) error {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: k.cfg.NodeName},
	}
	if err := k.client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		return err
	}
	k.log.Info("bound pod", "pod", pod.Namespace+"/"+pod.Name, "node", k.cfg.NodeName)
	if k.recorder != nil {
		k.recorder.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, k.cfg.NodeName)
	}
	return nil
}
