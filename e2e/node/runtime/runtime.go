// Package runtime is the container runtime of the local cluster's node agent (weft-node).
// Containers are host processes: each pod gets a network namespace on a bridge, each
// container a private mount namespace with its volumes bind-mounted, its own credentials and
// capabilities; the root filesystem is the host's. See docs/local-cluster-runtime.md.
package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/internal/mountinfo"
)

// Config configures a Runtime.
type Config struct {
	StateDir      string               // per-pod directories, volumes, logs; required
	BinDir        string               // where image binaries live (see the image table in docs/development.md); required
	Bridge        string               // bridge name, e.g. "weft0"; required, at most 15 characters
	PodCIDR       netip.Prefix         // IPv4 pod range; the first host address is the bridge gateway; required
	ClusterDNS    netip.Addr           // nameserver written to each pod's /etc/resolv.conf; zero means the gateway
	ClusterDomain string               // "cluster.local"; "" means "cluster.local"
	Client        kubernetes.Interface // reads ConfigMaps/Secrets, requests ServiceAccount tokens; nil allows only emptyDir/hostPath/downwardAPI volumes

	// Additive fields (not in the original contract); their zero values keep the defaults.

	PodCIDRv6   netip.Prefix // IPv6 pod range (e.g. fd00:198:18::/64); zero means IPv4 only
	NetnsPrefix string       // prefix of netns (/run/netns) and host veth names; "" means "weft-"; at most 7 characters
	Logger      *slog.Logger // nil means slog.Default()
}

// Runtime creates and destroys pod sandboxes. It is safe for concurrent use.
type Runtime struct {
	cfg      Config
	log      *slog.Logger
	gateway  netip.Addr
	gateway6 netip.Addr

	mu        sync.Mutex
	ipam      *ipam
	sandboxes map[types.UID]*Sandbox
}

// New validates cfg; it touches nothing on the host (see Init).
func New(cfg Config) (*Runtime, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("runtime: StateDir is required")
	}
	if cfg.BinDir == "" {
		return nil, errors.New("runtime: BinDir is required")
	}
	if cfg.Bridge == "" || len(cfg.Bridge) > 15 {
		return nil, fmt.Errorf("runtime: bridge name %q must have 1 to 15 characters", cfg.Bridge)
	}
	if !cfg.PodCIDR.IsValid() || !cfg.PodCIDR.Addr().Is4() || cfg.PodCIDR.Bits() > 30 {
		return nil, fmt.Errorf("runtime: PodCIDR %s must be an IPv4 prefix of at most /30", cfg.PodCIDR)
	}
	if cfg.PodCIDRv6.IsValid() && (!cfg.PodCIDRv6.Addr().Is6() || cfg.PodCIDRv6.Bits() > 120) {
		return nil, fmt.Errorf("runtime: PodCIDRv6 %s must be an IPv6 prefix of at most /120", cfg.PodCIDRv6)
	}
	if cfg.NetnsPrefix == "" {
		cfg.NetnsPrefix = "weft-"
	}
	if len(cfg.NetnsPrefix) > 7 {
		return nil, fmt.Errorf("runtime: NetnsPrefix %q is longer than 7 characters", cfg.NetnsPrefix)
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	var err error
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("runtime: state dir: %w", err)
	}
	if cfg.BinDir, err = filepath.Abs(cfg.BinDir); err != nil {
		return nil, fmt.Errorf("runtime: bin dir: %w", err)
	}
	cfg.PodCIDR = cfg.PodCIDR.Masked()
	r := &Runtime{cfg: cfg, log: cfg.Logger, sandboxes: map[types.UID]*Sandbox{}}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.gateway = cfg.PodCIDR.Addr().Next()
	if cfg.PodCIDRv6.IsValid() {
		cfg.PodCIDRv6 = cfg.PodCIDRv6.Masked()
		r.cfg.PodCIDRv6 = cfg.PodCIDRv6
		r.gateway6 = cfg.PodCIDRv6.Addr().Next()
	}
	if !r.cfg.ClusterDNS.IsValid() {
		r.cfg.ClusterDNS = r.gateway
	}
	return r, nil
}

// Gateway is the bridge's IPv4 address (the first host address of PodCIDR).
func (r *Runtime) Gateway() netip.Addr { return r.gateway }

func (r *Runtime) podsDir() string { return filepath.Join(r.cfg.StateDir, "pods") }

// Init prepares the host: removes leftovers of a crashed previous run (processes, mounts,
// netns and veths recorded under StateDir), creates the bridge with the gateway address and
// enables ip_forward and bridge-nf-call-iptables.
func (r *Runtime) Init(ctx context.Context) error {
	if err := os.MkdirAll(r.podsDir(), 0o755); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a, err := newIPAM(filepath.Join(r.cfg.StateDir, "ipam.json"), r.cfg.PodCIDR)
	if err != nil {
		return err
	}
	r.ipam = a
	if err := r.removeLeftovers(); err != nil {
		return err
	}
	if err := shareNetnsDir(); err != nil {
		return err
	}
	if _, err := r.ensureBridge(); err != nil {
		return err
	}
	return r.enableSysctls()
}

// Shutdown destroys every sandbox (also leftovers of earlier runs), deletes the bridge and
// removes the runtime's state under StateDir (pods/, ipam.json; StateDir itself if empty).
func (r *Runtime) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	sbs := make([]*Sandbox, 0, len(r.sandboxes))
	for _, s := range r.sandboxes {
		sbs = append(sbs, s)
	}
	r.mu.Unlock()
	var errs []error
	for _, s := range sbs {
		if err := s.Destroy(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ipam == nil {
		if a, err := newIPAM(filepath.Join(r.cfg.StateDir, "ipam.json"), r.cfg.PodCIDR); err == nil {
			r.ipam = a
		}
	}
	if r.ipam != nil {
		if err := r.removeLeftovers(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := deleteLink(r.cfg.Bridge); err != nil {
		errs = append(errs, err)
	}
	if err := mountinfo.UnmountUnder(r.cfg.StateDir); err != nil {
		errs = append(errs, err)
	}
	// Only what the runtime created: the node agent may keep other files in StateDir.
	for _, p := range []string{r.podsDir(), filepath.Join(r.cfg.StateDir, "ipam.json")} {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	_ = os.Remove(r.cfg.StateDir) // only if empty
	return errors.Join(errs...)
}

// CreateSandbox creates (or returns the existing) sandbox of the pod: its directory, IP,
// network namespace and volumes. On failure nothing of the new sandbox is left behind.
func (r *Runtime) CreateSandbox(ctx context.Context, pod *corev1.Pod) (*Sandbox, error) {
	if pod.UID == "" {
		return nil, fmt.Errorf("pod %s/%s has no UID", pod.Namespace, pod.Name)
	}
	r.mu.Lock()
	if r.ipam == nil {
		r.mu.Unlock()
		return nil, errors.New("runtime: Init was not called")
	}
	if s, ok := r.sandboxes[pod.UID]; ok {
		r.mu.Unlock()
		s.mu.Lock() // wait for a concurrent setup to finish
		destroyed := s.destroyed
		s.mu.Unlock()
		if destroyed {
			return nil, fmt.Errorf("create sandbox for pod %s: sandbox was destroyed concurrently", s.key())
		}
		return s, nil
	}
	s := r.newSandbox(pod)
	r.sandboxes[pod.UID] = s
	s.mu.Lock() // concurrent callers for the same pod wait for the setup
	r.mu.Unlock()
	err := s.setup(ctx)
	if err != nil {
		s.destroyed = true // concurrent callers waiting on s.mu must not use it
	}
	s.mu.Unlock()
	if err != nil {
		if derr := s.Destroy(context.WithoutCancel(ctx)); derr != nil {
			r.log.Warn("clean up failed sandbox", "pod", s.key(), "err", derr)
		}
		return nil, fmt.Errorf("create sandbox for pod %s: %w", s.key(), err)
	}
	return s, nil
}

// nameHash is a stable hex digest of a pod UID used in netns and veth names.
func nameHash(uid types.UID, n int) string {
	sum := sha256.Sum256([]byte(uid))
	return hex.EncodeToString(sum[:])[:n]
}

// allocate hands out the pod's IPv4 address (and the IPv6 address with the same host offset).
func (r *Runtime) allocate(uid types.UID) (netip.Addr, netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ip, err := r.ipam.allocate(string(uid))
	if err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	var ip6 netip.Addr
	if r.cfg.PodCIDRv6.IsValid() {
		b := r.cfg.PodCIDRv6.Addr().As16()
		// Host offset inside PodCIDR, placed in the low 32 bits of the IPv6 prefix.
		o := be32(ip) - be32(r.cfg.PodCIDR.Addr())
		b[12], b[13], b[14], b[15] = byte(o>>24), byte(o>>16), byte(o>>8), byte(o)
		ip6 = netip.AddrFrom16(b)
	}
	return ip, ip6, nil
}

// bridgeLinks lists the links enslaved to the bridge (host veth ends).
func (r *Runtime) bridgeLinks() []netlink.Link {
	br, err := netlink.LinkByName(r.cfg.Bridge)
	if err != nil {
		return nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil
	}
	var out []netlink.Link
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l)
		}
	}
	return out
}

func be32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
