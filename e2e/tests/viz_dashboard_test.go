//go:build e2e

package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/e2e/demo/manifests"
	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/viz/web/chromium"
	"github.com/weftmesh/weft/viz/window"
)

// screenshotsEnv names a directory for the dashboard's screenshots
// (docs/images to refresh the docs); with it the demo runs in namespace
// demo, as in `make demo`, so that the pictures read like the docs.
const screenshotsEnv = "WEFT_DASHBOARD_SCREENSHOTS"

// demoEdges are the pairs of the demo's workloads that talk (the traffic
// generator calls all three services; web calls books and authors).
var demoEdges = [][2]string{{"traffic", "web"}, {"traffic", "books"}, {"traffic", "authors"}, {"web", "books"}, {"web", "authors"}}

// TestVizDashboard: weft, viz and the demo (with the books ServiceProfile)
// running; `weft viz dashboard --port P` as a user runs it; headless
// Chromium loads the namespace page through it and the DOM lists the
// demo's workloads with success rates, marks books' GET /fail as failing
// and draws the demo's edges over mTLS; the traffic generator's workload
// page shows the failing route too; books' page runs a live top (one 5 s
// tap through the viz controller) with GET /fail from traffic below 100 %;
// screenshots of the namespaces, the namespace and books' page.
func TestVizDashboard(t *testing.T) {
	if _, err := chromium.Find(); err != nil {
		t.Fatalf("%v: the dashboard test needs a browser", err)
	}
	c := newCLI(t)
	installWeftAndViz(t, c, "dash", "--scrape-interval", vizScrape.String())
	if t.Failed() {
		return
	}
	shots := os.Getenv(screenshotsEnv)
	var ns string
	if shots != "" {
		ns = fixedNamespace(t, "demo")
	} else {
		shots = t.TempDir()
		ns = newNamespace(t)
	}
	c.run(t, "", "kubectl", "annotate", "ns", ns, annotations.Inject+"="+annotations.Enabled)
	profile := strings.NewReplacer(".demo.svc.", "."+ns+".svc.", "namespace: demo", "namespace: "+ns).Replace(string(manifests.BooksProfile))
	c.run(t, profile, "kubectl", "apply", "-f", "-")
	applyDemo(t, ns)
	for _, d := range []string{"books", "authors", "web", "traffic"} {
		waitDeployment(t, ns, d)
	}
	waitDemoInWindow(t, c, ns)

	url := startDashboardCLI(t, c)
	start := time.Now()
	dom := dumpDashboard(t, url+"#/ns/"+ns)
	t.Logf("namespace page loaded and rendered in %s (%d bytes of DOM)", time.Since(start).Round(time.Millisecond), len(dom))
	for _, w := range []string{"web", "books", "authors"} {
		re := regexp.MustCompile(`<tr data-name="` + w + `" data-type="deploy" class="health-[a-z]+"><td class="name"><a href="#/ns/` + ns + `/deploy/` + w + `">deploy/` + w +
			`</a></td><td class="num">([0-9]+)/([0-9]+)</td><td class="num success (ok|warn|fail)" data-success="[0-9.]+">([0-9.]+%)</td>`)
		m := re.FindStringSubmatch(dom)
		if m == nil {
			t.Errorf("workload %s is not listed with a success rate", w)
			continue
		}
		t.Logf("deploy/%s: %s/%s meshed, success %s (%s)", w, m[1], m[2], m[4], m[3])
		if m[1] != m[2] || m[1] == "0" {
			t.Errorf("deploy/%s: %s of %s pods meshed", w, m[1], m[2])
		}
	}
	if !strings.Contains(dom, `<tr data-name="traffic" data-type="deploy"`) {
		t.Error("workload traffic is not listed")
	}
	failing := regexp.MustCompile(`<tr data-route="GET /fail" data-authority="books\.` + ns + `\.svc\.cluster\.local:7000" data-client="traffic" class="route health-fail failing">` +
		`<td class="name">traffic</td><td class="name">GET /fail<span class="badge fail">failing</span></td>`)
	if !failing.MatchString(dom) {
		t.Error("the route GET /fail of books is not marked failing")
	}
	if regexp.MustCompile(`data-route="GET /books"[^>]*class="[^"]*failing`).MatchString(dom) {
		t.Error("GET /books is marked failing")
	}
	for _, e := range demoEdges {
		re := regexp.MustCompile(`<g class="edge ([a-z]+) secured[a-z ]*" data-src="` + e[0] + `" data-dst="` + e[1] + `" data-src-namespace="` + ns + `" data-dst-namespace="` + ns + `" data-secured="true"`)
		m := re.FindStringSubmatch(dom)
		if m == nil {
			t.Errorf("the graph lacks the mTLS edge %s → %s", e[0], e[1])
			continue
		}
		t.Logf("edge %s → %s: %s, mTLS", e[0], e[1], m[1])
		if e == [2]string{"traffic", "books"} && m[1] != "fail" {
			t.Errorf("edge traffic → books is %s, want red (fail): GET /fail fails half of its requests", m[1])
		}
	}
	if t.Failed() {
		t.Logf("namespace page DOM:\n%s", dom)
	}

	wl := dumpDashboard(t, url+"#/ns/"+ns+"/deploy/traffic")
	for _, want := range []string{`<h1>deploy/traffic</h1>`, `data-route="GET /fail" data-authority="books.` + ns + `.svc.cluster.local:7000" class="route health-fail failing"`,
		`<tr data-name="books" data-type="svc" class="health-fail">`, `data-series="outbound rps"`, `weft viz top deploy/traffic -n ` + ns} {
		if !strings.Contains(wl, want) {
			t.Errorf("traffic's page lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("traffic's page DOM:\n%s", wl)
	}

	checkLiveTop(t, url, ns)
	checkVizAgreesWithGenerator(t, c, ns)

	for file, shot := range map[string]struct {
		frag   string
		height int
	}{
		"viz-dashboard-namespaces.png": {"#/", 900},
		"viz-dashboard-namespace.png":  {"#/ns/" + ns, 900},
		// Tall enough for the live top panel at the bottom of the page.
		"viz-dashboard-workload.png": {"#/ns/" + ns + "/deploy/books", 1350},
	} {
		p, frag := filepath.Join(shots, file), shot.frag
		if err := chromium.Screenshot(t.Context(), url+frag, p, chromium.Options{Budget: 5 * time.Second, Width: 1400, Height: shot.height}); err != nil {
			t.Errorf("screenshot %s: %v", frag, err)
			continue
		}
		st, _ := os.Stat(p)
		t.Logf("screenshot of %s: %s (%d bytes)", frag, p, st.Size())
	}
}

// fixedNamespace creates namespace name (failing if it exists: another demo
// runs) and deletes it when t ends.
func fixedNamespace(t *testing.T, name string) string {
	t.Helper()
	_, err := kube.CoreV1().Namespaces().Create(ctxFor(t, time.Minute), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{"weft-e2e": "true"}}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		t.Fatalf("namespace %s exists (make demo-down, or unset %s for a namespace of the test's own)", name, screenshotsEnv)
	}
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	waitFor(t, time.Minute, "ServiceAccount default in "+name, func(ctx context.Context) (bool, string, error) {
		_, err := kube.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err), nil
	})
	return name
}

// waitDemoInWindow polls the window until it has the demo's five edges and
// books' GET /fail failing, as seen from the traffic generator.
func waitDemoInWindow(t *testing.T, c *cli, ns string) {
	t.Helper()
	waitFor(t, 3*time.Minute, "the demo's edges and routes in the viz window", func(ctx context.Context) (bool, string, error) {
		var edges []window.Edge
		if err := jsonOf(ctx, c, &edges, "weft", "viz", "edges", "deploy", "-n", ns, "-o", "json"); err != nil {
			return false, err.Error(), nil
		}
		have := map[[2]string]bool{}
		for _, e := range edges {
			if e.Secured && e.Requests > 0 {
				have[[2]string{e.Src, e.Dst}] = true
			}
		}
		for _, e := range demoEdges {
			if !have[e] {
				return false, fmt.Sprintf("no mTLS edge %s → %s yet (%d edges)", e[0], e[1], len(edges)), nil
			}
		}
		var routes []window.RouteRow
		if err := jsonOf(ctx, c, &routes, "weft", "viz", "routes", "deploy/traffic", "--to", "svc/books", "-n", ns, "-o", "json"); err != nil {
			return false, err.Error(), nil
		}
		for _, r := range routes {
			if r.Route == "GET /fail" && r.Requests >= 10 && r.Success != nil && *r.Success < 0.95 {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("GET /fail not failing yet: %+v", routes), nil
	})
}

func jsonOf(ctx context.Context, c *cli, out any, argv ...string) error {
	cmd := c.command(ctx, argv)
	b, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, ee.Stderr)
		}
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return json.Unmarshal(b, out)
}

// startDashboardCLI runs `weft viz dashboard --port P` (P a free port) until
// t ends and returns the URL it printed.
func startDashboardCLI(t *testing.T, c *cli) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := c.command(ctx, []string{"weft", "viz", "dashboard", "--port", strconv.Itoa(port)})
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // Ctrl-C
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start weft viz dashboard: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		// Wait reports the cancelled context even when the process exited 0
		// on the interrupt; the exit status is what the user sees.
		if err := cmd.Wait(); err != nil && (cmd.ProcessState == nil || !cmd.ProcessState.Success()) {
			t.Errorf("weft viz dashboard after Ctrl-C: %v\n%s", err, stderr.String())
		}
	})
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("weft viz dashboard printed nothing: %s", stderr.String())
		}
		want := fmt.Sprintf("weft viz dashboard: http://127.0.0.1:%d/", port)
		if line != want {
			t.Fatalf("first line %q, want %q", line, want)
		}
		t.Logf("$ weft viz dashboard --port %d\n%s", port, line)
		return strings.TrimPrefix(line, "weft viz dashboard: ")
	case <-time.After(30 * time.Second):
		t.Fatalf("weft viz dashboard printed no URL within 30s: %s", stderr.String())
	}
	return ""
}

// dumpDashboard loads url in headless Chromium and returns the DOM once the
// page has rendered from the API.
func dumpDashboard(t *testing.T, url string) string {
	t.Helper()
	var dom string
	waitFor(t, time.Minute, "the dashboard to render "+url, func(ctx context.Context) (bool, string, error) {
		var err error
		dom, err = chromium.DumpDOM(ctx, url, chromium.Options{Budget: 5 * time.Second})
		if err != nil {
			return false, err.Error(), nil
		}
		if !strings.Contains(dom, `data-loaded="`) {
			return false, "not rendered: " + tail(dom, 800), nil
		}
		return true, "", nil
	})
	return dom
}

// liveFail is the live top row of traffic's GET /fail on books' page.
var liveFail = regexp.MustCompile(`<tr data-source="deploy/traffic" data-method="GET" data-path="/fail" data-success="([0-9.]+)" class="top-row health-[a-z]+ failing">` +
	`<td class="name">deploy/traffic</td><td class="name">deploy/books</td><td>GET</td><td class="name">/fail<span class="badge fail">failing</span></td><td class="num">([0-9]+)</td>`)

// checkLiveTop loads books' workload page until its live top panel (a 5 s
// tap through the dashboard, the API server's service proxy and the viz
// controller's tap Merger) lists traffic's GET /fail below 100 %.
func checkLiveTop(t *testing.T, url, ns string) {
	t.Helper()
	var dom string
	start := time.Now()
	waitFor(t, 2*time.Minute, "books' live top to list GET /fail from traffic", func(ctx context.Context) (bool, string, error) {
		var err error
		dom, err = chromium.DumpDOM(ctx, url+"#/ns/"+ns+"/deploy/books", chromium.Options{Budget: 3 * time.Second})
		if err != nil {
			if ctx.Err() != nil {
				return false, "", nil // killed at the deadline: keep the last state
			}
			return false, err.Error(), nil
		}
		if !strings.Contains(dom, `<section id="live" data-resource="deploy/books" data-state="ok">`) {
			i := strings.Index(dom, `<section id="live"`)
			if i < 0 {
				return false, "no live panel: " + tail(dom, 400), nil
			}
			return false, "live panel not ok: " + dom[i:min(len(dom), i+600)], nil
		}
		return liveFail.MatchString(dom), "no GET /fail row from traffic yet", nil
	})
	m := liveFail.FindStringSubmatch(dom)
	if m == nil {
		return
	}
	success, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("books' live top, %s after the first load: GET /fail from deploy/traffic: %s requests, success %.2f%%", time.Since(start).Round(time.Millisecond), m[2], 100*success)
	if success >= 1 {
		t.Errorf("live top: GET /fail at %.2f%%, want below 100%%", 100*success)
	}
	for _, row := range regexp.MustCompile(`<tr data-source="[^"]*" data-method="[^"]*" data-path="[^"]*" data-success="[0-9.]+" class="top-row[^"]*">.*?</tr>`).FindAllString(dom, -1) {
		t.Logf("live top row: %s", regexp.MustCompile(`<[^>]+>`).ReplaceAllString(strings.ReplaceAll(row, "</td>", " | "), ""))
	}
}
