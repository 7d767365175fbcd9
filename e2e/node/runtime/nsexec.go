package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/weftmesh/weft/internal/mountinfo"
)

// The container launcher is this very binary, re-executed through /proc/self/exe with
// nsexecEnv set. The child joins the pod's network namespace, unshares a mount (and UTS)
// namespace, performs the bind mounts, drops to the container's credentials and capabilities,
// and finally execve()s the container command. Errors before execve are written to the
// status pipe (fd 3); a successful execve closes that pipe (it is close-on-exec), which is how
// the parent knows the command is running.
const (
	nsexecEnv     = "_WEFT_NSEXEC"
	nsexecSpecEnv = "_WEFT_NSEXEC_SPEC"
	nsexecArg0    = "weft-nsexec"
	statusFD      = 3
)

// nsexecSpec is everything the re-exec child needs; it travels as JSON in nsexecSpecEnv.
type nsexecSpec struct {
	NetNS      string      // netns file to join; "" stays in the parent's network namespace
	Hostname   string      // set in a new UTS namespace; "" keeps the host's UTS namespace
	Mounts     []bindMount // applied in order
	HideMounts []string    // mounts at or below these paths are detached in the container
	UID, GID   uint32
	Groups     []uint32
	Caps       []int // capability numbers the process keeps (ignored when AllCaps)
	AllCaps    bool  // privileged: keep every capability
	NoNewPrivs bool  // allowPrivilegeEscalation: false
	Dir        string
	Path       string // resolved executable
	Argv       []string
	Env        []string
}

type bindMount struct {
	Source, Target string
	ReadOnly       bool
}

// MaybeReexec must be the first call in the main function of any binary that uses this package
// (weft-node, and test binaries in TestMain). When the process was started as the runtime's
// container launcher it sets up the container and execve()s its command, never returning;
// otherwise it returns immediately.
func MaybeReexec() {
	if os.Getenv(nsexecEnv) != "1" {
		return
	}
	goruntime.LockOSThread()
	err := nsexecChild()
	// Only reached on failure: report it through the status pipe and exit.
	status := os.NewFile(statusFD, "status")
	fmt.Fprintf(status, "%v", err)
	status.Close()
	os.Exit(127)
}

func nsexecChild() error {
	var spec nsexecSpec
	if err := json.Unmarshal([]byte(os.Getenv(nsexecSpecEnv)), &spec); err != nil {
		return fmt.Errorf("decode launcher spec: %w", err)
	}
	if _, err := unix.FcntlInt(statusFD, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fmt.Errorf("status pipe: %w", err)
	}
	if spec.NetNS != "" {
		fd, err := unix.Open(spec.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open netns %s: %w", spec.NetNS, err)
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("join netns %s: %w", spec.NetNS, err)
		}
		unix.Close(fd)
	}
	flags := unix.CLONE_NEWNS
	if spec.Hostname != "" {
		flags |= unix.CLONE_NEWUTS
	}
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unshare mount namespace: %w", err)
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", spec.Hostname, err)
		}
	}
	// Slave, not private: unmounts on the host (a deleted netns, a removed volume) propagate in.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / rslave: %w", err)
	}
	for _, m := range spec.Mounts {
		if err := doBindMount(m); err != nil {
			return err
		}
	}
	if err := hideMounts(spec.HideMounts, spec.Mounts); err != nil {
		return err
	}
	if err := setCredentials(&spec); err != nil {
		return err
	}
	if spec.Dir != "" {
		if err := unix.Chdir(spec.Dir); err != nil {
			return fmt.Errorf("chdir %s: %w", spec.Dir, err)
		}
	}
	// Credential changes clear the parent-death signal; set it again and make sure the
	// parent did not already die in between.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("set pdeathsig: %w", err)
	}
	if os.Getppid() == 1 {
		return errors.New("node agent exited before the container started")
	}
	if err := unix.Exec(spec.Path, spec.Argv, spec.Env); err != nil {
		return fmt.Errorf("exec %s: %w", spec.Path, err)
	}
	return nil
}

func doBindMount(m bindMount) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("mount source %s: %w", m.Source, err)
	}
	if err := ensureMountpoint(m.Target, st.IsDir()); err != nil {
		return err
	}
	if err := unix.Mount(m.Source, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", m.Source, m.Target, err)
	}
	if m.ReadOnly {
		// Keep the flags the source mount has (nosuid, nodev, ...): a remount must not clear them.
		var sfs unix.Statfs_t
		extra := uintptr(0)
		if unix.Statfs(m.Target, &sfs) == nil {
			extra = uintptr(sfs.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME)
		}
		if err := unix.Mount("", m.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|extra, ""); err != nil {
			return fmt.Errorf("remount %s read-only: %w", m.Target, err)
		}
	}
	return nil
}

// ensureMountpoint creates the mount target (directory or empty file) on the host filesystem.
func ensureMountpoint(target string, dir bool) error {
	if _, err := os.Stat(target); err == nil {
		return nil
	}
	if dir {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("create mountpoint %s: %w", target, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("create mountpoint %s: %w", target, err)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create mountpoint %s: %w", target, err)
	}
	return f.Close()
}

// hideMounts detaches, in the container's mount namespace, every mount at or below the given
// prefixes (other pods' netns files, tmpfs volumes) so the container does not pin them.
func hideMounts(prefixes []string, keep []bindMount) error {
	if len(prefixes) == 0 {
		return nil
	}
	points, err := mountinfo.Points()
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	for _, m := range keep {
		kept[filepath.Clean(m.Target)] = true
	}
	var victims []string
	for _, p := range points {
		if kept[p] {
			continue
		}
		for _, pre := range prefixes {
			if underPath(p, pre) {
				victims = append(victims, p)
				break
			}
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(victims)))
	for _, p := range victims {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("detach %s: %w", p, err)
		}
	}
	return nil
}

// underPath reports whether p is prefix or inside it.
func underPath(p, prefix string) bool { return mountinfo.IsUnder(p, prefix) }

// setCredentials drops the bounding set, switches uid/gid/groups keeping the wanted
// capabilities, and raises them as ambient capabilities for non-root users. All calls are
// per-thread raw syscalls: this thread is the one that execve()s.
func setCredentials(spec *nsexecSpec) error {
	last := lastCap()
	want := map[int]bool{}
	for _, c := range spec.Caps {
		want[c] = true
	}
	var cur [2]unix.CapUserData
	if err := unix.Capget(&unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}, &cur[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	have := func(c int) bool { return cur[c/32].Permitted&(1<<(uint(c)%32)) != 0 }
	if spec.AllCaps {
		for c := 0; c <= last; c++ {
			want[c] = have(c) // privileged: everything the node agent itself has
		}
	}
	for c := range want {
		if !want[c] {
			delete(want, c)
		} else if !have(c) {
			return fmt.Errorf("capability %s is not available to the node agent", capName(c))
		}
	}
	for c := 0; c <= last; c++ {
		if !want[c] {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				return fmt.Errorf("drop capability %d from bounding set: %w", c, err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	groups := make([]int, len(spec.Groups))
	for i, g := range spec.Groups {
		groups[i] = int(g)
	}
	if err := unix.Setgroups(groups); err != nil { // raw, per-thread
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(spec.GID), uintptr(spec.GID), uintptr(spec.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", spec.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(spec.UID), uintptr(spec.UID), uintptr(spec.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", spec.UID, e)
	}
	var mask [2]uint32
	for c := range want {
		mask[c/32] |= 1 << (uint(c) % 32)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: mask[0], Permitted: mask[0], Inheritable: mask[0]},
		{Effective: mask[1], Permitted: mask[1], Inheritable: mask[1]},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if spec.UID != 0 {
		// Non-root processes lose permitted capabilities on execve unless they are ambient.
		for c := range want {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil {
				return fmt.Errorf("raise ambient capability %s: %w", capName(c), err)
			}
		}
	}
	if spec.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	return nil
}
