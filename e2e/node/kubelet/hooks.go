package kubelet

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/e2e/node/kubelet/probe"
)

// runHook runs a postStart or preStop handler: exec in the container, HTTP GET (default host: the
// pod IP; a status in [200,400) is success) or sleep. tcpSocket is accepted and ignored, as kubelet.
func (w *podWorker) runHook(ctx context.Context, c *ctr, r *run, h *corev1.LifecycleHandler) error {
	w.mu.Lock()
	target := w.probeTarget(c, r)
	w.mu.Unlock()
	switch {
	case h.Exec != nil:
		if len(h.Exec.Command) == 0 {
			return fmt.Errorf("exec hook has no command")
		}
		code, out, err := target.Exec(ctx, h.Exec.Command)
		if err != nil {
			return fmt.Errorf("exec hook %q: %w", strings.Join(h.Exec.Command, " "), err)
		}
		if code != 0 {
			return fmt.Errorf("exec hook %q exited with %d: %s", strings.Join(h.Exec.Command, " "), code, strings.TrimSpace(string(out)))
		}
		return nil
	case h.HTTPGet != nil:
		if res, msg := probe.HTTPGet(ctx, h.HTTPGet, target); res != probe.Success {
			return fmt.Errorf("http hook: %s", msg)
		}
		return nil
	case h.Sleep != nil:
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return nil
	case h.TCPSocket != nil:
		return nil
	}
	return fmt.Errorf("hook has no handler")
}
