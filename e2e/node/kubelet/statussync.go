package kubelet

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// statusManager sends pod statuses through the pods/status subresource. Workers mark pods dirty;
// one goroutine gathers changes for StatusDelay and sends only statuses that differ from the last
// one sent, so bursts of events become one update.
type statusManager struct {
	k    *Kubelet
	wake chan struct{}

	mu    sync.Mutex
	dirtS map[types.UID]*podWorker
	sent  map[types.UID]corev1.PodStatus

	sendMu sync.Mutex // serialises sends
}

func newStatusManager(k *Kubelet) *statusManager {
	return &statusManager{
		k:     k,
		wake:  make(chan struct{}, 1),
		dirtS: map[types.UID]*podWorker{},
		sent:  map[types.UID]corev1.PodStatus{},
	}
}

func (m *statusManager) dirty(w *podWorker) {
	m.mu.Lock()
	m.dirtS[w.uid] = w
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *statusManager) forget(uid types.UID) {
	m.mu.Lock()
	delete(m.dirtS, uid)
	delete(m.sent, uid)
	m.mu.Unlock()
}

func (m *statusManager) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.k.cfg.StatusDelay):
		}
		m.mu.Lock()
		batch := m.dirtS
		m.dirtS = map[types.UID]*podWorker{}
		m.mu.Unlock()
		for _, w := range batch {
			m.syncNow(ctx, w)
		}
	}
}

// syncNow sends w's status if it changed since the last send.
func (m *statusManager) syncNow(ctx context.Context, w *podWorker) {
	m.sendMu.Lock()
	defer m.sendMu.Unlock()
	w.mu.Lock()
	passive, gone := w.passive, w.gone
	w.mu.Unlock()
	if passive || gone {
		return
	}
	st := w.buildStatus()
	m.mu.Lock()
	last, ok := m.sent[w.uid]
	m.mu.Unlock()
	if ok && apiequality.Semantic.DeepEqual(last, st) {
		return
	}
	if err := m.send(ctx, w, st); err != nil {
		if ctx.Err() == nil {
			w.log.Warn("update pod status", "err", err)
		}
		return
	}
	m.mu.Lock()
	m.sent[w.uid] = st
	m.mu.Unlock()
}

func (m *statusManager) send(ctx context.Context, w *podWorker, st corev1.PodStatus) error {
	w.mu.Lock()
	pod := w.pod
	w.mu.Unlock()
	pods := m.k.client.CoreV1().Pods(pod.Namespace)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			pod, err = pods.Get(ctx, pod.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
		}
		if pod.UID != w.uid {
			return nil
		}
		np := pod.DeepCopy()
		np.Status = mergeStatus(pod.Status, st)
		_, err = pods.UpdateStatus(ctx, np, metav1.UpdateOptions{})
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		if !apierrors.IsConflict(err) {
			return err
		}
	}
	return err
}

// mergeStatus puts the kubelet-owned fields of ours over the API's status, keeping the
// conditions and fields others own (readiness gates, qosClass, nominatedNodeName, …).
func mergeStatus(api, ours corev1.PodStatus) corev1.PodStatus {
	out := *api.DeepCopy()
	out.Phase = ours.Phase
	out.Reason, out.Message = "", ""
	out.HostIP, out.HostIPs = ours.HostIP, ours.HostIPs
	out.PodIP, out.PodIPs = ours.PodIP, ours.PodIPs
	if out.StartTime == nil {
		out.StartTime = ours.StartTime
	}
	out.InitContainerStatuses = ours.InitContainerStatuses
	out.ContainerStatuses = ours.ContainerStatuses
	out.ObservedGeneration = ours.ObservedGeneration
	var conds []corev1.PodCondition
	for _, c := range api.Conditions {
		if !ownedConditions[c.Type] {
			conds = append(conds, c)
		}
	}
	for _, c := range ours.Conditions {
		if c.Type == corev1.PodScheduled {
			// Keep the scheduler's (or binding's) transition time when it is already True.
			for _, a := range api.Conditions {
				if a.Type == c.Type && a.Status == c.Status {
					c = a
				}
			}
		}
		conds = append(conds, c)
	}
	out.Conditions = conds
	return out
}
