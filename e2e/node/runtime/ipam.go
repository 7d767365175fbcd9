package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// ipam hands out IPv4 addresses of the pod CIDR, one per pod UID, and persists its state in a
// JSON file so a restarted node agent never hands out an address that is still in use.
// Addresses are allocated round-robin after the last one handed out, so a freed address is
// reused as late as possible (stale ARP and conntrack entries age out first).
// Not safe for concurrent use; the Runtime serialises calls.
type ipam struct {
	path   string
	prefix netip.Prefix
	state  ipamState
}

type ipamState struct {
	Last      netip.Addr            `json:"last"`      // last address handed out; zero before the first
	Allocated map[netip.Addr]string `json:"allocated"` // address -> pod UID
}

func newIPAM(path string, prefix netip.Prefix) (*ipam, error) {
	a := &ipam{path: path, prefix: prefix.Masked(), state: ipamState{Allocated: map[netip.Addr]string{}}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read ipam state: %w", err)
	default:
		if err := json.Unmarshal(b, &a.state); err != nil {
			return nil, fmt.Errorf("decode ipam state %s: %w", path, err)
		}
		if a.state.Allocated == nil {
			a.state.Allocated = map[netip.Addr]string{}
		}
	}
	return a, nil
}

// gateway is the first host address of the prefix.
func (a *ipam) gateway() netip.Addr { return a.prefix.Addr().Next() }

// broadcast is the last address of the prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	for i := 3; i >= 0 && host > 0; i-- {
		n := min(host, 8)
		b[i] |= byte(1<<n - 1)
		host -= n
	}
	return netip.AddrFrom4(b)
}

// allocate returns the address of uid, allocating one if it has none.
func (a *ipam) allocate(uid string) (netip.Addr, error) {
	for ip, owner := range a.state.Allocated {
		if owner == uid {
			return ip, nil
		}
	}
	first := a.gateway().Next()
	last := lastAddr(a.prefix).Prev()
	start := first
	if a.state.Last.IsValid() && a.prefix.Contains(a.state.Last) && a.state.Last.Next().Compare(last) <= 0 {
		start = a.state.Last.Next()
	}
	ip := start
	for {
		if _, used := a.state.Allocated[ip]; !used {
			a.state.Allocated[ip] = uid
			a.state.Last = ip
			if err := a.save(); err != nil {
				delete(a.state.Allocated, ip)
				return netip.Addr{}, err
			}
			return ip, nil
		}
		ip = ip.Next()
		if ip.Compare(last) > 0 {
			ip = first
		}
		if ip == start {
			return netip.Addr{}, fmt.Errorf("pod CIDR %s is exhausted (%d pods)", a.prefix, len(a.state.Allocated))
		}
	}
}

// release frees every address held by uid.
func (a *ipam) release(uid string) error {
	changed := false
	for ip, owner := range a.state.Allocated {
		if owner == uid {
			delete(a.state.Allocated, ip)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return a.save()
}

func (a *ipam) save() error {
	b, err := json.MarshalIndent(a.state, "", "  ")
	if err != nil {
		return fmt.Errorf("encode ipam state: %w", err)
	}
	return writeFileAtomic(a.path, b, 0o644)
}

// writeFileAtomic writes data to a temporary file next to path and renames it into place.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
