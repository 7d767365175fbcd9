package probe

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Exec succeeds when the command exits 0 within the probe's timeout.
func Exec(ctx context.Context, a *corev1.ExecAction, t Target) (Result, string) {
	if t.Exec == nil {
		return Failure, "exec probes are not supported for this target"
	}
	if len(a.Command) == 0 {
		return Failure, "exec probe has no command"
	}
	code, out, err := t.Exec(ctx, a.Command)
	if ctx.Err() != nil {
		return Failure, fmt.Sprintf("command %q timed out", strings.Join(a.Command, " "))
	}
	if err != nil {
		return Failure, err.Error()
	}
	if code != 0 {
		return Failure, fmt.Sprintf("command %q exited with %d: %s", strings.Join(a.Command, " "), code, strings.TrimSpace(string(out)))
	}
	return Success, ""
}
