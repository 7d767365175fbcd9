//go:build e2e

package tests

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/cli/command"
	"github.com/weftmesh/weft/internal/version"
)

// weftCLI runs the weft CLI in-process with args against the local cluster.
func weftCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := command.NewRoot(command.Config{Out: &out, Err: &errOut})
	root.SetArgs(append(args, "--kubeconfig", filepath.Join(cacheDir(), "cluster", "kubeconfig")))
	err := root.ExecuteContext(ctxFor(t, 2*time.Minute))
	return out.String(), err
}

// kubectl runs kubectl against the local cluster with stdin.
func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", filepath.Join(cacheDir(), "cluster", "kubeconfig")}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var docStart = regexp.MustCompile(`(?m)^---$`)

// dryRunApply sends manifests through kubectl apply --dry-run=server and
// checks the apiserver accepted every object.
func dryRunApply(t *testing.T, manifests string) {
	t.Helper()
	docs := len(docStart.FindAllString(manifests, -1))
	out := kubectl(t, manifests, "apply", "--dry-run=server", "-f", "-")
	accepted := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasSuffix(line, "(server dry run)") {
			accepted++
		}
	}
	if docs == 0 || accepted != docs {
		t.Fatalf("apiserver accepted %d of %d objects:\n%s", accepted, docs, out)
	}
}

func crdsServed(t *testing.T) bool {
	_, err := kube.Discovery().ServerResourcesForGroupVersion("weft.io/v1alpha1")
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return true
}

// TestInstallDryRun renders `weft install --crds` and `weft install` (plain
// and --ha) and has the real apiserver validate them with a server-side dry
// run. The control plane goes into a throwaway namespace, so the objects are
// checked against an existing namespace without installing anything.
func TestInstallDryRun(t *testing.T) {
	crds, err := weftCLI(t, "install", "--crds")
	if err != nil {
		t.Fatal(err)
	}
	dryRunApply(t, crds)

	ns := newNamespace(t)
	// The checks against the live cluster: refuse without CRDs, else render.
	out, err := weftCLI(t, "install", "--weft-namespace", ns, "--crd-wait", "2s")
	if crdsServed(t) {
		if err != nil {
			t.Fatalf("install with the CRDs present: %v", err)
		}
	} else {
		if err == nil || !strings.Contains(err.Error(), "the weft CRDs are not installed") {
			t.Fatalf("install without CRDs: err = %v", err)
		}
		if out, err = weftCLI(t, "install", "--weft-namespace", ns, "--ignore-cluster"); err != nil {
			t.Fatal(err)
		}
	}
	// The apiserver's answer names the namespace it was given: the Namespace
	// object exists, so it is "configured", all others "created".
	dryRunApply(t, out)

	ha, err := weftCLI(t, "install", "--weft-namespace", ns, "--ha", "--webhook-failure-policy", "Fail", "--ignore-cluster")
	if err != nil {
		t.Fatal(err)
	}
	dryRunApply(t, ha)

	del, err := weftCLI(t, "uninstall", "--weft-namespace", ns, "--keep-crds")
	if err != nil {
		t.Fatal(err)
	}
	gone := kubectl(t, del, "delete", "--dry-run=server", "--ignore-not-found", "-f", "-")
	if !strings.Contains(gone, `namespace "`+ns+`" deleted (server dry run)`) {
		t.Fatalf("uninstall output does not delete the namespace:\n%s", gone)
	}
}

// TestInstallRefusesExisting: a weft-config ConfigMap in the namespace means
// weft is installed there; install refuses unless --ignore-cluster.
func TestInstallRefusesExisting(t *testing.T) {
	ns := newNamespace(t)
	_, err := kube.CoreV1().ConfigMaps(ns).Create(ctxFor(t, time.Minute), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "weft-config"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = weftCLI(t, "install", "--weft-namespace", ns, "--crd-wait", "2s")
	want := "weft is already installed in namespace " + ns
	if !crdsServed(t) {
		want = "the weft CRDs are not installed"
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if _, err := weftCLI(t, "install", "--weft-namespace", ns, "--ignore-cluster"); err != nil {
		t.Fatal(err)
	}
}

// TestVersionAgainstCluster: the client version always, the server version
// "unavailable" when no control plane runs in the namespace.
func TestVersionAgainstCluster(t *testing.T) {
	ns := newNamespace(t)
	out, err := weftCLI(t, "version", "--weft-namespace", ns)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Client version: ") || !strings.Contains(out, "Server version: unavailable (no weft control plane in namespace "+ns+")") {
		t.Fatalf("version output:\n%s", out)
	}
}

// TestInstallControlPlaneRuns applies `weft install` into a throwaway
// namespace — without its MutatingWebhookConfiguration, which would see
// every other test's pods — and waits until identity, destination and the
// injector, each with its proxy, are available. It needs bin/weft-controller
// and bin/weft-proxy (make build).
func TestInstallControlPlaneRuns(t *testing.T) {
	ns := newNamespace(t)
	out, err := weftCLI(t, "install", "--weft-namespace", ns, "--ignore-cluster")
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, d := range docStart.Split(out, -1) {
		if strings.TrimSpace(d) == "" || strings.Contains(d, "kind: MutatingWebhookConfiguration") || strings.Contains(d, "\nkind: Namespace\n") {
			continue
		}
		keep = append(keep, d)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, comp := range []string{"identity", "destination", "proxy-injector"} {
			name := "weft-" + ns + "-" + comp
			if err := kube.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete ClusterRoleBinding %s: %v", name, err)
			}
			if err := kube.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete ClusterRole %s: %v", name, err)
			}
		}
	})
	kubectl(t, "---"+strings.Join(keep, "---"), "apply", "-f", "-")
	for _, name := range []string{"weft-identity", "weft-destination", "weft-proxy-injector"} {
		waitFor(t, podTimeout, "Deployment "+ns+"/"+name+" available", func(ctx context.Context) (bool, string, error) {
			d, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			return d.Status.AvailableReplicas >= 1, fmt.Sprintf("available %d of %d", d.Status.AvailableReplicas, d.Status.Replicas), nil
		})
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctxFor(t, time.Minute), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		meshed := false
		for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
			meshed = meshed || c.Name == "weft-proxy"
		}
		if !meshed {
			t.Errorf("control-plane pod %s has no proxy", p.Name)
		}
	}
	ver, err := weftCLI(t, "version", "--weft-namespace", ns)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Server version: " + version.Version + "\n"; !strings.Contains(ver, want) {
		t.Fatalf("version output:\n%s\nwant %q", ver, want)
	}
}
