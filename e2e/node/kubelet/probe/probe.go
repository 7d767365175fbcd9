// Package probe runs Kubernetes container probes (httpGet, tcpSocket, exec, grpc) with kubelet's
// semantics: one attempt with Do, and periodic probing with thresholds with Worker.
package probe

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Result is the outcome of one probe attempt.
type Result int

// Probe results.
const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "success"
	case Failure:
		return "failure"
	}
	return "unknown"
}

// ExecFunc runs cmd in the container and returns its exit code.
type ExecFunc func(ctx context.Context, cmd []string) (exitCode int, output []byte, err error)

// Target is the container a probe is aimed at.
type Target struct {
	// IP is the pod IP that httpGet/tcpSocket/grpc probes are sent to when the action names no host.
	IP netip.Addr
	// Ports are the container's ports, to resolve named ports; nil means only numeric ports work.
	Ports []corev1.ContainerPort
	// Exec runs exec probes; nil makes exec probes fail.
	Exec ExecFunc
}

// Do runs one attempt of the probe's handler with the probe's timeout.
func Do(ctx context.Context, p *corev1.Probe, t Target) (Result, string) {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h := p.ProbeHandler
	switch {
	case h.HTTPGet != nil:
		return HTTPGet(ctx, h.HTTPGet, t)
	case h.TCPSocket != nil:
		return TCPSocket(ctx, h.TCPSocket, t)
	case h.Exec != nil:
		return Exec(ctx, h.Exec, t)
	case h.GRPC != nil:
		return GRPC(ctx, h.GRPC, t)
	}
	return Failure, "probe has no handler"
}

// ResolvePort turns a port number or a container port name into a number.
func ResolvePort(port intstr.IntOrString, ports []corev1.ContainerPort) (int, error) {
	if port.Type == intstr.Int {
		if port.IntVal <= 0 || port.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port number %d", port.IntVal)
		}
		return int(port.IntVal), nil
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	for _, p := range ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("no container port named %q", port.StrVal)
}

func host(actionHost string, t Target) string {
	if actionHost != "" {
		return actionHost
	}
	if t.IP.IsValid() {
		return t.IP.String()
	}
	return "127.0.0.1"
}
