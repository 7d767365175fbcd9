package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
)

// TermSize is a terminal's size in characters.
type TermSize struct{ Width, Height uint16 }

// Streams are the standard streams of an interactive exec (see StreamingSandbox).
type Streams struct {
	In       io.Reader // nil means no stdin
	Out, Err io.Writer
	TTY      bool
	Resize   <-chan TermSize
}

// StreamingSandbox is the part of a Sandbox the kubelet API uses: container log files and
// interactive exec. Sandboxes that lack it serve no logs and no exec.
type StreamingSandbox interface {
	// LogPath is the container's current log file (CRI log format).
	LogPath(container string) string
	// PreviousLogPath is the log of the container's previous instance.
	PreviousLogPath(container string) string
	// ExecStream runs cmd in the container's context with its streams connected to st.
	ExecStream(ctx context.Context, c ContainerSpec, cmd []string, st Streams) (exitCode int, err error)
}

// ErrNotFound marks lookups of pods or containers this node does not run.
var ErrNotFound = errors.New("not found")

// ContainerRef is one container of a pod on this node, as the kubelet API sees it.
type ContainerRef struct {
	Pod       *corev1.Pod
	Container string
	// LogPath and PreviousLogPath are the current and the previous instance's logs.
	LogPath, PreviousLogPath string
	// PodIP is the pod's primary address (invalid before the sandbox exists).
	PodIP netip.Addr
	// Pid is the host pid of the running instance; 0 when it is not running.
	Pid int

	w    *podWorker
	sb   StreamingSandbox
	spec ContainerSpec
	run  *run // the instance current at lookup; nil when none had started
}

// Running reports whether the instance that was current at lookup (the one writing LogPath)
// still runs: a followed log ends when it exits, even if the container restarts.
func (r ContainerRef) Running() bool {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	return r.run.running()
}

// Exec runs cmd inside the running container (its network and mount namespaces, user and
// capabilities).
func (r ContainerRef) Exec(ctx context.Context, cmd []string, st Streams) (int, error) {
	if r.Pid == 0 {
		return -1, fmt.Errorf("container %q of pod %s/%s is not running", r.Container, r.Pod.Namespace, r.Pod.Name)
	}
	return r.sb.ExecStream(ctx, r.spec, cmd, st)
}

// Pods returns the pods bound to this node.
func (k *Kubelet) Pods() []*corev1.Pod {
	if k.pods == nil {
		return nil
	}
	all, err := k.pods.List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*corev1.Pod
	for _, p := range all {
		if p.Spec.NodeName == k.cfg.NodeName {
			out = append(out, p)
		}
	}
	return out
}

// Container looks up a container of a pod this node runs (ErrNotFound, wrapped, when it does
// not).
func (k *Kubelet) Container(namespace, pod, container string) (ContainerRef, error) {
	if k.pods == nil {
		return ContainerRef{}, fmt.Errorf("pod %s/%s: %w (the node agent is starting)", namespace, pod, ErrNotFound)
	}
	p, err := k.pods.Pods(namespace).Get(pod)
	if apierrors.IsNotFound(err) || (err == nil && p.Spec.NodeName != k.cfg.NodeName) {
		return ContainerRef{}, fmt.Errorf("pod %s/%s: %w on node %s", namespace, pod, ErrNotFound, k.cfg.NodeName)
	}
	if err != nil {
		return ContainerRef{}, fmt.Errorf("pod %s/%s: %w", namespace, pod, err)
	}
	k.mu.Lock()
	w := k.workers[p.UID]
	k.mu.Unlock()
	if w == nil {
		return ContainerRef{}, fmt.Errorf("pod %s/%s: %w: not started on this node", namespace, pod, ErrNotFound)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.find(container)
	if c == nil {
		return ContainerRef{}, fmt.Errorf("container %q: %w in pod %s/%s", container, ErrNotFound, namespace, pod)
	}
	ref := ContainerRef{Pod: p, Container: container, w: w}
	if len(w.podIPs) > 0 {
		ref.PodIP = w.podIPs[0]
	}
	sb, ok := w.sandbox.(StreamingSandbox)
	if !ok {
		return ContainerRef{}, fmt.Errorf("pod %s/%s: %w: no sandbox with logs yet", namespace, pod, ErrNotFound)
	}
	ref.sb, ref.LogPath, ref.PreviousLogPath = sb, sb.LogPath(container), sb.PreviousLogPath(container)
	if c.cur != nil {
		ref.spec, ref.run = c.cur.spec, c.cur
		if c.cur.running() {
			ref.Pid = c.cur.proc.Pid()
		}
	}
	return ref, nil
}

// find returns the container named name; caller holds mu.
func (w *podWorker) find(name string) *ctr {
	for _, list := range [][]*ctr{w.inits, w.ctrs} {
		for _, c := range list {
			if c.name() == name {
				return c
			}
		}
	}
	return nil
}
