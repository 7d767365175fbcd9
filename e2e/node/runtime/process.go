package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// ContainerSpec is what the runtime needs to start one container process.
type ContainerSpec struct {
	Name, Image     string
	Command, Args   []string                // as in the pod spec (Command overrides the image entrypoint)
	Env             []string                // fully resolved "KEY=value" (the kubelet resolves fieldRef/secret/configMap); PATH, HOME and HOSTNAME get defaults when absent
	WorkingDir      string                  // "" means "/" (a container image without WORKDIR)
	VolumeMounts    []corev1.VolumeMount    // names refer to pod volumes
	SecurityContext *corev1.SecurityContext // already merged with the pod-level one; nil means root with the default capabilities
}

// Process is a running container process.
type Process struct {
	cmd      *exec.Cmd
	done     chan struct{}
	exitCode int
}

// Pid is the host pid of the container process.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the container process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Done is closed when the process exited; its remaining process group is killed then.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitCode is valid after Done: the exit status, or 128+signal when killed by a signal.
func (p *Process) ExitCode() int { return p.exitCode }

func (p *Process) killGroup() {
	if p.cmd.Process != nil {
		_ = unix.Kill(-p.cmd.Process.Pid, unix.SIGKILL)
	}
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// launch prepares the re-exec of this binary as the container launcher.
func (s *Sandbox) launch(c ContainerSpec, command, args []string) (*exec.Cmd, *os.File, error) {
	if c.Name == "" {
		return nil, nil, errors.New("container name is empty")
	}
	env := withDefaults(c.Env, s.hostname(), c.SecurityContext)
	path, argv, err := resolveCommand(s.rt.cfg.BinDir, c.Image, command, args, envValue(env, "PATH"))
	if err != nil {
		return nil, nil, err
	}
	spec := nsexecSpec{Path: path, Argv: argv, Env: env, Dir: c.WorkingDir}
	if spec.Dir == "" {
		spec.Dir = "/"
	}
	if !s.hostNet {
		spec.NetNS = s.NetnsPath()
		spec.Hostname = s.hostname()
	}
	var uid, gid int64
	sc := c.SecurityContext
	if sc != nil && sc.RunAsUser != nil {
		uid = *sc.RunAsUser
	}
	if sc != nil && sc.RunAsGroup != nil {
		gid = *sc.RunAsGroup
	}
	if uid < 0 || gid < 0 || uid > 1<<31 || gid > 1<<31 {
		return nil, nil, fmt.Errorf("container %q: invalid runAsUser/runAsGroup %d/%d", c.Name, uid, gid)
	}
	if sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot && uid == 0 {
		return nil, nil, fmt.Errorf("container %q: runAsNonRoot is set but the container would run as root (set runAsUser)", c.Name)
	}
	spec.UID, spec.GID = uint32(uid), uint32(gid)
	if psc := s.pod.Spec.SecurityContext; psc != nil {
		for _, g := range psc.SupplementalGroups {
			spec.Groups = append(spec.Groups, uint32(g))
		}
		if psc.FSGroup != nil {
			spec.Groups = append(spec.Groups, uint32(*psc.FSGroup))
		}
	}
	if spec.Caps, spec.AllCaps, err = effectiveCaps(sc, uid); err != nil {
		return nil, nil, fmt.Errorf("container %q: %w", c.Name, err)
	}
	spec.NoNewPrivs = sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation
	if spec.Mounts, err = s.mounts(c); err != nil {
		return nil, nil, fmt.Errorf("container %q: %w", c.Name, err)
	}
	spec.HideMounts = []string{netnsDir, s.rt.cfg.StateDir}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("encode launcher spec: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("status pipe: %w", err)
	}
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{nsexecArg0, s.key() + "/" + c.Name},
		Env:        []string{nsexecEnv + "=1", nsexecSpecEnv + "=" + string(js)},
		ExtraFiles: []*os.File{statusW}, // fd 3
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,
			Pdeathsig: syscall.SIGKILL,
		},
	}
	return cmd, statusR, nil
}

// startAndWaitExec starts cmd and waits until the launcher execve()d the container command or
// reported why it could not.
func startAndWaitExec(cmd *exec.Cmd, statusR *os.File) error {
	statusW := cmd.ExtraFiles[0]
	err := startOnSpawner(cmd)
	statusW.Close()
	if err != nil {
		statusR.Close()
		return fmt.Errorf("start container launcher: %w", err)
	}
	msg, _ := io.ReadAll(statusR)
	statusR.Close()
	if len(msg) > 0 {
		_ = cmd.Wait()
		return fmt.Errorf("start container: %s", msg)
	}
	return nil
}

// Start runs one container process inside the pod's network namespace and a private mount
// namespace with the container's volumeMounts bound at their mountPath, as the effective
// uid/gid, with the effective capabilities, stdout+stderr appended to the container log file.
// It returns once the command is executing (errors such as a missing binary or a failed mount
// are returned here; an unknown image wraps ErrImage).
func (s *Sandbox) Start(ctx context.Context, c ContainerSpec) (*Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.destroyed {
		return nil, fmt.Errorf("pod %s: sandbox is destroyed", s.key())
	}
	cmd, statusR, err := s.launch(c, c.Command, c.Args)
	if err != nil {
		return nil, err
	}
	sink, err := openLog(s.LogPath(c.Name))
	if err == nil {
		cmd.Stdout, err = sink.pipe("stdout")
	}
	if err == nil {
		cmd.Stderr, err = sink.pipe("stderr")
	}
	closeWriters := func() {
		for _, w := range []io.Writer{cmd.Stdout, cmd.Stderr} {
			if f, ok := w.(*os.File); ok {
				f.Close()
			}
		}
	}
	if err != nil {
		closeWriters()
		if sink != nil {
			go sink.close()
		}
		statusR.Close()
		cmd.ExtraFiles[0].Close()
		return nil, fmt.Errorf("container %q: %w", c.Name, err)
	}
	err = startAndWaitExec(cmd, statusR)
	closeWriters() // the container holds them now
	if err != nil {
		go sink.close()
		return nil, fmt.Errorf("container %q: %w", c.Name, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	s.procs[p] = struct{}{}
	go func() {
		_ = cmd.Wait()
		p.exitCode = exitCode(cmd.ProcessState)
		// Like a container's pid namespace: when the main process exits, the rest dies too.
		p.killGroup()
		// A process outside the group may still hold the log pipes; do not wait for it.
		go sink.close()
		close(p.done) // before taking s.mu: Destroy waits for Done while holding it
		s.mu.Lock()
		delete(s.procs, p)
		s.mu.Unlock()
	}()
	return p, nil
}

// Exec runs cmd the way Start runs a container (same namespaces, mounts, user, capabilities)
// and waits for it; output is stdout and stderr combined. When ctx ends the process group is
// killed and ctx's error returned.
func (s *Sandbox) Exec(ctx context.Context, c ContainerSpec, cmdline []string) (int, []byte, error) {
	if len(cmdline) == 0 {
		return -1, nil, errors.New("exec: empty command")
	}
	s.mu.Lock()
	if s.destroyed {
		s.mu.Unlock()
		return -1, nil, fmt.Errorf("pod %s: sandbox is destroyed", s.key())
	}
	cmd, statusR, err := s.launch(c, cmdline, nil)
	s.mu.Unlock()
	if err != nil {
		return -1, nil, err
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := startAndWaitExec(cmd, statusR); err != nil {
		return -1, nil, fmt.Errorf("exec in container %q: %w", c.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return -1, out.Bytes(), fmt.Errorf("exec in container %q: %w", c.Name, ctx.Err())
	}
	_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	return exitCode(cmd.ProcessState), out.Bytes(), nil
}

func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.b.Bytes()...)
}

// withDefaults adds PATH, HOSTNAME and HOME when the container env lacks them.
func withDefaults(env []string, hostname string, sc *corev1.SecurityContext) []string {
	out := append([]string(nil), env...)
	if envValue(env, "PATH") == "" {
		out = append(out, "PATH="+defaultPath)
	}
	if envValue(env, "HOSTNAME") == "" {
		out = append(out, "HOSTNAME="+hostname)
	}
	if envValue(env, "HOME") == "" {
		home := "/root"
		if sc != nil && sc.RunAsUser != nil && *sc.RunAsUser != 0 {
			home = "/"
		}
		out = append(out, "HOME="+home)
	}
	return out
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// mounts lists the bind mounts of a container: its volumeMounts plus the pod's generated
// /etc/hosts, /etc/hostname and /etc/resolv.conf (unless a volumeMount covers them).
func (s *Sandbox) mounts(c ContainerSpec) ([]bindMount, error) {
	var out []bindMount
	covered := map[string]bool{}
	for _, vm := range c.VolumeMounts {
		vol, ok := s.volumes[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %q: pod has no volume of that name", vm.Name)
		}
		if !filepath.IsAbs(vm.MountPath) {
			return nil, fmt.Errorf("volumeMount %q: mountPath %q must be absolute", vm.Name, vm.MountPath)
		}
		src := vol.path
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expandEnv(vm.SubPathExpr, c.Env)
		}
		if sub != "" {
			var err error
			if src, err = subPathSource(vol.path, sub); err != nil {
				return nil, fmt.Errorf("volumeMount %q: %w", vm.Name, err)
			}
		}
		target := filepath.Clean(vm.MountPath)
		covered[target] = true
		out = append(out, bindMount{Source: src, Target: target, ReadOnly: vm.ReadOnly})
	}
	// Parents before children (/data before /data/cache), as container runtimes do.
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].Target, "/") < strings.Count(out[j].Target, "/")
	})
	if !s.hostNet && !covered["/etc/hosts"] {
		out = append(out, bindMount{Source: s.hostsPath(), Target: "/etc/hosts"})
	}
	if !s.hostNet && !covered["/etc/hostname"] {
		out = append(out, bindMount{Source: s.hostnamePath(), Target: "/etc/hostname"})
	}
	if !covered["/etc/resolv.conf"] && (!s.hostNet || s.usesClusterDNS()) {
		out = append(out, bindMount{Source: s.resolvPath(), Target: "/etc/resolv.conf"})
	}
	return out, nil
}

// subPathSource resolves sub inside the volume directory, refusing paths (and symlinks) that
// escape it, and creates a missing sub directory as kubelet does.
func subPathSource(volPath, sub string) (string, error) {
	if filepath.IsAbs(sub) || strings.HasPrefix(filepath.Clean(sub), "..") {
		return "", fmt.Errorf("subPath %q must be a relative path inside the volume", sub)
	}
	p := filepath.Join(volPath, sub)
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		// Like the volume root (0777 for an emptyDir), so non-root containers can write.
		mode := os.FileMode(0o755)
		if st, err := os.Stat(volPath); err == nil {
			mode = st.Mode().Perm()
		}
		if err := os.MkdirAll(p, mode); err != nil {
			return "", fmt.Errorf("create subPath %s: %w", p, err)
		}
		for d := p; underPath(d, volPath) && d != filepath.Clean(volPath); d = filepath.Dir(d) {
			_ = os.Chmod(d, mode) // MkdirAll applied the umask
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("subPath %q: %w", sub, err)
	}
	base, err := filepath.EvalSymlinks(volPath)
	if err != nil {
		return "", fmt.Errorf("volume path: %w", err)
	}
	if !underPath(real, base) {
		return "", fmt.Errorf("subPath %q resolves outside the volume", sub)
	}
	return real, nil
}

// expandEnv replaces $(VAR) references with values from env (subPathExpr).
func expandEnv(s string, env []string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "$(")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.Index(s[i:], ")")
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(envValue(env, s[i+2:i+j]))
		s = s[i+j+1:]
	}
}
