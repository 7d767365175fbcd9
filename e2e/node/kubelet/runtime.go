package kubelet

import (
	"context"
	"errors"
	"net/netip"
	"os"

	corev1 "k8s.io/api/core/v1"
)

// Runtime creates pod sandboxes. It is the part of e2e/node/runtime the kubelet consumes; the
// node agent's main adapts the real runtime to it.
type Runtime interface {
	// CreateSandbox creates (or returns the existing) sandbox of the pod; idempotent per pod UID.
	CreateSandbox(ctx context.Context, pod *corev1.Pod) (Sandbox, error)
}

// Sandbox is one pod's network namespace and state.
type Sandbox interface {
	// PodIPs returns the pod's addresses, the primary first.
	PodIPs() []netip.Addr
	// Start runs one container process.
	Start(ctx context.Context, c ContainerSpec) (Process, error)
	// Exec runs a command in the container's context and waits for it.
	Exec(ctx context.Context, c ContainerSpec, cmd []string) (exitCode int, output []byte, err error)
	// Destroy kills leftover processes and releases everything the sandbox holds.
	Destroy(ctx context.Context) error
}

// Process is a running container process.
type Process interface {
	Pid() int
	Signal(sig os.Signal) error
	// Done is closed when the process exited.
	Done() <-chan struct{}
	// ExitCode is valid after Done is closed.
	ExitCode() int
}

// ContainerSpec is what the kubelet hands the runtime to start a container: everything resolved.
type ContainerSpec struct {
	Name, Image   string
	Command, Args []string // $(VAR)-expanded; Command empty means the image entrypoint
	Env           []string // fully resolved "KEY=value"
	WorkingDir    string
	VolumeMounts  []corev1.VolumeMount
	// SecurityContext is the container's, already merged with the pod-level one; nil means none.
	SecurityContext *corev1.SecurityContext
}

// ErrImage marks (wrapped) errors of Start for images the runtime does not know; the kubelet
// reports them with reason ErrImagePull.
var ErrImage = errors.New("unknown image")
