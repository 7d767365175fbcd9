package app

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/config"
)

// harness is a proxy on loopback whose "original destination" is whatever
// the test sets: connections to the outbound listener behave as if the app
// had connected to dst and iptables had redirected them.
type harness struct {
	*App
	dst    atomic.Pointer[netip.AddrPort]
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t testing.TB, mutate func(*config.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, mutate, Options{})
}

// newHarnessWith is newHarness with options; while no destination is set
// (to), a connection's original destination is its local address, as for
// a connection that was not redirected (a peer proxy dialing the inbound
// port).
func newHarnessWith(t testing.TB, mutate func(*config.Config), opts Options) *harness {
	t.Helper()
	cfg := config.Default()
	cfg.InboundAddrs = []string{"127.0.0.1:0"}
	cfg.OutboundAddrs = []string{"127.0.0.1:0"}
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.DetectTimeout = 200 * time.Millisecond
	cfg.ShutdownGracePeriod = 5 * time.Second
	cfg.ShutdownQuiet = 100 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	h := &harness{done: make(chan error, 1)}
	level := slog.LevelWarn
	if os.Getenv("WEFT_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	opts.OrigDst = func(c net.Conn) (netip.AddrPort, error) {
		if d := h.dst.Load(); d != nil {
			return *d, nil
		}
		return c.LocalAddr().(*net.TCPAddr).AddrPort(), nil
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.App = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		h.cancel()
		select {
		case <-h.done:
		case <-time.After(15 * time.Second):
			t.Error("proxy did not stop")
		}
	})
	return h
}

// to sets the original destination of the next connections.
func (h *harness) to(addr string) {
	ap := netip.MustParseAddrPort(addr)
	h.dst.Store(&ap)
}

func (h *harness) outbound() string { return h.OutboundAddr().String() }

// stop cancels Run and returns its result.
func (h *harness) stop(t *testing.T) error {
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("proxy did not stop")
		return nil
	}
}

// rawExchange writes req on a fresh connection to addr and returns the
// response head (status line and fields) and the rest read until close or
// timeout.
func rawExchange(t *testing.T, addr, req string) (head string, rest string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var sb strings.Builder
	for {
		line, err := br.ReadString('\n')
		sb.WriteString(line)
		if err != nil || line == "\r\n" {
			break
		}
	}
	b, _ := io.ReadAll(br)
	return sb.String(), string(b)
}

// listen returns a loopback listener closed at cleanup.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// writeDiscovery writes a STATIC_DISCOVERY file and returns its path.
func writeDiscovery(t *testing.T, doc string) string {
	t.Helper()
	p := t.TempDir() + "/discovery.yaml"
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func netipMust(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
