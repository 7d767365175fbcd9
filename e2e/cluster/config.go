// Package cluster runs a local Kubernetes cluster on this machine: etcd, kube-apiserver,
// kube-controller-manager and the weft node agent (bin/weft-node), all as detached host
// processes whose state lives under <cache>/cluster. See docs/local-cluster.md.
package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// KubeVersion is the Kubernetes version of kube-apiserver and kube-controller-manager; it must
// match the k8s.io/kubernetes requirement in e2e/kubebin/go.mod (a unit test checks this).
const KubeVersion = "v1.36.3"

// Fixed cluster addresses (see docs/development.md, "Address plan").
const (
	ClusterName   = "weft-local" // kubeconfig cluster and context name
	AdminUser     = "weft-admin" // admin client certificate CN (group system:masters)
	NodeName      = "weft-node"  // the single Node
	Bridge        = "weft0"      // pod bridge created by the node agent
	PodCIDR       = "198.18.0.0/20"
	ServiceCIDR   = "198.19.0.0/16"
	AdvertiseAddr = "198.18.0.1" // bridge gateway; the kubernetes Service points here
	KubernetesSvc = "198.19.0.1" // ClusterIP of the kubernetes Service
	ClusterDNS    = "198.19.0.10"
	ClusterDomain = "cluster.local"
	Issuer        = "https://kubernetes.default.svc.cluster.local" // service-account token issuer

	EtcdClientPort = 2379
	EtcdPeerPort   = 2380
	APIServerPort  = 6443
	KCMPort        = 10257
)

// Config says where the cluster keeps its state and finds its binaries.
type Config struct {
	CacheDir string // root of cached state; "" means $WEFT_CACHE_DIR or <repo>/.cache
	BinDir   string // weft binaries (weft-node etc.); "" means $WEFT_BIN_DIR or <repo>/bin
	// NoNode starts only the control plane (etcd, apiserver, controller manager); false also
	// starts bin/weft-node and waits for the Node to be Ready.
	NoNode bool
	// Log receives progress messages; nil means slog.Default().
	Log *slog.Logger
}

// paths are the absolute file locations derived from a Config.
type paths struct {
	cache   string // <cache>
	cluster string // <cache>/cluster
	pki     string // <cache>/cluster/pki
	logs    string // <cache>/cluster/logs
	run     string // <cache>/cluster/run (pid files)
	etcd    string // <cache>/cluster/etcd (etcd data)
	node    string // <cache>/cluster/node (node agent state)
	kube    string // <cache>/kube/<KubeVersion> (kube binaries)
	bin     string // weft binaries
	lock    string // <cache>/cluster.lock (outside cluster/ so Down can remove that)
}

func (p paths) kubeconfig() string    { return filepath.Join(p.cluster, "kubeconfig") }
func (p paths) kcmKubeconfig() string { return filepath.Join(p.cluster, "kcm.kubeconfig") }

func resolvePaths(cfg Config) (paths, error) {
	cache := firstNonEmpty(cfg.CacheDir, os.Getenv("WEFT_CACHE_DIR"))
	bin := firstNonEmpty(cfg.BinDir, os.Getenv("WEFT_BIN_DIR"))
	if cache == "" || bin == "" {
		root, err := repoRoot()
		if err != nil {
			return paths{}, err
		}
		if cache == "" {
			cache = filepath.Join(root, ".cache")
		}
		if bin == "" {
			bin = filepath.Join(root, "bin")
		}
	}
	var err error
	if cache, err = filepath.Abs(cache); err != nil {
		return paths{}, fmt.Errorf("cache dir: %w", err)
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return paths{}, fmt.Errorf("bin dir: %w", err)
	}
	c := filepath.Join(cache, "cluster")
	return paths{
		cache:   cache,
		cluster: c,
		pki:     filepath.Join(c, "pki"),
		logs:    filepath.Join(c, "logs"),
		run:     filepath.Join(c, "run"),
		etcd:    filepath.Join(c, "etcd"),
		node:    filepath.Join(c, "node"),
		kube:    filepath.Join(cache, "kube", KubeVersion),
		bin:     bin,
		lock:    filepath.Join(cache, "cluster.lock"),
	}, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

const modulePath = "github.com/weftmesh/weft"

// repoRoot walks up from the working directory to the directory whose go.mod declares the weft module.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if isWeftModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found (no go.mod of " + modulePath + " above the working directory): set WEFT_CACHE_DIR and WEFT_BIN_DIR")
		}
		dir = parent
	}
}

func isWeftModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) == 2 && fields[0] == "module" {
			return fields[1] == modulePath
		}
	}
	return false
}
