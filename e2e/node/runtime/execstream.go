package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// TermSize is a terminal's size in characters.
type TermSize struct{ Width, Height uint16 }

// Streams are the standard streams of an interactive exec. Nil In means no stdin; with TTY,
// Err is unused (a terminal merges stdout and stderr) and Resize delivers size changes.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
	TTY      bool
	Resize   <-chan TermSize
}

// ExecStream runs cmdline the way Start runs a container (same namespaces, mounts, user,
// capabilities) with its standard streams connected to st, and waits for it. With st.TTY the
// command gets a pseudo-terminal as its controlling terminal. When ctx ends the command's
// process group is killed and ctx's error returned.
func (s *Sandbox) ExecStream(ctx context.Context, c ContainerSpec, cmdline []string, st Streams) (int, error) {
	if len(cmdline) == 0 {
		return -1, errors.New("exec: empty command")
	}
	s.mu.Lock()
	if s.destroyed {
		s.mu.Unlock()
		return -1, fmt.Errorf("pod %s: sandbox is destroyed", s.key())
	}
	cmd, statusR, err := s.launch(c, cmdline, nil)
	s.mu.Unlock()
	if err != nil {
		return -1, err
	}
	var copies sync.WaitGroup
	var term *os.File
	if st.TTY {
		ptm, pts, err := pty.Open()
		if err != nil {
			statusR.Close()
			cmd.ExtraFiles[0].Close()
			return -1, fmt.Errorf("exec: open pseudo-terminal: %w", err)
		}
		defer ptm.Close()
		term = ptm
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
		cmd.SysProcAttr.Setpgid = false
		cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 0
		err = startAndWaitExec(cmd, statusR)
		pts.Close()
		if err != nil {
			return -1, fmt.Errorf("exec in container %q: %w", c.Name, err)
		}
		copies.Add(1)
		go func() { defer copies.Done(); _, _ = io.Copy(st.Out, ptm) }()
		if st.In != nil {
			go func() { _, _ = io.Copy(ptm, st.In) }()
		}
		if st.Resize != nil {
			go func() {
				for sz := range st.Resize {
					_ = pty.Setsize(ptm, &pty.Winsize{Rows: sz.Height, Cols: sz.Width})
				}
			}()
		}
	} else {
		if st.In != nil {
			cmd.Stdin = st.In // exec copies it; Wait does not wait for that copy
		}
		cmd.Stdout, cmd.Stderr = orDiscard(st.Out), orDiscard(st.Err)
		cmd.WaitDelay = 2 * time.Second // a stdin the client keeps open must not hold Wait
		if err := startAndWaitExec(cmd, statusR); err != nil {
			return -1, fmt.Errorf("exec in container %q: %w", c.Name, err)
		}
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
		<-done
		return -1, fmt.Errorf("exec in container %q: %w", c.Name, ctx.Err())
	}
	_ = unix.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if term != nil {
		copies.Wait() // the terminal reports EIO once its last user is gone
	}
	return exitCode(cmd.ProcessState), nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
