//go:build e2e

package tests

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// installWeftAndViz installs weft (CRDs, then the control plane into a fresh
// namespace named after what, e.g. "dash") and the viz extension pointing at
// it, as a user types it, waits for their Deployments and removes both when t
// ends. vizArgs are extra `weft viz install` flags. It returns the control
// plane's namespace.
func installWeftAndViz(t *testing.T, c *cli, what string, vizArgs ...string) string {
	t.Helper()
	removeStaleInstalls(t, c)
	cpNS := installFlowPrefix + what + "-" + randomSuffix(t)
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, "weft-viz")
		}
		if _, err := c.pipeCtx(context.Background(), t, []string{"weft", "viz", "uninstall", "--weft-namespace", cpNS},
			[]string{"kubectl", "delete", "-f", "-", "--ignore-not-found", "--wait=false"}); err != nil {
			t.Errorf("viz uninstall: %v", err)
		}
		c.uninstall(t, cpNS)
	})
	c.pipe(t, []string{"weft", "install", "--crds"}, []string{"kubectl", "apply", "-f", "-"})
	c.run(t, "", "kubectl", "wait", "--for", "condition=Established", "--timeout", "2m", "crd/serviceprofiles.weft.io")
	c.pipe(t, []string{"weft", "install", "--weft-namespace", cpNS}, []string{"kubectl", "apply", "-f", "-"})
	for _, d := range []string{"weft-identity", "weft-destination", "weft-proxy-injector"} {
		waitDeployment(t, cpNS, d)
	}
	waitFor(t, 2*time.Minute, "namespace weft-viz of an earlier run to be gone", func(ctx context.Context) (bool, string, error) {
		ns, err := kube.CoreV1().Namespaces().Get(ctx, "weft-viz", metav1.GetOptions{})
		return err != nil || ns.DeletionTimestamp == nil, "terminating", nil
	})
	// --weft-namespace: tap reads weft-config and asks for its certificate there.
	install := append([]string{"weft", "viz", "install", "--weft-namespace", cpNS}, vizArgs...)
	c.pipe(t, install, []string{"kubectl", "apply", "-f", "-"})
	waitDeployment(t, "weft-viz", "weft-viz")
	return cpNS
}
