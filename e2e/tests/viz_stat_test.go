//go:build e2e

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/e2e/testapp"
	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/viz/window"
)

// vizScrape is the scrape interval the test installs viz with (the default
// is 10 s; shorter keeps the test short, the code path is the same).
const vizScrape = 2 * time.Second

// TestVizStat: weft and the viz extension installed as a user types it; a
// meshed client Deployment sends a known number of requests to a meshed
// server Deployment; `weft viz stat deploy` answers from the window at once
// with the generator's count, `weft viz edges deploy` shows the pair over
// mTLS, and deleting the server's pod (its proxy restarts from zero) yields
// no negative rate.
func TestVizStat(t *testing.T) {
	c := newCLI(t)
	installWeftAndViz(t, c, "viz", "--scrape-interval", vizScrape.String())
	for _, p := range listPods(t, "weft-viz", "") {
		checkSidecar(t, &p, "webhook")
	}
	if t.Failed() {
		return
	}

	ns := newNamespace(t)
	c.run(t, "", "kubectl", "annotate", "ns", ns, annotations.Inject+"="+annotations.Enabled)
	vizWorkload(t, ns, "server", testappContainer("backend", "backend", "--addr", ":8080"))
	load := testappContainer("load", "load", "--addr", fmt.Sprintf(":%d", loadPort))
	load.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(loadPort)}},
		PeriodSeconds: 1,
	}
	vizWorkload(t, ns, "client", load)
	if _, err := kube.CoreV1().Services(ns).Create(ctxFor(t, time.Minute), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "server"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "server"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitDeployment(t, ns, "server")
	waitDeployment(t, ns, "client")
	client := listPods(t, ns, "app=client")[0]
	url := "http://server." + ns + ".svc.cluster.local/"
	// Warm-up until the Service reaches the client, then a baseline scrape
	// of both proxies before the counted traffic.
	waitFor(t, podTimeout, "the client to reach the server", func(ctx context.Context) (bool, string, error) {
		res, err := tryRun(ctx, &client, testapp.LoadSpec{URL: url, Count: 1, Rate: 1})
		if err != nil {
			return false, err.Error(), nil
		}
		return res.OK == 1, fmt.Sprintf("%+v", res), nil
	})
	time.Sleep(3 * vizScrape)

	const first = 300
	res := loadRun(t, &client, testapp.LoadSpec{URL: url, Count: first, Rate: 30, Concurrency: 4})
	if res.OK != first {
		t.Fatalf("generator: %+v, want %d OK", res, first)
	}
	row := waitVizRequests(t, c, ns, "server", first+1) // + the warm-up request
	t.Logf("server after %d requests: %+v", first, row)
	checkVizRow(t, row, first+1)

	// Answered from the window: without the direct scrape's 10 s wait.
	start := time.Now()
	out := c.run(t, "", "weft", "viz", "stat", "deploy", "-n", ns)
	took := time.Since(start)
	t.Logf("weft viz stat deploy -n %s answered in %s", ns, took.Round(time.Millisecond))
	if took >= 10*time.Second {
		t.Errorf("weft viz stat took %s: it waited like the direct scrape instead of reading the window", took)
	}
	for _, want := range []string{"deploy/server", "deploy/client", "100.00%"} {
		if !strings.Contains(out, want) {
			t.Errorf("stat output lacks %q", want)
		}
	}

	var edges []window.Edge
	if err := json.Unmarshal([]byte(c.run(t, "", "weft", "viz", "edges", "deploy", "-n", ns, "-o", "json")), &edges); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range edges {
		if e.Src == "client" && e.Dst == "server" && e.SrcNamespace == ns && e.DstNamespace == ns {
			found = true
			if !e.Secured || !strings.HasSuffix(e.ClientID, "/ns/"+ns+"/sa/client") || !strings.HasSuffix(e.ServerID, "/ns/"+ns+"/sa/server") {
				t.Errorf("edge client → server: %+v, want secured with both identities", e)
			}
		}
	}
	if !found {
		t.Errorf("edges lack client → server: %+v", edges)
	}
	c.run(t, "", "weft", "viz", "edges", "deploy", "-n", ns, "-o", "wide")

	// Restart the server's proxy: a new pod whose counters start at zero.
	old := listPods(t, ns, "app=server")[0]
	c.run(t, "", "kubectl", "-n", ns, "delete", "pod", old.Name, "--wait=true")
	waitDeployment(t, ns, "server")
	waitFor(t, podTimeout, "the client to reach the new server", func(ctx context.Context) (bool, string, error) {
		res, err := tryRun(ctx, &client, testapp.LoadSpec{URL: url, Count: 1, Rate: 1})
		if err != nil {
			return false, err.Error(), nil
		}
		return res.OK == 1, fmt.Sprintf("%+v", res), nil
	})
	time.Sleep(3 * vizScrape)
	const second = 200
	res = loadRun(t, &client, testapp.LoadSpec{URL: url, Count: second, Rate: 30, Concurrency: 4})
	if res.OK != second {
		t.Fatalf("generator after the restart: %+v", res)
	}
	// The old pod's counts stay, the new pod's first scrape is its
	// baseline: at least the two counted bursts, and no negative tick.
	row = waitVizRequests(t, c, ns, "server", first+second)
	t.Logf("server after the restart: %+v", row)
	checkVizRow(t, row, first+second+2)
	c.run(t, "", "weft", "viz", "stat", "po", "-n", ns, "-o", "wide")
}

// vizWorkload creates a one-replica Deployment name (label app=name) with
// its own ServiceAccount, so that its identity names it.
func vizWorkload(t *testing.T, ns, name string, c corev1.Container) {
	t.Helper()
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctxFor(t, time.Minute), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{ServiceAccountName: name, TerminationGracePeriodSeconds: ptr[int64](5),
					Containers: []corev1.Container{c}},
			},
		},
	}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctxFor(t, time.Minute), dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment %s: %v", name, err)
	}
}

// waitVizRequests polls `weft viz stat deploy -o json` until name's row has
// served at least 90 % of want requests and its count has not moved for two
// scrape intervals (the last requests' tick is in), and returns it.
func waitVizRequests(t *testing.T, c *cli, ns, name string, want int) window.Row {
	t.Helper()
	var row window.Row
	var changed time.Time
	waitFor(t, 2*time.Minute, fmt.Sprintf("viz to count %d requests of deploy/%s", want, name), func(ctx context.Context) (bool, string, error) {
		cmd := c.command(ctx, []string{"weft", "viz", "stat", "deploy", "-n", ns, "-t", "10m", "-o", "json"})
		out, err := cmd.Output()
		if err != nil {
			return false, err.Error(), nil
		}
		var rows []window.Row
		if err := json.Unmarshal(out, &rows); err != nil {
			return false, err.Error(), nil
		}
		for _, r := range rows {
			if r.Name == name {
				if r.Requests != row.Requests || changed.IsZero() {
					changed = time.Now()
				}
				row = r
				return r.Requests >= 0.9*float64(want) && time.Since(changed) >= 2*vizScrape, fmt.Sprintf("%.0f requests", r.Requests), nil
			}
		}
		return false, "no row yet", nil
	})
	return row
}

// checkVizRow: the window's figures agree with the generator's count within
// 10 %, and no tick of the row went negative.
func checkVizRow(t *testing.T, r window.Row, want int) {
	t.Helper()
	if math.Abs(r.Requests-float64(want)) > 0.1*float64(want) {
		t.Errorf("deploy/%s: %.0f requests in the window, the generator sent %d", r.Name, r.Requests, want)
	}
	// RPS is the requests over the ticks the window holds (at most -t).
	if got := r.RPS * float64(len(r.Spark)) * vizScrape.Seconds(); math.Abs(got-float64(want)) > 0.1*float64(want) {
		t.Errorf("deploy/%s: %.3f rps over %d ticks of %s is %.0f requests, the generator sent %d", r.Name, r.RPS, len(r.Spark), vizScrape, got, want)
	}
	if r.Success == nil || *r.Success != 1 {
		t.Errorf("deploy/%s: success %v, want 100%%", r.Name, r.Success)
	}
	for i, v := range r.Spark {
		if v < 0 {
			t.Errorf("deploy/%s: tick %d has rate %.2f < 0", r.Name, i, v)
		}
	}
}
