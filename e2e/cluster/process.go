package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// children tracks processes this program started: their exit is observed by a reaper
// goroutine (so they never linger as zombies while we run).
var children sync.Map // pid (int) → chan struct{} closed at exit

func pidFile(p paths, name string) string { return filepath.Join(p.run, name+".pid") }
func logFile(p paths, name string) string { return filepath.Join(p.logs, name+".log") }

// start runs c detached from this program (own session, stdin /dev/null, output appended to
// its log file) and records its pid.
func start(p paths, c component) (int, error) {
	for _, d := range []string{p.logs, p.run} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, fmt.Errorf("create %s: %w", d, err)
		}
	}
	logPath := logFile(p, c.name)
	out, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("open log %s: %w", logPath, err)
	}
	defer out.Close()
	fmt.Fprintf(out, "=== %s weft-cluster starts: %s\n", time.Now().Format(time.RFC3339), c.commandLine())
	cmd := exec.Command(c.binary, c.args...)
	cmd.Dir = p.cluster
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", c.name, err)
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	children.Store(pid, done)
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	content := fmt.Sprintf("%d\n%s\n", pid, c.binary)
	if err := os.WriteFile(pidFile(p, c.name), []byte(content), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return 0, fmt.Errorf("write pid file for %s: %w", c.name, err)
	}
	return pid, nil
}

// readPid returns the pid recorded for a component if that process still runs the
// component's binary; 0 when there is no such live process.
func readPid(p paths, c component) int {
	b, err := os.ReadFile(pidFile(p, c.name))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 {
		return 0
	}
	if !alive(pid) || !runs(pid, c.binary) {
		return 0
	}
	return pid
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if ch, ok := children.Load(pid); ok {
		select {
		case <-ch.(chan struct{}):
			return false
		default:
			return true
		}
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

// runs reports whether pid executes binary (pid files can outlive their process and pids are reused).
func runs(pid int, binary string) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	if exe == binary {
		return true
	}
	// The kernel reports the resolved path; the configured one may go through symlinks.
	resolved, err := filepath.EvalSymlinks(binary)
	return err == nil && exe == resolved
}

// exeReplaced reports whether the binary pid runs was replaced or removed after it started
// (e.g. make build rebuilt bin/weft-node).
func exeReplaced(pid int) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.HasSuffix(exe, " (deleted)")
}

// strays finds processes running one of the cluster's binaries with arguments inside this
// cluster's state directory, whether or not a pid file names them (crash recovery). Children
// of such a process that run the same binary (forks, re-execs) are left to their parent.
func strays(p paths, c component) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parents := map[int]int{} // candidate pid → parent pid
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !runs(pid, c.binary) || !alive(pid) {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(cmdline, []byte(p.cluster+string(filepath.Separator))) {
			parents[pid] = parentPid(pid)
		}
	}
	var pids []int
	for pid, ppid := range parents {
		if _, child := parents[ppid]; !child {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// parentPid reads the parent of pid from /proc (0 if unknown).
func parentPid(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(stat[i+1:])) // state, ppid, ...
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// stop terminates a component: SIGTERM, then SIGKILL after grace. It handles the pid file
// and stray processes of the component and removes the pid file.
func stop(ctx context.Context, p paths, c component, grace time.Duration) error {
	pids := strays(p, c)
	if pid := readPid(p, c); pid != 0 && !slices.Contains(pids, pid) {
		pids = append(pids, pid)
	}
	var errs []error
	for _, pid := range pids {
		if err := terminate(ctx, pid, grace); err != nil {
			errs = append(errs, fmt.Errorf("stop %s (pid %d): %w", c.name, pid, err))
		}
	}
	if err := os.Remove(pidFile(p, c.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func terminate(ctx context.Context, pid int, grace time.Duration) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("sigterm: %w", err)
	}
	if waitExit(ctx, pid, grace) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("sigkill: %w", err)
	}
	if waitExit(context.WithoutCancel(ctx), pid, 10*time.Second) {
		return nil
	}
	return errors.New("still running after SIGKILL")
}

// waitExit polls until pid is gone or the timeout/ctx ends; it reports whether pid is gone.
func waitExit(ctx context.Context, pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if !alive(pid) {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logTail returns the last n lines of a component's log, for error messages.
func logTail(p paths, name string, n int) string {
	b, err := os.ReadFile(logFile(p, name))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lock takes an exclusive lock on the cluster so concurrent Ensure/Down calls (from several
// test processes) serialise. The returned function releases it.
func lock(ctx context.Context, p paths) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(p.lock), 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Dir(p.lock), err)
	}
	f, err := os.OpenFile(p.lock, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", p.lock, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", p.lock, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for cluster lock %s: %w", p.lock, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
