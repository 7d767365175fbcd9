//go:build e2e

package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/weftmesh/weft/e2e/cluster"
)

var (
	// kube is the admin client of the local cluster.
	kube kubernetes.Interface
	// restConfig is the admin REST config of the local cluster.
	restConfig *rest.Config
	// podsDir holds the node agent's per-pod directories (container logs).
	podsDir string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	c, err := cluster.Ensure(ctx, cluster.Config{})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: local cluster: %v\n(logs under %s)\n", err, filepath.Join(cacheDir(), "cluster", "logs"))
		return 1
	}
	if c.Started() && os.Getenv("WEFT_E2E_KEEP_CLUSTER") == "" {
		// The suite tears down what it created; a cluster that was already running stays.
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := cluster.Down(ctx, cluster.Config{}); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: stop local cluster: %v\n", err)
			}
		}()
	}
	restConfig = c.RESTConfig()
	if kube, err = kubernetes.NewForConfig(restConfig); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: kubernetes client: %v\n", err)
		return 1
	}
	podsDir = filepath.Join(cacheDir(), "cluster", "node", "pods")
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	if err := removeStale(sctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
	}
	scancel()
	return m.Run()
}

// cacheDir resolves the cache root the way cluster.Config does: $WEFT_CACHE_DIR, else
// <repo>/.cache with the repository found by walking up to go.mod.
func cacheDir() string {
	if d := os.Getenv("WEFT_CACHE_DIR"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ".cache"
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil && filepath.Base(filepath.Dir(filepath.Join(d, "go.mod"))) != "kubebin" {
			return filepath.Join(d, ".cache")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, ".cache")
		}
	}
}
