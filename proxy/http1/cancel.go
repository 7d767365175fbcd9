package http1

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Cancellation: an HTTP/1 server learns that its client went away only by
// seeing its connection closed. While a request is in flight (from the
// handler's start until fasthttp goes back to reading the next request, so
// a streamed response body is covered too) the client connection's socket
// is watched for the peer's FIN or RST with one process-wide epoll instance
// (EPOLLRDHUP, edge, one-shot, registered once per connection: no syscall
// and no goroutine per request, and no byte of the connection is consumed,
// so streamed request bodies are untouched). When it fires, the upstream
// connection bound to the request is closed (never pooled again): the
// upstream sees the cancellation, fasthttp's Do returns, and the exchange
// is recorded as proxyerr.Canceled.

// errCanceled is the cause recorded when the client went away.
var errCanceled = errors.New("client closed the connection")

// watch is the cancellation state of one client connection; it lives in
// the conn and is reused by its sequential requests.
type watch struct {
	raw  syscall.RawConn // nil: the connection has no socket to watch
	slot uint32
	gen  uint32

	mu       sync.Mutex
	active   bool          // a request is in flight
	closed   bool          // the peer closed (FIN or RST seen)
	canceled bool          // closed while active
	up       *upConn       // the upstream connection of the current request; nil before it is known
	held     bool          // this request's goroutine holds its pool's bind lock (owner goroutine only)
	ch       chan struct{} // closed when the client leaves during the request; made on demand by done
	proxy    *watcher      // nil when not registered
}

// begin marks a request in flight; it reports false when the client is
// already gone.
func (w *watch) begin() bool {
	w.mu.Lock()
	w.active = true
	w.canceled = w.closed
	w.up = nil
	w.ch = nil
	ok := !w.canceled
	w.mu.Unlock()
	return ok
}

// end marks the request (and its response) done.
func (w *watch) end() {
	w.mu.Lock()
	w.active = false
	w.up = nil
	w.mu.Unlock()
}

// done returns a channel closed when the client leaves during the current
// request (made on first use: only a retry's back-off waits on it).
func (w *watch) done() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
		if w.canceled {
			close(w.ch)
		}
	}
	return w.ch
}

// isCanceled reports whether the client left during the current request.
func (w *watch) isCanceled() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.canceled
}

// bind records u as the current request's upstream connection; u is
// aborted at once when the client already left.
func (w *watch) bind(u *upConn) {
	u.mu.Lock()
	u.owner = w
	u.mu.Unlock()
	w.mu.Lock()
	w.up = u
	canceled := w.canceled
	w.mu.Unlock()
	if canceled {
		u.abort(w)
	}
}

// peerClosed runs on the watcher goroutine when the client's FIN or RST
// arrived.
func (w *watch) peerClosed() {
	w.mu.Lock()
	w.closed = true
	var u *upConn
	if w.active {
		w.canceled = true
		u = w.up
		if w.ch != nil {
			close(w.ch)
			w.ch = nil
		}
	}
	w.mu.Unlock()
	if u != nil {
		u.abort(w)
	}
}

// watcher owns the epoll instance and the goroutine blocked in epoll_wait.
type watcher struct {
	once sync.Once
	epfd int
	err  error

	mu    sync.Mutex
	slots []*watch
	gens  []uint32
	free  []uint32
}

// clientWatcher is shared by every Proxy of the process: one goroutine (and
// the OS thread blocked in epoll_wait) in all.
var clientWatcher watcher

func (wr *watcher) start() error {
	wr.once.Do(func() {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			wr.err = err
			return
		}
		wr.epfd = fd
		go wr.loop()
	})
	return wr.err
}

func (wr *watcher) loop() {
	var evs [128]unix.EpollEvent
	for {
		n, err := unix.EpollWait(wr.epfd, evs[:], -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			slog.Error("http1 cancellation watcher stopped", "err", err)
			return
		}
		for i := range evs[:n] {
			slot, gen := uint32(evs[i].Fd), uint32(evs[i].Pad)
			wr.mu.Lock()
			var w *watch
			if int(slot) < len(wr.slots) && wr.gens[slot] == gen {
				w = wr.slots[slot]
			}
			wr.mu.Unlock()
			if w != nil {
				w.peerClosed()
			}
		}
	}
}

// add registers the socket under c with the watcher; a connection without
// a socket (net.Pipe in tests) is simply not watched.
func (wr *watcher) add(w *watch, c net.Conn) {
	raw := socketOf(c)
	if raw == nil || wr.start() != nil {
		return
	}
	wr.mu.Lock()
	var slot uint32
	if n := len(wr.free); n > 0 {
		slot = wr.free[n-1]
		wr.free = wr.free[:n-1]
	} else {
		slot = uint32(len(wr.slots))
		wr.slots = append(wr.slots, nil)
		wr.gens = append(wr.gens, 0)
	}
	wr.gens[slot]++
	wr.slots[slot] = w
	w.slot, w.gen, w.raw, w.proxy = slot, wr.gens[slot], raw, wr
	wr.mu.Unlock()
	var cerr error
	err := raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLET | unix.EPOLLONESHOT,
			Fd: int32(slot), Pad: int32(w.gen)}
		cerr = unix.EpollCtl(wr.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err != nil || cerr != nil {
		wr.remove(w)
	}
}

// remove forgets w. The kernel drops the registration when the socket is
// closed; an explicit delete is only done while the socket is still open
// (Control keeps the descriptor from being closed and reused meanwhile).
func (wr *watcher) remove(w *watch) {
	if w.proxy == nil {
		return
	}
	_ = w.raw.Control(func(fd uintptr) {
		_ = unix.EpollCtl(wr.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
	wr.mu.Lock()
	if wr.slots[w.slot] == w {
		wr.slots[w.slot] = nil
		wr.gens[w.slot]++
		wr.free = append(wr.free, w.slot)
	}
	wr.mu.Unlock()
	w.proxy, w.raw = nil, nil
}

// socketOf unwraps c (detect.Conn, the mTLS server conn, counting
// wrappers) down to its socket.
func socketOf(c net.Conn) syscall.RawConn {
	for range 8 {
		switch x := c.(type) {
		case *net.TCPConn:
			rc, err := x.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		case interface{ Unwrap() net.Conn }:
			c = x.Unwrap()
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}
