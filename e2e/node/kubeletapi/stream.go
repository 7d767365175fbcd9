package kubeletapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/weftmesh/weft/e2e/node/kubelet"
)

// Streaming timeouts, kubelet's defaults.
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = 30 * time.Second
)

func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ref, ok := s.lookup(w, r)
	if !ok {
		return
	}
	cmd := r.URL.Query()["command"]
	remotecommand.ServeExec(w, r, executor{ref}, ref.Pod.Name, string(ref.Pod.UID), ref.Container, cmd, opts,
		streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// executor runs exec requests in one container.
type executor struct{ ref kubelet.ContainerRef }

func (e executor) ExecInContainer(ctx context.Context, _, _, _ string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	st := kubelet.Streams{In: in, TTY: tty}
	if out != nil {
		st.Out = out
	}
	if errw != nil {
		st.Err = errw
	}
	if resize != nil {
		ch := make(chan kubelet.TermSize)
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case sz, ok := <-resize:
					if !ok {
						return
					}
					select {
					case ch <- kubelet.TermSize{Width: sz.Width, Height: sz.Height}:
					case <-done:
						return
					}
				case <-done:
					return
				}
			}
		}()
		st.Resize = ch
	}
	code, err := e.ref.Exec(ctx, cmd, st)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
	}
	return nil
}

func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ref, ok := s.lookup(w, r)
	if !ok {
		return
	}
	remotecommand.ServeAttach(w, r, attacher{ref}, ref.Pod.Name, string(ref.Pod.UID), ref.Container, opts,
		streamIdleTimeout, streamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// attacher streams a running container's output from now on. weft's containers have no
// stdin of their own (their stdin is /dev/null), so input is read and discarded.
type attacher struct{ ref kubelet.ContainerRef }

func (a attacher) AttachContainer(ctx context.Context, _, _, _ string, in io.Reader, out, errw io.WriteCloser, _ bool, _ <-chan remotecommand.TerminalSize) error {
	if !a.ref.Running() {
		return fmt.Errorf("container %q is not running", a.ref.Container)
	}
	if in != nil {
		go func() { _, _ = io.Copy(io.Discard, in) }()
	}
	dst := out
	if dst == nil {
		dst = errw
	}
	if dst == nil {
		<-ctx.Done()
		return nil
	}
	return writeLog(ctx, dst, logSource{path: a.ref.LogPath, running: a.ref.Running},
		logOptions{follow: true, tailLines: 0})
}

func (s *Server) portForward(w http.ResponseWriter, r *http.Request) {
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ns, name := r.PathValue("ns"), r.PathValue("pod")
	var fw forwarder
	for _, p := range s.cfg.Node.Pods() {
		if p.Namespace == ns && p.Name == name && len(p.Spec.Containers) > 0 {
			ref, err := s.cfg.Node.Container(ns, name, p.Spec.Containers[0].Name)
			if err == nil {
				fw.ref = ref
			}
		}
	}
	if fw.ref.Pod == nil || !fw.ref.PodIP.IsValid() {
		http.Error(w, fmt.Sprintf("pod %s/%s: not running on this node", ns, name), http.StatusNotFound)
		return
	}
	if uid := r.PathValue("uid"); uid != "" && string(fw.ref.Pod.UID) != uid {
		http.Error(w, fmt.Sprintf("pod %s/%s has another uid than %s", ns, name, uid), http.StatusNotFound)
		return
	}
	portforward.ServePortForward(w, r, fw, name, string(fw.ref.Pod.UID), opts,
		streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

// forwarder connects port-forward streams to the pod's address. The connection enters the
// pod through its interface, as traffic from another pod would, so a meshed pod's inbound
// proxy sees (and counts) it.
type forwarder struct{ ref kubelet.ContainerRef }

func (f forwarder) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	var d net.Dialer
	addr := net.JoinHostPort(f.ref.PodIP.String(), strconv.Itoa(int(port)))
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("port-forward to %s: %w", addr, err)
	}
	defer conn.Close()
	errc := make(chan error, 2)
	go func() {
		_, err := io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		errc <- err
	}()
	go func() { _, err := io.Copy(stream, conn); errc <- err }()
	select {
	case err = <-errc:
		if err == nil {
			err = <-errc
		}
	case <-ctx.Done():
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}
