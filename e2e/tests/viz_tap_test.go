//go:build e2e

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/viz/tap"
)

// tapLine is what TestVizTap reads of one `weft viz tap -o json` line.
type tapLine struct {
	Pod         string   `json:"pod"`
	Workload    string   `json:"workload"`
	Source      tap.Peer `json:"source"`
	Destination tap.Peer `json:"destination"`
	Event       struct {
		Direction string                 `json:"direction"`
		TLS       bool                   `json:"tls"`
		Request   *struct{ Path string } `json:"request"`
	} `json:"event"`
}

// TestVizTap: weft, the viz extension and the demo installed as a user
// types it; `weft viz tap deploy/web --max 20 -o json` shows the demo's
// requests with both workloads over mTLS; `weft viz top … --once` shows the
// failing endpoint below 100 % success; a ServiceAccount without RBAC gets
// the permission message, and after the ClusterRoleBinding it names, taps.
func TestVizTap(t *testing.T) {
	c := newCLI(t)
	installWeftAndViz(t, c, "tap")
	c.run(t, "", "kubectl", "wait", "--for", "condition=Available", "--timeout", "2m", "apiservice/v1alpha1.tap.weft.io")

	ns := newNamespace(t)
	c.run(t, "", "kubectl", "annotate", "ns", ns, annotations.Inject+"="+annotations.Enabled)
	applyDemo(t, ns)
	for _, d := range []string{"books", "authors", "web", "traffic"} {
		waitDeployment(t, ns, d)
	}

	// The first tap may find the component still fetching its certificate,
	// or the demo's traffic not through yet: retry until 20 requests.
	var lines []tapLine
	waitFor(t, 2*time.Minute, "weft viz tap deploy/web to show 20 requests", func(ctx context.Context) (bool, string, error) {
		out, err := c.output(ctx, "weft", "viz", "tap", "deploy/web", "-n", ns, "--max", "20", "--duration", "30s", "-o", "json")
		if err != nil {
			return false, err.Error(), nil
		}
		lines = parseTapLines(t, out)
		return countRequests(lines) >= 20, fmt.Sprintf("%d requests", countRequests(lines)), nil
	})
	if n := countRequests(lines); n != 20 {
		t.Errorf("--max 20 showed %d requests", n)
	}
	var inbound, outbound, unmeshed int
	for _, l := range lines {
		if l.Event.Request == nil {
			continue
		}
		if l.Event.Direction == "inbound" && l.Source.Identity == "" {
			unmeshed++ // the kubelet's probes: plaintext from the node
			continue
		}
		if !l.Event.TLS {
			t.Errorf("request %s %s → %s without tls", l.Event.Request.Path, l.Source.Name(), l.Destination.Name())
		}
		switch {
		case l.Event.Direction == "inbound" && l.Source.Workload == "deploy/traffic" && l.Destination.Workload == "deploy/web":
			inbound++
		case l.Event.Direction == "outbound" && l.Source.Workload == "deploy/web" &&
			(l.Destination.Workload == "deploy/books" || l.Destination.Workload == "deploy/authors"):
			outbound++
		default:
			t.Errorf("unexpected request %+v", l)
		}
	}
	t.Logf("tap: %d inbound traffic → web, %d outbound web → books/authors, %d from unmeshed clients", inbound, outbound, unmeshed)
	if inbound == 0 || outbound == 0 {
		t.Errorf("tap deploy/web: %d inbound and %d outbound requests, want both", inbound, outbound)
	}
	c.run(t, "", "weft", "viz", "tap", "deploy/web", "-n", ns, "--max", "3", "--duration", "30s")

	// web itself never fails; the demo's failing endpoint is books GET /fail.
	out := c.run(t, "", "weft", "viz", "top", "deploy/web", "-n", ns, "--once", "--duration", "10s")
	if !strings.Contains(out, "deploy/books") || !strings.Contains(out, "/books") {
		t.Errorf("top deploy/web lacks web → books GET /books:\n%s", out)
	}
	out = c.run(t, "", "weft", "viz", "top", "deploy/books", "-n", ns, "--once", "--duration", "10s")
	if rate, ok := topSuccess(out, "deploy/traffic", "/fail"); !ok || rate >= 100 || rate <= 0 {
		t.Errorf("top deploy/books: GET /fail from deploy/traffic has success %.2f%% (found %v), want between 0 and 100:\n%s", rate, ok, out)
	}

	testTapRBAC(t, c, ns)
}

// testTapRBAC: a ServiceAccount's token without tap rights is refused with
// the permission and the command that grants it; after that command it taps.
func testTapRBAC(t *testing.T, c *cli, ns string) {
	c.run(t, "", "kubectl", "-n", ns, "create", "serviceaccount", "tapper")
	token := strings.TrimSpace(c.run(t, "", "kubectl", "-n", ns, "create", "token", "tapper"))
	kc := filepath.Join(t.TempDir(), "tapper.kubeconfig")
	raw := c.run(t, "", "kubectl", "config", "view", "--raw", "--minify", "--flatten", "-o", "json")
	var admin struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
				CA     string `json:"certificate-authority-data"`
			} `json:"cluster"`
		} `json:"clusters"`
	}
	if err := json.Unmarshal([]byte(raw), &admin); err != nil || len(admin.Clusters) == 0 {
		t.Fatalf("admin kubeconfig: %v", err)
	}
	cfg := fmt.Sprintf("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: %q, certificate-authority-data: %q}}]\n"+
		"users: [{name: tapper, user: {token: %q}}]\ncontexts: [{name: c, context: {cluster: c, user: tapper}}]\ncurrent-context: c\n",
		admin.Clusters[0].Cluster.Server, admin.Clusters[0].Cluster.CA, token)
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := []string{"weft", "--kubeconfig", kc, "viz", "tap", "deploy/web", "-n", ns, "--max", "2", "--duration", "30s"}
	cmd := c.command(ctxFor(t, time.Minute), argv)
	denied, err := cmd.CombinedOutput()
	t.Logf("$ %s (as tapper)\n%s", strings.Join(argv, " "), denied)
	grant := "kubectl create clusterrolebinding system-serviceaccount-" + ns + "-tapper-tap --clusterrole=weft-viz-tap --serviceaccount=" + ns + ":tapper"
	if err == nil || !strings.Contains(string(denied), `missing permission "watch" on "deployments/tap"`) || !strings.Contains(string(denied), grant) {
		t.Fatalf("tap without RBAC: err %v, output lacks the permission or %q", err, grant)
	}
	binding := "system-serviceaccount-" + ns + "-tapper-tap"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = kube.RbacV1().ClusterRoleBindings().Delete(ctx, binding, metav1.DeleteOptions{})
	})
	c.run(t, "", strings.Fields(grant)...)
	waitFor(t, time.Minute, "tapper to tap after the ClusterRoleBinding", func(ctx context.Context) (bool, string, error) {
		out, err := c.output(ctx, argv...)
		if err != nil {
			return false, err.Error(), nil
		}
		return strings.Count(out, "req id=") == 2, out, nil
	})
}

// output runs argv and returns its stdout, or an error with its stderr.
func (c *cli) output(ctx context.Context, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := c.command(ctx, argv)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, stderr.String())
	}
	return string(out), nil
}

func parseTapLines(t *testing.T, out string) []tapLine {
	t.Helper()
	var lines []tapLine
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		if s == "" {
			continue
		}
		var l tapLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("tap -o json line %q: %v", s, err)
		}
		lines = append(lines, l)
	}
	return lines
}

func countRequests(lines []tapLine) int {
	n := 0
	for _, l := range lines {
		if l.Event.Request != nil {
			n++
		}
	}
	return n
}

// topSuccess finds the row of source and path in top's table and returns
// its Success column.
func topSuccess(out, source, path string) (float64, bool) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 9 && f[0] == source && f[3] == path {
			v, err := strconv.ParseFloat(strings.TrimSuffix(f[8], "%"), 64)
			return v, err == nil
		}
	}
	return 0, false
}
