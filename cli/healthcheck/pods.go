package healthcheck

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/internal/annotations"
)

// stuckReasons are container waiting reasons that waiting does not cure.
var stuckReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"ErrImageNeverPull": true, "CreateContainerConfigError": true, "CrashLoopBackOff": true,
}

// stuck returns why pod will not become ready by waiting ("" if it may):
// it cannot be scheduled, or a container's image cannot be pulled. The
// pod's own reason and message are quoted.
func stuck(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return fmt.Sprintf("pod %s/%s cannot be scheduled: %s: %s", p.Namespace, p.Name, c.Reason, c.Message)
		}
	}
	all := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, s := range all {
		if w := s.State.Waiting; w != nil && stuckReasons[w.Reason] {
			msg := fmt.Sprintf("pod %s/%s container %s: %s", p.Namespace, p.Name, s.Name, w.Reason)
			if w.Message != "" {
				msg += ": " + w.Message
			}
			return msg
		}
	}
	return ""
}

// ready reports the pod's Ready condition.
func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// state describes a pod that is not ready, for "last seen" messages.
func state(p *corev1.Pod) string {
	s := string(p.Status.Phase)
	for _, c := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := c.State.Waiting; w != nil && w.Reason != "" {
			return s + " (" + c.Name + ": " + w.Reason + ")"
		}
		if !c.Ready && c.State.Running != nil {
			s += " (" + c.Name + " not ready)"
			return s
		}
	}
	return s
}

// meshed reports whether the pod carries a proxy.
func meshed(p *corev1.Pod) bool {
	_, ok := p.Annotations[annotations.ProxyVersion]
	return ok
}

// live drops pods that finished or are being deleted.
func live(pods []corev1.Pod) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(pods))
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out = append(out, p)
	}
	return out
}

// forEach runs f on every pod with at most 16 in flight and returns the
// non-empty answers sorted.
func forEach(ctx context.Context, pods []*corev1.Pod, f func(context.Context, *corev1.Pod) string) []string {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out []string
		sem = make(chan struct{}, 16)
	)
	for _, p := range pods {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if s := f(ctx, p); s != "" {
				mu.Lock()
				out = append(out, s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sort.Strings(out)
	return out
}

// list joins up to 10 items, saying how many more there are.
func list(items []string) string {
	if len(items) <= 10 {
		return strings.Join(items, "\n")
	}
	return strings.Join(items[:10], "\n") + fmt.Sprintf("\n… and %d more", len(items)-10)
}
