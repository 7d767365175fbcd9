package testnet

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// usedAddrs lists every IPv4 address configured in the root namespace.
func usedAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// freeSubnet returns the first /24 of pool that contains none of used.
func freeSubnet(pool netip.Prefix, used []netip.Addr) (netip.Prefix, error) {
	for p := netip.PrefixFrom(pool.Addr(), 24); pool.Contains(p.Addr()); p = next24(p) {
		free := true
		for _, a := range used {
			if p.Contains(a) {
				free = false
				break
			}
		}
		if free {
			return p, nil
		}
		if p.Addr().As4()[2] == 255 {
			break
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /24 left in %s", pool)
}

func next24(p netip.Prefix) netip.Prefix {
	a := p.Addr().As4()
	a[2]++
	return netip.PrefixFrom(netip.AddrFrom4(a), 24)
}

// staleName matches names this package creates: wt<pid><kind><n>.
var staleName = regexp.MustCompile(`^wt([0-9]+)[bnv][0-9]+$`)

// ownerDead reports whether name is one of ours and its owner pid no longer runs.
func ownerDead(name string) bool {
	m := staleName.FindStringSubmatch(name)
	if m == nil {
		return false
	}
	pid, err := strconv.Atoi(m[1])
	if err != nil || pid == os.Getpid() {
		return false
	}
	_, err = os.Stat(filepath.Join("/proc", m[1]))
	return os.IsNotExist(err)
}

// removeStale deletes namespaces, veths and bridges left by processes that died.
func removeStale() {
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			if ownerDead(e.Name()) {
				_ = ip("netns", "del", e.Name())
			}
		}
	}
	if ents, err := os.ReadDir("/sys/class/net"); err == nil {
		for _, e := range ents {
			if ownerDead(e.Name()) {
				_ = ip("link", "del", e.Name())
			}
		}
	}
}
