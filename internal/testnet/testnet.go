// Package testnet builds throw-away networks of network-namespace "hosts" for tests and
// benchmarks: one Linux bridge per Network, one netns plus veth per Host, addressed from a /24 of
// 198.18.64.0/18 (IPv4) and the matching fd00:198:18:<n>::/64 (IPv6). Allocation is safe across
// concurrent test processes (an flock plus a scan of the addresses in use), everything is removed
// when the test ends, and leftovers of dead processes are removed on the next use.
//
// Typical use (see example_test.go):
//
//	n := testnet.New(t)
//	client, server := n.AddHost(t, "client"), n.AddHost(t, "server")
//	ln, _ := server.Listen("tcp", netip.AddrPortFrom(server.IP(), 8080).String())
//	hc := &http.Client{Transport: &http.Transport{DialContext: client.DialContext}}
//	client.Command("weft-proxy", "init")  // programs run inside the namespace
//
// Names use the prefix "wt" followed by the owner's pid: wt<pid>b<n> (bridge), wt<pid>n<n>
// (netns), wt<pid>v<n> (host side of a veth).
package testnet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/vishvananda/netns"
)

// DefaultPool is where New allocates test networks.
var DefaultPool = netip.MustParsePrefix("198.18.64.0/18")

// lockPath serialises allocation between processes.
const lockPath = "/run/weft-testnet.lock"

// seq numbers every object this process creates, so names are unique within the process.
var seq atomic.Uint32

// Network is a bridge with an IPv4 /24 and an IPv6 /64; its gateway (.1 / ::1) is the bridge
// address in the root namespace.
type Network struct {
	bridge  string
	prefix  netip.Prefix // IPv4 /24
	prefix6 netip.Prefix // IPv6 /64

	mu     sync.Mutex
	next   int // last host octet handed out
	hosts  []*Host
	closed bool
}

// Host is a network namespace attached to a Network through a veth pair (eth0 inside), with lo up
// and a default route via the bridge.
type Host struct {
	name string
	ns   string // netns name under /run/netns
	veth string // host-side veth
	ip   netip.Addr
	ip6  netip.Addr
}

// New creates a bridge and allocates a unique /24 from 198.18.64.0/18 (safe across concurrent test
// processes), removed with t.Cleanup.
func New(t testing.TB) *Network {
	t.Helper()
	n, err := Create(DefaultPool)
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("testnet: %v", err)
		}
	})
	return n
}

// Create is New without testing: it allocates a free /24 from pool (an IPv4 prefix of length
// <= 24) and creates the bridge. The caller must Close it.
func Create(pool netip.Prefix) (*Network, error) {
	if !pool.Addr().Is4() || pool.Bits() > 24 {
		return nil, fmt.Errorf("testnet pool %s: want an IPv4 prefix of /24 or shorter", pool)
	}
	unlock, err := lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	removeStale()
	used, err := usedAddrs()
	if err != nil {
		return nil, err
	}
	prefix, err := freeSubnet(pool.Masked(), used)
	if err != nil {
		return nil, err
	}
	o := prefix.Addr().As4()
	n := &Network{
		bridge:  name('b'),
		prefix:  prefix,
		prefix6: netip.MustParsePrefix(fmt.Sprintf("fd00:198:%d:%d::/64", o[1], o[2])),
		next:    1,
	}
	gw, gw6 := n.Gateway(), n.Gateway6()
	err = ipCmds(
		[]string{"link", "add", n.bridge, "type", "bridge", "nf_call_iptables", "0", "nf_call_ip6tables", "0"},
		[]string{"addr", "add", netip.PrefixFrom(gw, 24).String(), "dev", n.bridge},
		[]string{"-6", "addr", "add", netip.PrefixFrom(gw6, 64).String(), "dev", n.bridge, "nodad"},
		[]string{"link", "set", n.bridge, "up"},
	)
	if err != nil {
		_ = ip("link", "del", n.bridge)
		return nil, fmt.Errorf("create bridge %s: %w", n.bridge, err)
	}
	return n, nil
}

// Prefix is the network's IPv4 /24.
func (n *Network) Prefix() netip.Prefix { return n.prefix }

// Prefix6 is the network's IPv6 /64.
func (n *Network) Prefix6() netip.Prefix { return n.prefix6 }

// Gateway is the bridge's IPv4 address (x.y.z.1) in the root namespace.
func (n *Network) Gateway() netip.Addr { return n.prefix.Addr().Next() }

// Gateway6 is the bridge's IPv6 address (prefix::1) in the root namespace.
func (n *Network) Gateway6() netip.Addr { return n.prefix6.Addr().Next() }

// Bridge is the bridge device's name.
func (n *Network) Bridge() string { return n.bridge }

// AddHost creates a host (netns + veth on the bridge + address, lo up), removed with t.Cleanup
// (before the Network). name is informational.
func (n *Network) AddHost(t testing.TB, name string) *Host {
	t.Helper()
	h, err := n.NewHost(name)
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("testnet: %v", err)
		}
	})
	return h
}

// NewHost is AddHost without testing; the host is also removed by Network.Close.
func (n *Network) NewHost(label string) (*Host, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, errors.New("testnet: network closed")
	}
	n.next++
	if n.next > 254 {
		n.mu.Unlock()
		return nil, fmt.Errorf("testnet: network %s is full", n.prefix)
	}
	k := seq.Add(1)
	id := fmt.Sprintf("wt%d", os.Getpid())
	h := &Host{
		name: label,
		ns:   fmt.Sprintf("%sn%d", id, k),
		veth: fmt.Sprintf("%sv%d", id, k),
		ip:   addrAt(n.prefix, n.next),
		ip6:  addrAt(n.prefix6, n.next),
	}
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()

	err := ipCmds(
		[]string{"netns", "add", h.ns},
		[]string{"link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns},
		[]string{"link", "set", h.veth, "master", n.bridge, "up"},
		[]string{"-n", h.ns, "link", "set", "lo", "up"},
		[]string{"-n", h.ns, "addr", "add", netip.PrefixFrom(h.ip, 24).String(), "dev", "eth0"},
		[]string{"-n", h.ns, "-6", "addr", "add", netip.PrefixFrom(h.ip6, 64).String(), "dev", "eth0", "nodad"},
		[]string{"-n", h.ns, "link", "set", "eth0", "up"},
		[]string{"-n", h.ns, "route", "add", "default", "via", n.Gateway().String()},
		[]string{"-n", h.ns, "-6", "route", "add", "default", "via", n.Gateway6().String()},
	)
	if err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("add host %q (%s): %w", label, h.ns, err)
	}
	return h, nil
}

// Close removes every host and the bridge. It is safe to call twice.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	hosts := n.hosts
	n.mu.Unlock()
	var errs []error
	for _, h := range hosts {
		errs = append(errs, h.Close())
	}
	if linkExists(n.bridge) {
		if err := ip("link", "del", n.bridge); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w", n.bridge, err))
		}
	}
	return errors.Join(errs...)
}

// Name is the label given to AddHost.
func (h *Host) Name() string { return h.name }

// IP is the host's IPv4 address.
func (h *Host) IP() netip.Addr { return h.ip }

// IP6 is the host's IPv6 address.
func (h *Host) IP6() netip.Addr { return h.ip6 }

// NetnsPath is the bind-mounted namespace file, usable with setns, nsenter --net= and
// `weft-proxy init --netns`.
func (h *Host) NetnsPath() string { return filepath.Join("/run/netns", h.ns) }

// NetnsName is the name `ip netns` knows the namespace by.
func (h *Host) NetnsName() string { return h.ns }

// Do runs fn on a locked OS thread inside the netns (sockets created there stay there).
func (h *Host) Do(fn func() error) error {
	target, err := netns.GetFromPath(h.NetnsPath())
	if err != nil {
		return fmt.Errorf("open netns %s: %w", h.ns, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	// A fresh goroutine whose thread is discarded if it cannot be switched back.
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get current netns: %w", err)
			return // thread stays locked and is destroyed with the goroutine
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", h.ns, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave netns %s: %w", h.ns, err))
			return // keep the thread locked: it is in the wrong namespace
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Command runs a program inside the netns (through nsenter, which execs it: the process's pid is
// the program's).
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + h.NetnsPath(), "--", name}, args...)...)
}

// Close removes the host's netns and veth. It is safe to call twice.
func (h *Host) Close() error {
	var errs []error
	if linkExists(h.veth) {
		if err := ip("link", "del", h.veth); err != nil {
			errs = append(errs, fmt.Errorf("delete veth %s: %w", h.veth, err))
		}
	}
	if _, err := os.Stat(h.NetnsPath()); err == nil {
		if err := ip("netns", "del", h.ns); err != nil {
			errs = append(errs, fmt.Errorf("delete netns %s: %w", h.ns, err))
		}
	}
	return errors.Join(errs...)
}

func name(kind byte) string {
	return fmt.Sprintf("wt%d%c%d", os.Getpid(), kind, seq.Add(1))
}

// addrAt returns the i-th address of p.
func addrAt(p netip.Prefix, i int) netip.Addr {
	a := p.Addr()
	for ; i > 0; i-- {
		a = a.Next()
	}
	return a
}

// lock takes the cross-process allocation lock.
func lock() (func(), error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", lockPath, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	return func() { f.Close() }, nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func ipCmds(cmds ...[]string) error {
	for _, c := range cmds {
		if err := ip(c...); err != nil {
			return err
		}
	}
	return nil
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}
