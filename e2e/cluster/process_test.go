package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func sleeper(t *testing.T, p paths) component {
	t.Helper()
	sh, err := filepath.EvalSymlinks("/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	// The last argument ($0) names the cluster directory, as every real component's flags do.
	return component{name: "sleeper", binary: sh, args: []string{"-c", "while :; do sleep 1; done", p.cluster + "/marker"}}
}

func TestStartStopDetached(t *testing.T) {
	p, err := resolvePaths(Config{CacheDir: t.TempDir(), BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p.cluster, 0o755); err != nil {
		t.Fatal(err)
	}
	c := sleeper(t, p)
	pid, err := start(p, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if got := readPid(p, c); got != pid {
		exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
		t.Fatalf("readPid = %d, want %d (alive %v, exe %s %v, want %s)", got, pid, alive(pid), exe, err, c.binary)
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("process session %d (%v), want its own session %d", sid, err, pid)
	}
	// Right after exec the kernel may not show the new command line yet.
	s := strays(p, c)
	for i := 0; i < 50 && len(s) == 0; i++ {
		time.Sleep(20 * time.Millisecond)
		s = strays(p, c)
	}
	if len(s) != 1 || s[0] != pid {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		t.Errorf("strays = %v, want [%d] (runs %v, alive %v, ppid %d, cmdline %q)", s, pid, runs(pid, c.binary), alive(pid), parentPid(pid), cmdline)
	}
	// The binary may be configured through a symlink.
	link := filepath.Join(t.TempDir(), "bash-link")
	if err := os.Symlink(c.binary, link); err != nil {
		t.Fatal(err)
	}
	if !runs(pid, link) {
		t.Errorf("runs(%d, %s) = false for a symlink to the binary", pid, link)
	}
	// A pid file naming a process that runs another binary is ignored.
	other := c
	other.binary = "/nonexistent/bin"
	if got := readPid(p, other); got != 0 {
		t.Errorf("readPid for another binary = %d, want 0", got)
	}
	log, err := os.ReadFile(logFile(p, c.name))
	if err != nil || !strings.Contains(string(log), "weft-cluster starts: "+c.binary) {
		t.Errorf("log header missing: %q %v", log, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := stop(ctx, p, c, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Error("process alive after stop")
	}
	if _, err := os.Stat(pidFile(p, c.name)); !os.IsNotExist(err) {
		t.Errorf("pid file left: %v", err)
	}
	// Idempotent.
	if err := stop(ctx, p, c, time.Second); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	p, err := resolvePaths(Config{CacheDir: t.TempDir(), BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p.cluster, 0o755); err != nil {
		t.Fatal(err)
	}
	sh, err := filepath.EvalSymlinks("/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	// Ignores SIGTERM; only SIGKILL ends it.
	c := component{name: "stubborn", binary: sh, args: []string{"-c", "trap '' TERM; while :; do sleep 0.1; done", p.cluster + "/x"}}
	pid, err := start(p, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	time.Sleep(200 * time.Millisecond) // let bash install the trap
	if err := stop(context.Background(), p, c, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Error("process alive after stop")
	}
}

func TestLockSerialises(t *testing.T) {
	p, err := resolvePaths(Config{CacheDir: t.TempDir(), BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := lock(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := lock(ctx, p); err == nil {
		t.Fatal("second lock succeeded while the first is held")
	}
	unlock()
	unlock2, err := lock(context.Background(), p)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestUnmountUnder(t *testing.T) {
	dir := t.TempDir()
	src, mnt := filepath.Join(dir, "src"), filepath.Join(dir, "cluster", "node", "m")
	for _, d := range []string{src, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "keep"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(src, mnt, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	if err := unmountUnder(filepath.Join(dir, "cluster")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "cluster")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "keep")); err != nil {
		t.Errorf("bind-mounted source lost its file: %v", err)
	}
}

func TestExeReplaced(t *testing.T) {
	p, err := resolvePaths(Config{CacheDir: t.TempDir(), BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p.cluster, 0o755); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile("/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(p.bin, "fake-node")
	if err := os.WriteFile(bin, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	c := component{name: "fake-node", binary: bin, args: []string{"-c", "while :; do sleep 1; done", p.cluster + "/x"}}
	pid, err := start(p, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if exeReplaced(pid) {
		t.Error("fresh process reported as replaced")
	}
	// What a rebuild does: a new file under the same name.
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, orig, 0o755); err != nil {
		t.Fatal(err)
	}
	if !exeReplaced(pid) {
		t.Error("process of a replaced binary not reported")
	}
	if got := readPid(p, c); got != pid {
		t.Errorf("readPid = %d, want %d: a replaced binary still identifies the process", got, pid)
	}
}
