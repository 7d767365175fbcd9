package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Timeouts of the start-up phases; generous because the machine may be busy.
const (
	etcdTimeout      = 30 * time.Second
	apiserverTimeout = 120 * time.Second
	kcmTimeout       = 90 * time.Second
	nodeTimeout      = 90 * time.Second
	nodeGrace        = 60 * time.Second // the node agent cleans pods, netns and iptables on SIGTERM
	controlGrace     = 15 * time.Second
)

// Cluster is a running local cluster.
type Cluster struct {
	paths   paths
	rest    *rest.Config
	started bool
}

// KubeconfigPath is the admin kubeconfig (.cache/cluster/kubeconfig).
func (c *Cluster) KubeconfigPath() string { return c.paths.kubeconfig() }

// LogsDir holds <component>.log of etcd, kube-apiserver, kube-controller-manager and weft-node.
func (c *Cluster) LogsDir() string { return c.paths.logs }

// PodsDir holds the node agent's per-pod directories, with container logs at
// <namespace>_<pod>_<uid>/<container>.log.
func (c *Cluster) PodsDir() string { return filepath.Join(c.paths.node, "pods") }

// RESTConfig returns a copy of the admin client configuration (user weft-admin, group system:masters).
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Started reports whether Ensure started any process (false when it reused a running cluster);
// callers that want to leave the machine as they found it call Down only when it is true.
func (c *Cluster) Started() bool { return c.started }

// Ensure starts the local cluster (etcd, kube-apiserver, kube-controller-manager, node agent)
// or reuses a healthy running one, and returns when the apiserver is ready and the node is Ready.
// With cfg.NoNode it starts and waits for the control plane only.
func Ensure(ctx context.Context, cfg Config) (*Cluster, error) {
	p, err := resolvePaths(cfg)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	comps := components(p)
	if err := checkBinaries(comps, cfg.NoNode); err != nil {
		return nil, err
	}
	unlock, err := lock(ctx, p)
	if err != nil {
		return nil, err
	}
	defer unlock()

	c := &Cluster{paths: p}
	if c.controlPlaneHealthy(ctx, comps) {
		log.Info("reusing running control plane", "kubeconfig", p.kubeconfig())
	} else {
		if err := c.startControlPlane(ctx, log, comps); err != nil {
			return nil, err
		}
	}
	if cfg.NoNode {
		return c, nil
	}
	client, err := kubernetes.NewForConfig(c.rest)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	node := comps[3]
	if pid := readPid(p, node); pid != 0 && nodeReady(ctx, client) == nil {
		if !exeReplaced(pid) {
			log.Info("reusing running node agent", "pid", pid)
			return c, nil
		}
		log.Info("restarting node agent: its binary was rebuilt", "pid", pid, "binary", node.binary)
	}
	if err := stop(ctx, p, node, nodeGrace); err != nil {
		return nil, err
	}
	log.Info("starting node agent", "log", logFile(p, node.name))
	pid, err := start(p, node)
	if err != nil {
		return nil, err
	}
	c.started = true
	if err := waitFor(ctx, p, node.name, pid, nodeTimeout, "node "+NodeName+" Ready", func(ctx context.Context) error {
		return nodeReady(ctx, client)
	}); err != nil {
		return nil, err
	}
	log.Info("cluster ready", "kubeconfig", p.kubeconfig())
	return c, nil
}

func checkBinaries(comps []component, noNode bool) error {
	for _, c := range comps {
		if c.name == nodeComp && noNode {
			continue
		}
		if _, err := os.Stat(c.binary); err != nil {
			hint := map[string]string{
				etcdName:      "run make deps (Debian package etcd-server)",
				apiserverComp: "run make kube-bins",
				kcmComp:       "run make kube-bins",
				nodeComp:      "run make build",
			}[c.name]
			return fmt.Errorf("%s not found: %s", c.binary, hint)
		}
	}
	return nil
}

// controlPlaneHealthy reports whether etcd, apiserver and controller manager run from our pid
// files and answer their health checks; it also loads the admin REST config.
func (c *Cluster) controlPlaneHealthy(ctx context.Context, comps []component) bool {
	for _, comp := range comps[:3] {
		if readPid(c.paths, comp) == 0 {
			return false
		}
	}
	if !pkiComplete(c.paths.pki) {
		return false
	}
	rc, err := restConfig(c.paths.kubeconfig())
	if err != nil {
		return false
	}
	c.rest = rc
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return apiserverReady(ctx, rc) == nil && kcmHealthy(ctx, c.paths) == nil
}

// startControlPlane removes leftovers of a previous run and starts etcd, apiserver and
// controller manager from scratch (fresh etcd data; certificates are kept).
func (c *Cluster) startControlPlane(ctx context.Context, log *slog.Logger, comps []component) error {
	p := c.paths
	log.Info("starting local control plane", "state", p.cluster)
	if err := stopAll(ctx, p, comps); err != nil {
		return fmt.Errorf("remove leftovers: %w", err)
	}
	if err := os.RemoveAll(p.etcd); err != nil {
		return fmt.Errorf("remove old etcd data: %w", err)
	}
	if err := ensurePKI(p.pki); err != nil {
		return err
	}
	if err := writeKubeconfig(p.kubeconfig(), p.pki, AdminUser, adminName); err != nil {
		return err
	}
	if err := writeKubeconfig(p.kcmKubeconfig(), p.pki, "system:kube-controller-manager", kcmName); err != nil {
		return err
	}
	rc, err := restConfig(p.kubeconfig())
	if err != nil {
		return err
	}
	c.rest = rc
	if err := portsFree(EtcdClientPort, EtcdPeerPort, APIServerPort, KCMPort); err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	steps := []struct {
		comp    component
		timeout time.Duration
		what    string
		check   func(context.Context) error
	}{
		{comps[0], etcdTimeout, "etcd /health", etcdHealthy},
		{comps[1], apiserverTimeout, "apiserver /readyz", func(ctx context.Context) error { return apiserverReady(ctx, rc) }},
		{comps[2], kcmTimeout, "ServiceAccount default/default (created by the controller manager)", func(ctx context.Context) error {
			if err := kcmHealthy(ctx, p); err != nil {
				return err
			}
			_, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
			return err
		}},
	}
	for _, s := range steps {
		log.Info("starting "+s.comp.name, "log", logFile(p, s.comp.name))
		pid, err := start(p, s.comp)
		if err != nil {
			return err
		}
		c.started = true
		if err := waitFor(ctx, p, s.comp.name, pid, s.timeout, s.what, s.check); err != nil {
			return err
		}
	}
	return nil
}

// waitFor polls check until it succeeds, the process exits, or timeout; errors name the log file.
func waitFor(ctx context.Context, p paths, name string, pid int, timeout time.Duration, what string, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		cancel()
		if last == nil {
			return nil
		}
		if !alive(pid) {
			return fmt.Errorf("%s exited while waiting for %s; log %s ends with:\n%s", name, what, logFile(p, name), logTail(p, name, 20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %s after %s (last error: %v); see %s", name, what, timeout, last, logFile(p, name))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stopAll stops the components in reverse start order (node agent first).
func stopAll(ctx context.Context, p paths, comps []component) error {
	var errs []error
	for i := len(comps) - 1; i >= 0; i-- {
		grace := controlGrace
		if comps[i].name == nodeComp {
			grace = nodeGrace
		}
		if err := stop(ctx, p, comps[i], grace); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func portsFree(ports ...int) error {
	for _, port := range ports {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("port %s is in use by a process weft-cluster did not start (see ss -ltnp): %w", addr, err)
		}
		l.Close()
	}
	return nil
}

// Down stops everything and removes all it created: the node agent first (SIGTERM, up to 60 s
// so it removes pods, network namespaces and iptables rules), then the controller manager,
// apiserver and etcd, and finally <cache>/cluster. The kube binaries in <cache>/kube stay.
// Down is idempotent and works after a crash.
func Down(ctx context.Context, cfg Config) error {
	p, err := resolvePaths(cfg)
	if err != nil {
		return err
	}
	unlock, err := lock(ctx, p)
	if err != nil {
		return err
	}
	defer unlock()
	comps := components(p)
	if err := stopAll(ctx, p, comps); err != nil {
		return err
	}
	for _, c := range comps {
		if pids := strays(p, c); len(pids) > 0 {
			return fmt.Errorf("%s still running (pids %v); not removing %s", c.name, pids, p.cluster)
		}
	}
	if err := unmountUnder(p.cluster); err != nil {
		return err
	}
	if err := os.RemoveAll(p.cluster); err != nil {
		return fmt.Errorf("remove %s: %w", p.cluster, err)
	}
	return nil
}

func nodeReady(ctx context.Context, client kubernetes.Interface) error {
	n, err := client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("node %s not registered yet", NodeName)
	}
	if err != nil {
		return err
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s Ready=%s: %s", NodeName, cond.Status, cond.Message)
		}
	}
	return fmt.Errorf("node %s has no Ready condition", NodeName)
}
