package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/internal/mountinfo"
)

// Sandbox is a pod's network namespace, address, volumes and processes.
type Sandbox struct {
	rt       *Runtime
	pod      *corev1.Pod
	dir      string // <StateDir>/pods/<namespace>_<name>_<uid>
	hostNet  bool   // pod.Spec.HostNetwork: no netns of its own
	netns    string // netns name in /run/netns; "" with hostNetwork
	hostVeth string // host end of the veth pair; "" with hostNetwork

	mu        sync.Mutex
	ips       []netip.Addr
	volumes   map[string]*volume
	tokens    map[string]token // projected ServiceAccount tokens by "<volume>/<source index>"
	procs     map[*Process]struct{}
	destroyed bool
	stop      context.CancelFunc // stops the volume refresher
	refresher sync.WaitGroup
}

// sandboxState is persisted in the pod dir before anything is created on the host, so that a
// restarted node agent can remove what a crashed one left behind.
type sandboxState struct {
	UID      string `json:"uid"`
	Netns    string `json:"netns,omitempty"`
	HostVeth string `json:"hostVeth,omitempty"`
}

const stateFile = "sandbox.json"

// RefreshInterval is how often configMap, secret and downwardAPI volume contents are
// re-read (kubelet syncs about once a minute); ServiceAccount tokens are refreshed when due.
var RefreshInterval = time.Minute

func (r *Runtime) newSandbox(pod *corev1.Pod) *Sandbox {
	s := &Sandbox{
		rt:      r,
		pod:     pod.DeepCopy(),
		dir:     filepath.Join(r.podsDir(), fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		hostNet: pod.Spec.HostNetwork,
		volumes: map[string]*volume{},
		tokens:  map[string]token{},
		procs:   map[*Process]struct{}{},
	}
	if !s.hostNet {
		s.netns = r.cfg.NetnsPrefix + nameHash(pod.UID, 12)
		s.hostVeth = r.cfg.NetnsPrefix + nameHash(pod.UID, 15-len(r.cfg.NetnsPrefix))
	}
	return s
}

func (s *Sandbox) key() string { return s.pod.Namespace + "/" + s.pod.Name }

// Dir is the pod's state directory (volumes, generated /etc files, container logs).
func (s *Sandbox) Dir() string { return s.dir }

// LogPath is the log file of a container of this pod.
func (s *Sandbox) LogPath(container string) string {
	return filepath.Join(s.dir, container+".log")
}

// NetnsPath is the pod's network namespace file, or "" for a hostNetwork pod.
func (s *Sandbox) NetnsPath() string {
	if s.netns == "" {
		return ""
	}
	return filepath.Join(netnsDir, s.netns)
}

// PodIPs are the pod's addresses, IPv4 first. A hostNetwork pod reports the bridge gateway.
func (s *Sandbox) PodIPs() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]netip.Addr(nil), s.ips...)
}

// setup runs with s.mu held.
func (s *Sandbox) setup(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(s.dir, "etc"), 0o755); err != nil {
		return fmt.Errorf("create pod dir: %w", err)
	}
	st, _ := json.Marshal(sandboxState{UID: string(s.pod.UID), Netns: s.netns, HostVeth: s.hostVeth})
	if err := writeFileAtomic(filepath.Join(s.dir, stateFile), st, 0o644); err != nil {
		return err
	}
	if s.hostNet {
		s.ips = []netip.Addr{s.rt.gateway}
	} else {
		ip, ip6, err := s.rt.allocate(s.pod.UID)
		if err != nil {
			return err
		}
		if err := createNetns(s.netns); err != nil {
			return err
		}
		if err := s.rt.setupPodNetwork(s.netns, s.hostVeth, ip, ip6); err != nil {
			return err
		}
		s.ips = []netip.Addr{ip}
		if ip6.IsValid() {
			s.ips = append(s.ips, ip6)
		}
	}
	if err := s.writeEtcFiles(); err != nil {
		return err
	}
	if err := s.setupVolumes(ctx); err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop = cancel
	s.refresher.Add(1)
	go s.refreshLoop(rctx)
	return nil
}

// refreshLoop keeps payload volumes current: tokens when due, everything else every
// RefreshInterval. Files are swapped atomically.
func (s *Sandbox) refreshLoop(ctx context.Context) {
	defer s.refresher.Done()
	for {
		next := time.Now().Add(RefreshInterval)
		s.mu.Lock()
		for _, t := range s.tokens {
			if t.refreshAt.Before(next) {
				next = t.refreshAt
			}
		}
		s.mu.Unlock()
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		s.mu.Lock()
		names := make([]string, 0, len(s.volumes))
		for n, v := range s.volumes {
			if v.payload {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if err := s.refreshVolume(ctx, s.volumes[n], time.Now()); err != nil && ctx.Err() == nil {
				s.rt.log.Warn("refresh volume", "pod", s.key(), "err", err)
				// Retry failed token requests soon rather than at the next interval.
				for k, t := range s.tokens {
					if !time.Now().Before(t.refreshAt) {
						t.refreshAt = time.Now().Add(5 * time.Second)
						s.tokens[k] = t
					}
				}
			}
		}
		s.mu.Unlock()
	}
}

// Destroy kills every process of the pod, unmounts its volumes, deletes its netns and veth,
// releases its IP and removes its directory. It is idempotent.
func (s *Sandbox) Destroy(ctx context.Context) error {
	if s.stop != nil {
		s.stop()
	}
	s.refresher.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for p := range s.procs {
		p.killGroup()
	}
	if s.netns != "" {
		if _, err := killNetnsProcesses(s.NetnsPath()); err != nil {
			errs = append(errs, err)
		}
	}
	for p := range s.procs {
		select {
		case <-p.Done():
		case <-time.After(10 * time.Second):
			errs = append(errs, fmt.Errorf("process %d of pod %s did not exit", p.Pid(), s.key()))
		}
	}
	clear(s.procs)
	// Container logs outlive the sandbox, as kubelet keeps a finished pod's
	// logs; RemovePodFiles deletes them when the Pod object is gone.
	if err := s.rt.destroyState(s.dir, sandboxState{UID: string(s.pod.UID), Netns: s.netns, HostVeth: s.hostVeth}, true); err != nil {
		errs = append(errs, err)
	}
	s.destroyed = true
	s.rt.mu.Lock()
	if s.rt.sandboxes[s.pod.UID] == s {
		delete(s.rt.sandboxes, s.pod.UID)
	}
	s.rt.mu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("destroy sandbox %s: %w", s.key(), errors.Join(errs...))
	}
	return nil
}

// destroyState removes what a sandbox created on the host, given its persisted
// state; with keepLogs the container log files (*.log at the top of dir) stay.
func (r *Runtime) destroyState(dir string, st sandboxState, keepLogs bool) error {
	var errs []error
	if st.Netns != "" {
		if _, err := killNetnsProcesses(filepath.Join(netnsDir, st.Netns)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := mountinfo.UnmountUnder(dir); err != nil {
		errs = append(errs, err)
	}
	if st.HostVeth != "" {
		if err := deleteLink(st.HostVeth); err != nil {
			errs = append(errs, err)
		}
	}
	if st.Netns != "" {
		if err := deleteNetns(st.Netns); err != nil {
			errs = append(errs, err)
		}
	}
	if st.UID != "" {
		if err := r.releaseLocked(st.UID); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removePodDir(dir, keepLogs); err != nil {
		errs = append(errs, fmt.Errorf("remove pod dir: %w", err))
	}
	return errors.Join(errs...)
}

// removePodDir removes dir, or with keepLogs everything in it but the
// container log files (dir itself goes if nothing is left).
func removePodDir(dir string, keepLogs bool) error {
	if !keepLogs {
		return os.RemoveAll(dir)
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	kept := 0
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".log") {
			kept++
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	if kept == 0 {
		return os.Remove(dir)
	}
	return nil
}

// RemovePodFiles deletes what outlived a pod's sandbox (its container logs);
// the kubelet calls it when the Pod object is deleted.
func (r *Runtime) RemovePodFiles(pod *corev1.Pod) error {
	dir := filepath.Join(r.podsDir(), fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID))
	r.mu.Lock()
	_, live := r.sandboxes[pod.UID]
	r.mu.Unlock()
	if live {
		return fmt.Errorf("pod %s/%s still has a sandbox", pod.Namespace, pod.Name)
	}
	return os.RemoveAll(dir)
}

// removeLeftovers destroys every sandbox recorded under StateDir that this Runtime does not
// own (the remains of a crashed run), and veths on the bridge with our prefix. r.mu is held.
func (r *Runtime) removeLeftovers() error {
	ents, err := os.ReadDir(r.podsDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read pods dir: %w", err)
	}
	live := map[string]bool{}
	for _, s := range r.sandboxes {
		live[s.dir] = true
	}
	var errs []error
	for _, e := range ents {
		dir := filepath.Join(r.podsDir(), e.Name())
		if live[dir] {
			continue
		}
		var st sandboxState
		if b, err := os.ReadFile(filepath.Join(dir, stateFile)); err == nil {
			_ = json.Unmarshal(b, &st)
		}
		r.log.Info("removing leftover sandbox", "dir", dir, "netns", st.Netns)
		if err := r.destroyStateNoLock(dir, st); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range r.bridgeLinks() {
		name := l.Attrs().Name
		if len(name) > len(r.cfg.NetnsPrefix) && name[:len(r.cfg.NetnsPrefix)] == r.cfg.NetnsPrefix && !r.vethInUse(name) {
			if err := deleteLink(name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (r *Runtime) vethInUse(name string) bool {
	for _, s := range r.sandboxes {
		if s.hostVeth == name {
			return true
		}
	}
	return false
}

// releaseLocked releases an IP taking r.mu; destroyStateNoLock is used when r.mu is held.
func (r *Runtime) releaseLocked(uid string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ipam == nil {
		return nil
	}
	return r.ipam.release(uid)
}

func (r *Runtime) destroyStateNoLock(dir string, st sandboxState) error {
	uid := st.UID
	st.UID = ""
	err := r.destroyState(dir, st, false)
	if uid != "" && r.ipam != nil {
		err = errors.Join(err, r.ipam.release(uid))
	}
	return err
}
