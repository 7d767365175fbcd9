// Package svcproxy is the local cluster's service proxy: kube-proxy's iptables mode,
// simplified. It keeps nat-table chains in sync with Services and EndpointSlices so that
// connections to a ClusterIP:port are DNATed to a random ready endpoint, rejects connections to
// Services without endpoints, and DNATs the cluster DNS address to the node's DNS server.
package svcproxy

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Config configures a Proxier.
type Config struct {
	// Client reads Services and EndpointSlices. Required.
	Client kubernetes.Interface
	// ServiceCIDR is the ClusterIP range (198.19.0.0/16); only traffic to it enters our chains. Required.
	ServiceCIDR netip.Prefix
	// PodCIDR is the pod range (198.18.0.0/20). Required.
	PodCIDR netip.Prefix
	// ClusterDNS is the DNS Service address (198.19.0.10); port 53 udp/tcp is DNATed to
	// DNSTarget. Required, inside ServiceCIDR.
	ClusterDNS netip.Addr
	// DNSTarget is where cluster DNS is served (198.18.0.1:53). Required.
	DNSTarget netip.AddrPort

	// ChainPrefix names our chains (<prefix>-SERVICES, <prefix>-SVC-<hash>, ...); "" means
	// "WEFT". Tests use a unique one. At most 11 characters of [A-Z0-9].
	ChainPrefix string
	// NetNS is the named network namespace (as in `ip netns`) whose iptables are programmed;
	// "" means the agent's own namespace.
	NetNS string
	// MasqueradeAll masquerades every pod-to-Service connection. false masquerades only
	// hairpin connections (a pod reaching itself) and relies on br_netfilter for the rest —
	// unless net.bridge.bridge-nf-call-iptables is off, in which case it behaves as true.
	MasqueradeAll bool
	// MinSyncInterval is the least time between two syncs, batching bursts of changes; 0 means
	// 100ms.
	MinSyncInterval time.Duration
	// ResyncInterval re-applies all rules and re-checks the jumps from built-in chains even
	// without changes, repairing rules others removed; 0 means 30s.
	ResyncInterval time.Duration
	// Logger receives the proxier's log as is; nil means slog.Default() with component=svcproxy.
	Logger *slog.Logger
}

var prefixRE = regexp.MustCompile(`^[A-Z][A-Z0-9]*$`)

// Proxier programs iptables for Services.
type Proxier struct {
	cfg     Config
	chains  chains
	ipt     runner
	log     *slog.Logger
	factory informers.SharedInformerFactory
	svcs    cache.SharedIndexInformer
	slices  cache.SharedIndexInformer
	trigger chan struct{}

	// syncMu serialises sync and Cleanup and guards the fields below it.
	syncMu      sync.Mutex
	ownedNat    []string            // our nat chains after the last restore
	lastPayload []byte              // the last restore applied
	lastUDP     map[string]udpState // per UDP service port, for conntrack cleanup
	lastSkipped map[string]bool     // skip reasons already logged
	needJumps   bool                // re-check jumps after the next restore
	masqAll     bool                // effective MasqueradeAll
	masqChecked bool                // masqAll was decided at least once

	mu      sync.Mutex
	applied []byte // lastPayload, for tests and debugging

	restores atomic.Int64 // iptables-restore runs of sync, for tests
}

type udpState struct {
	clusterIP netip.Addr
	endpoints []netip.AddrPort
}

// New validates cfg and returns a Proxier; it changes nothing until Run or Cleanup.
func New(cfg Config) (*Proxier, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("svcproxy: Client is required")
	case !cfg.ServiceCIDR.IsValid() || !cfg.ServiceCIDR.Addr().Is4():
		return nil, fmt.Errorf("svcproxy: ServiceCIDR %v must be an IPv4 prefix", cfg.ServiceCIDR)
	case !cfg.PodCIDR.IsValid() || !cfg.PodCIDR.Addr().Is4():
		return nil, fmt.Errorf("svcproxy: PodCIDR %v must be an IPv4 prefix", cfg.PodCIDR)
	case !cfg.ServiceCIDR.Contains(cfg.ClusterDNS):
		return nil, fmt.Errorf("svcproxy: ClusterDNS %v must be inside ServiceCIDR %v", cfg.ClusterDNS, cfg.ServiceCIDR)
	case !cfg.DNSTarget.IsValid() || !cfg.DNSTarget.Addr().Is4() || cfg.DNSTarget.Port() == 0:
		return nil, fmt.Errorf("svcproxy: DNSTarget %v must be an IPv4 address and port", cfg.DNSTarget)
	}
	cfg.ServiceCIDR, cfg.PodCIDR = cfg.ServiceCIDR.Masked(), cfg.PodCIDR.Masked()
	cfg.ChainPrefix = cmp.Or(cfg.ChainPrefix, "WEFT")
	if len(cfg.ChainPrefix) > maxPrefixLen || !prefixRE.MatchString(cfg.ChainPrefix) {
		return nil, fmt.Errorf("svcproxy: ChainPrefix %q must be 1-%d characters of A-Z and 0-9, starting with a letter", cfg.ChainPrefix, maxPrefixLen)
	}
	cfg.MinSyncInterval = cmp.Or(cfg.MinSyncInterval, 100*time.Millisecond)
	cfg.ResyncInterval = cmp.Or(cfg.ResyncInterval, 30*time.Second)
	log := cfg.Logger
	if log == nil {
		log = slog.Default().With("component", "svcproxy")
	}
	factory := informers.NewSharedInformerFactory(cfg.Client, 0)
	return &Proxier{
		cfg:         cfg,
		chains:      chains{prefix: cfg.ChainPrefix},
		ipt:         runner{netns: cfg.NetNS},
		log:         log,
		factory:     factory,
		svcs:        factory.Core().V1().Services().Informer(),
		slices:      factory.Discovery().V1().EndpointSlices().Informer(),
		trigger:     make(chan struct{}, 1),
		lastSkipped: map[string]bool{},
	}, nil
}

// Run removes leftovers (Cleanup), then keeps iptables in sync with Services and
// EndpointSlices until ctx is done. It leaves the rules in place when it returns: call Cleanup
// to remove them. A failed sync is logged and retried; Run returns an error only when it cannot
// start.
func (p *Proxier) Run(ctx context.Context) error {
	if err := p.Cleanup(); err != nil {
		return err
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.requestSync() },
		UpdateFunc: func(any, any) { p.requestSync() },
		DeleteFunc: func(any) { p.requestSync() },
	}
	for _, inf := range []cache.SharedIndexInformer{p.svcs, p.slices} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("svcproxy: add event handler: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); p.factory.Shutdown() }()
	p.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), p.svcs.HasSynced, p.slices.HasSynced) {
		return nil // ctx done
	}
	p.syncMu.Lock()
	p.needJumps = true
	p.syncMu.Unlock()
	p.checkMasquerade(ctx)
	p.requestSync()
	resync := time.NewTicker(p.cfg.ResyncInterval)
	defer resync.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.trigger:
		case <-resync.C:
			p.checkMasquerade(ctx)
			p.syncMu.Lock()
			p.needJumps, p.lastPayload = true, nil
			p.syncMu.Unlock()
		}
		// Rate limit: changes arriving meanwhile coalesce into the pending trigger.
		if wait := time.Until(last.Add(p.cfg.MinSyncInterval)); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		last = time.Now()
		if err := p.sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Error("sync service rules; retrying", "err", err)
			p.syncMu.Lock()
			p.needJumps, p.lastPayload = true, nil
			p.syncMu.Unlock()
			time.AfterFunc(time.Second, p.requestSync)
		}
	}
}

func (p *Proxier) requestSync() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// checkMasquerade decides whether all pod-to-Service traffic is masqueraded: when configured,
// or when bridged traffic does not traverse iptables (then replies between pods on the bridge
// would bypass the conntrack entry that un-DNATs them).
func (p *Proxier) checkMasquerade(ctx context.Context) {
	masq := p.cfg.MasqueradeAll
	if !masq {
		const sysctl = "/proc/sys/net/bridge/bridge-nf-call-iptables" // absent without br_netfilter
		var out []byte
		var err error
		if p.cfg.NetNS == "" {
			out, err = os.ReadFile(sysctl)
		} else {
			out, err = p.ipt.run(ctx, nil, "cat", sysctl)
		}
		if err != nil || strings.TrimSpace(string(out)) != "1" {
			masq = true
		}
	}
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	if masq != p.masqAll || !p.masqChecked {
		p.log.Info("masquerade mode", "all_pod_to_service", masq, "configured", p.cfg.MasqueradeAll)
	}
	p.masqAll, p.masqChecked = masq, true
}

// sync applies the rules for the current informer state if they changed.
func (p *Proxier) sync(ctx context.Context) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	sps := p.servicePorts()
	want := map[string]bool{}
	rs := p.render(sps, nil, p.masqAll)
	for _, ch := range rs.nat {
		want[ch] = true
	}
	var stale []string
	for _, ch := range p.ownedNat {
		if !want[ch] {
			stale = append(stale, ch)
		}
	}
	if len(stale) > 0 {
		rs = p.render(sps, stale, p.masqAll)
	}
	if !bytes.Equal(rs.payload, p.lastPayload) {
		start := time.Now()
		if err := p.ipt.restore(ctx, rs.payload); err != nil {
			return err
		}
		p.restores.Add(1)
		p.ownedNat, p.lastPayload = rs.nat, rs.payload
		p.log.Debug("service rules applied", "service_ports", len(sps), "removed_chains", len(stale),
			"bytes", len(rs.payload), "took", time.Since(start))
	}
	if p.needJumps {
		for _, j := range p.jumps() {
			if err := p.ipt.ensureJump(ctx, j); err != nil {
				return err
			}
		}
		p.needJumps = false
	}
	p.mu.Lock()
	p.applied = p.lastPayload
	p.mu.Unlock()
	p.flushUDPConntrack(ctx, sps)
	return nil
}

// servicePorts reads the informer caches.
func (p *Proxier) servicePorts() []servicePort {
	var svcs []*corev1.Service
	for _, obj := range p.svcs.GetStore().List() {
		if s, ok := obj.(*corev1.Service); ok {
			svcs = append(svcs, s)
		}
	}
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, obj := range p.slices.GetStore().List() {
		s, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || s.Labels[discoveryv1.LabelServiceName] == "" {
			continue
		}
		key := s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]
		bySvc[key] = append(bySvc[key], s)
	}
	sps, skipped := buildServicePorts(svcs, bySvc, p.cfg.ServiceCIDR, p.cfg.ClusterDNS)
	for _, why := range skipped {
		if !p.lastSkipped[why] {
			p.lastSkipped[why] = true
			p.log.Warn("service port not proxied", "reason", why)
		}
	}
	return sps
}

// flushUDPConntrack deletes conntrack entries that would keep UDP "connections" pinned to a
// removed endpoint, or to the REJECT state of a Service that now has endpoints (as kube-proxy
// does). TCP needs nothing: new connections follow the new rules.
func (p *Proxier) flushUDPConntrack(ctx context.Context, sps []servicePort) {
	now := map[string]udpState{}
	for _, sp := range sps {
		if sp.protocol != corev1.ProtocolUDP {
			continue
		}
		key := fmt.Sprintf("%s/%s:%d", sp.name, sp.clusterIP, sp.port)
		cur := udpState{sp.clusterIP, sp.endpoints}
		now[key] = cur
		old, had := p.lastUDP[key]
		if p.lastUDP == nil {
			continue
		}
		if (!had || len(old.endpoints) == 0) && len(cur.endpoints) > 0 {
			p.conntrackDelete(ctx, "--orig-dst", sp.clusterIP.String())
		}
		for _, ep := range old.endpoints {
			if !slices.Contains(cur.endpoints, ep) {
				p.conntrackDelete(ctx, "--orig-dst", sp.clusterIP.String(), "--dst-nat", ep.Addr().String())
			}
		}
	}
	p.lastUDP = now
}

func (p *Proxier) conntrackDelete(ctx context.Context, args ...string) {
	args = append([]string{"-D", "-p", "udp"}, args...)
	// conntrack exits 1 when nothing matched; that is not worth a log line.
	if _, err := p.ipt.run(ctx, nil, "conntrack", args...); err != nil && !strings.Contains(err.Error(), "0 flow entries") {
		p.log.Debug("conntrack cleanup", "err", err)
	}
}

// Cleanup removes every jump and chain this Proxier's prefix owns, in the nat and filter
// tables. Other chains, even ones sharing the prefix, are left alone. It is safe to call while
// Run runs, but Run then re-creates the rules on its next sync: stop Run first.
func (p *Proxier) Cleanup() error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*cmdTimeout)
	defer cancel()
	for _, j := range p.jumps() {
		p.ipt.deleteJump(ctx, j)
	}
	var payload bytes.Buffer
	for _, table := range []string{"nat", "filter"} {
		all, err := p.ipt.listChains(ctx, table)
		if err != nil {
			return fmt.Errorf("svcproxy: cleanup: %w", err)
		}
		var ours []string
		for _, ch := range all {
			if p.chains.owns(ch) {
				ours = append(ours, ch)
			}
		}
		if len(ours) == 0 {
			continue
		}
		fmt.Fprintf(&payload, "*%s\n", table)
		for _, ch := range ours {
			fmt.Fprintf(&payload, ":%s - [0:0]\n", ch)
		}
		for _, ch := range ours {
			fmt.Fprintf(&payload, "-X %s\n", ch)
		}
		payload.WriteString("COMMIT\n")
	}
	if payload.Len() > 0 {
		if err := p.ipt.restore(ctx, payload.Bytes()); err != nil {
			return fmt.Errorf("svcproxy: cleanup: %w", err)
		}
	}
	p.ownedNat, p.lastPayload, p.lastUDP = nil, nil, nil
	p.needJumps = true
	p.mu.Lock()
	p.applied = nil
	p.mu.Unlock()
	return nil
}

// appliedRules returns the last payload given to iptables-restore once the jumps to it are in
// place too (nil before the first complete sync).
func (p *Proxier) appliedRules() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}
