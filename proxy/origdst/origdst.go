// Package origdst reads the destination a connection had before iptables
// REDIRECTed it to the proxy (SO_ORIGINAL_DST, IPv4 and IPv6).
package origdst

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (linux/netfilter_ipv4.h) and
// IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h): both 80.
const soOriginalDst = 80

// Func returns the original destination of an accepted connection. The
// proxy's listeners take one so tests without iptables can supply their own.
type Func func(net.Conn) (netip.AddrPort, error)

// Get returns the original destination of c, which must be a *net.TCPConn
// (or wrap one with a SyscallConn method) accepted from a REDIRECTed flow.
func Get(c net.Conn) (netip.AddrPort, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("original destination: %T has no file descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", err)
	}
	local, _ := c.LocalAddr().(*net.TCPAddr)
	v6 := local != nil && local.IP.To4() == nil
	var ap netip.AddrPort
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v6 {
			ap, serr = get6(int(fd))
		} else {
			ap, serr = get4(int(fd))
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", err)
	}
	return ap, nil
}

func get4(fd int) (netip.AddrPort, error) {
	// sockaddr_in fits the 16 bytes of an IPv6Mreq.
	m, err := unix.GetsockoptIPv6Mreq(fd, unix.SOL_IP, soOriginalDst)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("getsockopt SO_ORIGINAL_DST: %w", err)
	}
	b := m.Multiaddr
	port := binary.BigEndian.Uint16(b[2:4])
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port), nil
}

func get6(fd int) (netip.AddrPort, error) {
	// sockaddr_in6 is the Addr field of an IPv6MTUInfo.
	m, err := unix.GetsockoptIPv6MTUInfo(fd, unix.SOL_IPV6, soOriginalDst)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("getsockopt IP6T_SO_ORIGINAL_DST: %w", err)
	}
	a := m.Addr
	if a.Family != unix.AF_INET6 {
		return netip.AddrPort{}, errors.New("getsockopt IP6T_SO_ORIGINAL_DST: not an IPv6 address")
	}
	pb := (*[2]byte)(unsafePort(&a.Port))
	port := binary.BigEndian.Uint16(pb[:])
	return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), port), nil
}

// Local returns c's local address: what a connection that was not redirected
// was addressed to. Tests on loopback use it as the original destination.
func Local(c net.Conn) (netip.AddrPort, error) {
	ta, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("local address of %T is not TCP", c)
	}
	return ta.AddrPort(), nil
}
