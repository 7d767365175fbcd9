// Package destination is weft's destination service: it tells proxies the
// endpoints behind an authority (Get) and the route profile that governs it
// (GetProfile), streaming every change.
package destination

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/weftmesh/weft/destination/watcher"
)

// target is a parsed GetDestination path.
type target struct {
	// Service and Port are set for service authorities.
	Service watcher.ServiceID
	Port    uint32
	// IP is set for ip:port lookups.
	IP netip.Addr
}

// parseTarget accepts <svc>.<ns>[.svc[.<domain>]]:<port> and <ip>:<port>.
func parseTarget(path, domain string) (target, error) {
	host, portStr, err := net.SplitHostPort(path)
	if err != nil {
		return target{}, fmt.Errorf("destination %q: want host:port: %w", path, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return target{}, fmt.Errorf("destination %q: invalid port %q", path, portStr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return target{IP: ip.Unmap(), Port: uint32(port)}, nil
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	host = strings.TrimSuffix(host, "."+domain)
	host = strings.TrimSuffix(host, ".svc")
	labels := strings.Split(host, ".")
	if len(labels) != 2 || labels[0] == "" || labels[1] == "" {
		return target{}, fmt.Errorf("destination %q: not a Service name of the form <service>.<namespace>.svc.%s", path, domain)
	}
	return target{Service: watcher.ServiceID{Namespace: labels[1], Name: labels[0]}, Port: uint32(port)}, nil
}

// fqdn is the name ServiceProfiles for a service carry.
func fqdn(id watcher.ServiceID, domain string) string {
	return id.Name + "." + id.Namespace + ".svc." + domain
}

func netipAddrPort(t target) netip.AddrPort { return netip.AddrPortFrom(t.IP, uint16(t.Port)) }
