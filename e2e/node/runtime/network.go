package runtime

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named network namespaces live (as with `ip netns`).
const netnsDir = "/run/netns"

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ensureBridge creates the bridge (if missing) with the gateway addresses and brings it up.
func (r *Runtime) ensureBridge() (netlink.Link, error) {
	link, err := netlink.LinkByName(r.cfg.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return nil, fmt.Errorf("look up bridge %s: %w", r.cfg.Bridge, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: r.cfg.Bridge}}
		if err := netlink.LinkAdd(br); err != nil {
			return nil, fmt.Errorf("create bridge %s: %w", r.cfg.Bridge, err)
		}
		if link, err = netlink.LinkByName(r.cfg.Bridge); err != nil {
			return nil, fmt.Errorf("look up bridge %s: %w", r.cfg.Bridge, err)
		}
	} else if link.Type() != "bridge" {
		return nil, fmt.Errorf("link %s exists and is a %s, not a bridge", r.cfg.Bridge, link.Type())
	}
	gw := netip.PrefixFrom(r.gateway, r.cfg.PodCIDR.Bits())
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: prefixNet(gw)}); err != nil {
		return nil, fmt.Errorf("add %s to bridge %s: %w", gw, r.cfg.Bridge, err)
	}
	if r.cfg.PodCIDRv6.IsValid() {
		gw6 := netip.PrefixFrom(r.gateway6, r.cfg.PodCIDRv6.Bits())
		if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: prefixNet(gw6), Flags: unix.IFA_F_NODAD}); err != nil {
			return nil, fmt.Errorf("add %s to bridge %s: %w", gw6, r.cfg.Bridge, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bring bridge %s up: %w", r.cfg.Bridge, err)
	}
	return link, nil
}

// enableSysctls turns on forwarding and makes bridged IPv4 traffic traverse iptables (the
// service proxy's DNAT rules must see pod-to-pod traffic on the bridge).
func (r *Runtime) enableSysctls() error {
	const callIPT = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	if _, err := os.Stat(callIPT); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			return fmt.Errorf("modprobe br_netfilter: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	settings := []string{"/proc/sys/net/ipv4/ip_forward", callIPT}
	if r.cfg.PodCIDRv6.IsValid() {
		settings = append(settings, "/proc/sys/net/ipv6/conf/all/forwarding", "/proc/sys/net/bridge/bridge-nf-call-ip6tables")
	}
	for _, p := range settings {
		if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=1: %w", p, err)
		}
	}
	return nil
}

// shareNetnsDir makes /run/netns a shared mount, as `ip netns add` does, so that deleting a
// namespace file also unmounts it in mount namespaces created after it.
func shareNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", netnsDir, err)
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s shared: %w", netnsDir, err)
	}
	if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", netnsDir, err)
	}
	if err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", netnsDir, err)
	}
	return nil
}

// createNetns creates the named network namespace without moving any other goroutine: the
// work happens on a dedicated, locked OS thread that is thrown away if it cannot return to
// the host namespace.
func createNetns(name string) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get current netns: %w", err)
			return // thread stays locked and is discarded
		}
		defer orig.Close()
		ns, err := netns.NewNamed(name)
		if serr := netns.Set(orig); serr != nil {
			errc <- fmt.Errorf("return to host netns: %w", serr)
			return
		}
		goruntime.UnlockOSThread()
		if err != nil {
			errc <- fmt.Errorf("create netns %s: %w", name, err)
			return
		}
		ns.Close()
		errc <- nil
	}()
	return <-errc
}

// deleteNetns unmounts and removes a named network namespace; a missing one is not an error.
func deleteNetns(name string) error {
	p := filepath.Join(netnsDir, name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", name, err)
	}
	return nil
}

// setupPodNetwork creates the veth pair (host end on the bridge, pod end eth0 in the pod's
// netns), addresses eth0, and adds the default routes via the bridge gateway.
func (r *Runtime) setupPodNetwork(nsName, hostVeth string, ip, ip6 netip.Addr) error {
	br, err := netlink.LinkByName(r.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", r.cfg.Bridge, err)
	}
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsName, err)
	}
	defer ns.Close()
	if old, err := netlink.LinkByName(hostVeth); err == nil {
		_ = netlink.LinkDel(old)
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostVeth, MasterIndex: br.Attrs().Index, MTU: br.Attrs().MTU},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", hostVeth, err)
	}
	host, err := netlink.LinkByName(hostVeth)
	if err != nil {
		return fmt.Errorf("look up veth %s: %w", hostVeth, err)
	}
	// Hairpin mode lets a pod reach itself through its own Service: the DNATed
	// packet goes back out of the bridge port it came in on (kubelet's
	// hairpin-veth mode).
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("set hairpin mode on %s: %w", hostVeth, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("bring veth %s up: %w", hostVeth, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in netns %s: %w", nsName, err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("netns %s: look up lo: %w", nsName, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("netns %s: bring lo up: %w", nsName, err)
	}
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("netns %s: look up eth0: %w", nsName, err)
	}
	addr := netip.PrefixFrom(ip, r.cfg.PodCIDR.Bits())
	if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: prefixNet(addr)}); err != nil {
		return fmt.Errorf("netns %s: add %s to eth0: %w", nsName, addr, err)
	}
	if ip6.IsValid() {
		addr6 := netip.PrefixFrom(ip6, r.cfg.PodCIDRv6.Bits())
		if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: prefixNet(addr6), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("netns %s: add %s to eth0: %w", nsName, addr6, err)
		}
	}
	if err := h.LinkSetUp(eth0); err != nil {
		return fmt.Errorf("netns %s: bring eth0 up: %w", nsName, err)
	}
	if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: r.gateway.AsSlice()}); err != nil {
		return fmt.Errorf("netns %s: default route via %s: %w", nsName, r.gateway, err)
	}
	if ip6.IsValid() {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: r.gateway6.AsSlice()}); err != nil {
			return fmt.Errorf("netns %s: default route via %s: %w", nsName, r.gateway6, err)
		}
	}
	return nil
}

// deleteLink removes a link by name; a missing one is not an error.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up link %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// netnsInode identifies a network namespace file (device and inode of the nsfs object).
func netnsInode(path string) (dev, ino uint64, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Dev, st.Ino, nil
}

// killNetnsProcesses SIGKILLs every process whose network namespace is the given netns file
// and waits (bounded) until none is left. It returns how many processes it signalled.
func killNetnsProcesses(nsPath string) (int, error) {
	dev, ino, err := netnsInode(nsPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("stat netns %s: %w", nsPath, err)
	}
	killed := 0
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := pidsInNetns(dev, ino)
		if len(pids) == 0 {
			return killed, nil
		}
		for _, pid := range pids {
			if unix.Kill(pid, unix.SIGKILL) == nil {
				killed++
			}
		}
		if time.Now().After(deadline) {
			return killed, fmt.Errorf("processes %v in netns %s survive SIGKILL", pids, nsPath)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func pidsInNetns(dev, ino uint64) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range ents {
		pid := 0
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc", e.Name(), "ns/net"), &st) != nil {
			continue
		}
		if st.Dev == dev && st.Ino == ino && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}
