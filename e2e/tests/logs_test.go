//go:build e2e

package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// podLogs follows a pod's container log files (CRI log format, decoded by criBodies) from the
// moment they appear, keeping each open so that its content stays readable even after the node
// agent removes the pod's directory (it destroys a finished pod's sandbox, logs included, as soon
// as the pod completes, so `kubectl logs` cannot read it then).
type podLogs struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	bufs map[string]*bytes.Buffer
	errs map[string]error
}

// followLogs starts following the given containers' logs of pod p (as returned by Create).
func followLogs(t *testing.T, p *corev1.Pod, containers ...string) *podLogs {
	l := &podLogs{stop: make(chan struct{}), bufs: map[string]*bytes.Buffer{}, errs: map[string]error{}}
	for _, c := range containers {
		l.bufs[c] = &bytes.Buffer{}
		path := logPath(p, c)
		l.wg.Go(func() { l.follow(c, path) })
	}
	t.Cleanup(l.close)
	return l
}

func (l *podLogs) close() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func (l *podLogs) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *podLogs) follow(container, path string) {
	var f *os.File
	for {
		var err error
		if f, err = os.Open(path); err == nil {
			break
		}
		if l.stopped() {
			l.setErr(container, fmt.Errorf("log %s never appeared: %w", path, err))
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	defer f.Close()
	chunk := make([]byte, 32<<10)
	for {
		n, err := f.Read(chunk)
		if n > 0 {
			l.mu.Lock()
			l.bufs[container].Write(chunk[:n])
			l.mu.Unlock()
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			l.setErr(container, fmt.Errorf("read %s: %w", path, err))
			return
		}
		if l.stopped() {
			return // at EOF after the pod finished: everything is read
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *podLogs) setErr(container string, err error) {
	l.mu.Lock()
	l.errs[container] = err
	l.mu.Unlock()
}

// text stops following (call it once the containers have exited) and returns the container's
// whole log; the test fails if it could not be read.
func (l *podLogs) text(t *testing.T, container string) string {
	t.Helper()
	l.close()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.errs[container]; err != nil {
		t.Fatalf("container %s: %v", container, err)
	}
	b, ok := l.bufs[container]
	if !ok {
		t.Fatalf("container %s: not followed", container)
	}
	return criBodies(b.Bytes())
}

// summary stops following and returns every container's log (or why it could not be read).
func (l *podLogs) summary() string {
	l.close()
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	for c, buf := range l.bufs {
		fmt.Fprintf(&b, "\n--- %s log:\n%s", c, tail(criBodies(buf.Bytes()), 2000))
		if err := l.errs[c]; err != nil {
			fmt.Fprintf(&b, "(%v)\n", err)
		}
	}
	return b.String()
}

// waitContains waits (bounded by podTimeout) until the container's followed log contains s.
func (l *podLogs) waitContains(t *testing.T, container, s string) {
	t.Helper()
	waitFor(t, podTimeout, fmt.Sprintf("%q in the log of container %s", s, container), func(ctx context.Context) (bool, string, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if err := l.errs[container]; err != nil {
			return false, "", err
		}
		return strings.Contains(criBodies(l.bufs[container].Bytes()), s), "", nil
	})
}
