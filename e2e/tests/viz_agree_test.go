//go:build e2e

package tests

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/e2e/demo/traffic"
	"github.com/weftmesh/weft/viz/window"
)

// agreeSpan is how long the demo's traffic runs between the generator's
// reset and the comparison.
const agreeSpan = 40 * time.Second

// checkVizAgreesWithGenerator: over agreeSpan of the demo's steady traffic
// (with the books ServiceProfile applied), `weft viz routes deploy/traffic
// --to svc/books` and `weft viz edges deploy` count what the traffic
// generator itself sent to books, per route and in all, within 10 % (plus
// one scrape interval's worth of requests: the window ends at its last
// scrape and starts at a tick, the generator at its reset).
func checkVizAgreesWithGenerator(t *testing.T, c *cli, ns string) {
	t.Helper()
	pods, err := kube.CoreV1().Pods(ns).List(ctxFor(t, time.Minute), metav1.ListOptions{LabelSelector: "app=traffic"})
	if err != nil || len(pods.Items) == 0 || pods.Items[0].Status.PodIP == "" {
		t.Fatalf("traffic pod: %d pods, %v", len(pods.Items), err)
	}
	stats := fmt.Sprintf("http://%s:9000/stats", pods.Items[0].Status.PodIP)
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := ctxFor(t, agreeSpan+2*time.Minute)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, stats+"?reset=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("reset the generator's stats: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("reset the generator's stats: status %d", resp.StatusCode)
	}
	time.Sleep(agreeSpan) // bounded: the traffic to compare
	rep, err := fetchStats(ctx, client, stats)
	if err != nil {
		t.Fatalf("generator stats: %v", err)
	}
	// The window's last tick is at most one scrape old: ask for the span
	// since the reset, in whole seconds.
	span := time.Duration(math.Ceil(time.Since(rep.Since).Seconds())) * time.Second
	var routes []window.RouteRow
	if err := jsonOf(ctx, c, &routes, "weft", "viz", "routes", "deploy/traffic", "--to", "svc/books", "-n", ns, "-t", span.String(), "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var edges []window.Edge
	if err := jsonOf(ctx, c, &edges, "weft", "viz", "edges", "deploy", "-n", ns, "-t", span.String(), "-o", "json"); err != nil {
		t.Fatal(err)
	}
	sent := map[string]traffic.TargetStats{}
	var books, booksRate float64
	for _, s := range rep.Targets {
		if route, ok := strings.CutPrefix(s.Name, "books "); ok {
			sent[route] = s
			books += float64(s.Requests)
			booksRate += s.Rate
		}
	}
	if len(sent) == 0 {
		t.Fatalf("the generator reports no books targets: %+v", rep.Targets)
	}
	agree := func(what string, viz, gen, rate float64) {
		slack := 0.1*gen + rate*vizScrape.Seconds() + 1
		t.Logf("%s over %s: viz %.0f, generator %.0f (allowed ±%.1f)", what, span, viz, gen, slack)
		if math.Abs(viz-gen) > slack {
			t.Errorf("%s over %s: viz counts %.0f requests, the generator sent %.0f (more than 10 %% apart)", what, span, viz, gen)
		}
	}
	for route, s := range sent {
		var row *window.RouteRow
		for i := range routes {
			if routes[i].Route == route {
				row = &routes[i]
			}
		}
		if row == nil {
			t.Errorf("weft viz routes has no row %q: %+v", route, routes)
			continue
		}
		agree("route "+route, row.Requests, float64(s.Requests), s.Rate)
		if s.Failures > 0 && (row.Success == nil || *row.Success >= 1) {
			t.Errorf("route %s: the generator saw %d failures, viz shows success %v", route, s.Failures, row.Success)
		}
	}
	found := false
	for _, e := range edges {
		if e.Src == "traffic" && e.Dst == "books" {
			found = true
			agree("edge traffic → books", e.Requests, books, booksRate)
		}
	}
	if !found {
		t.Errorf("weft viz edges has no traffic → books edge: %+v", edges)
	}
}
