// Package runtimeadapter adapts e2e/node/runtime to the interfaces the kubelet consumes.
package runtimeadapter

import (
	"context"
	"errors"
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/e2e/node/kubelet"
	"github.com/weftmesh/weft/e2e/node/runtime"
)

// New wraps rt as a kubelet.Runtime.
func New(rt *runtime.Runtime) kubelet.Runtime { return adapter{rt: rt} }

type adapter struct{ rt *runtime.Runtime }

func (a adapter) CreateSandbox(ctx context.Context, pod *corev1.Pod) (kubelet.Sandbox, error) {
	sb, err := a.rt.CreateSandbox(ctx, pod)
	if err != nil {
		return nil, err
	}
	return sandbox{sb: sb}, nil
}

// RemovePodFiles deletes the logs a finished pod's sandbox left behind.
func (a adapter) RemovePodFiles(pod *corev1.Pod) error { return a.rt.RemovePodFiles(pod) }

type sandbox struct{ sb *runtime.Sandbox }

func (s sandbox) PodIPs() []netip.Addr { return s.sb.PodIPs() }

func (s sandbox) Start(ctx context.Context, c kubelet.ContainerSpec) (kubelet.Process, error) {
	p, err := s.sb.Start(ctx, convert(c))
	if err != nil {
		if errors.Is(err, runtime.ErrImage) {
			return nil, imageError{err: err}
		}
		return nil, err
	}
	return p, nil
}

func (s sandbox) Exec(ctx context.Context, c kubelet.ContainerSpec, cmd []string) (int, []byte, error) {
	return s.sb.Exec(ctx, convert(c), cmd)
}

func (s sandbox) Destroy(ctx context.Context) error { return s.sb.Destroy(ctx) }

func convert(c kubelet.ContainerSpec) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		Name:            c.Name,
		Image:           c.Image,
		Command:         c.Command,
		Args:            c.Args,
		Env:             c.Env,
		WorkingDir:      c.WorkingDir,
		VolumeMounts:    c.VolumeMounts,
		SecurityContext: c.SecurityContext,
	}
}

// imageError keeps the runtime's message and matches kubelet.ErrImage.
type imageError struct{ err error }

func (e imageError) Error() string        { return e.err.Error() }
func (e imageError) Unwrap() error        { return e.err }
func (e imageError) Is(target error) bool { return target == kubelet.ErrImage }

func (s sandbox) LogPath(container string) string { return s.sb.LogPath(container) }

func (s sandbox) PreviousLogPath(container string) string {
	return runtime.PreviousLogPath(s.sb.LogPath(container))
}

func (s sandbox) ExecStream(ctx context.Context, c kubelet.ContainerSpec, cmd []string, st kubelet.Streams) (int, error) {
	rst := runtime.Streams{In: st.In, Out: st.Out, Err: st.Err, TTY: st.TTY}
	if st.Resize != nil {
		ch := make(chan runtime.TermSize, 1)
		done := make(chan struct{})
		defer close(done)
		go func() {
			defer close(ch)
			for {
				select {
				case sz, ok := <-st.Resize:
					if !ok {
						return
					}
					select {
					case ch <- runtime.TermSize{Width: sz.Width, Height: sz.Height}:
					case <-done:
						return
					}
				case <-done:
					return
				}
			}
		}()
		rst.Resize = ch
	}
	return s.sb.ExecStream(ctx, convert(c), cmd, rst)
}
