package promsource_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/weftmesh/weft/manifests"
)

// shippedScrapeConfig is manifests' Prometheus configuration with its
// weft-proxy job only and, in place of Kubernetes pod discovery (which the
// Debian build lacks, and which needs a cluster), static targets carrying
// the __meta_kubernetes_* labels discovery would give each proxy: the
// shipped relabelling then produces the target labels the Prometheus
// source reads. pods maps admin address → pod name → its workload.
func shippedScrapeConfig(t *testing.T, pods map[string][2]string) string {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(manifests.PrometheusScrapeConfig(), &doc); err != nil {
		t.Fatal(err)
	}
	doc["global"] = map[string]any{"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"}
	var job map[string]any
	for _, j := range doc["scrape_configs"].([]any) {
		if j.(map[string]any)["job_name"] == "weft-proxy" {
			job = j.(map[string]any)
		}
	}
	if job == nil {
		t.Fatal("manifests' scrape configuration has no weft-proxy job")
	}
	delete(job, "kubernetes_sd_configs")
	var static []any
	for addr, p := range pods {
		static = append(static, map[string]any{"targets": []any{addr}, "labels": map[string]any{
			"__meta_kubernetes_namespace":                            "demo",
			"__meta_kubernetes_pod_name":                             p[0],
			"__meta_kubernetes_pod_phase":                            "Running",
			"__meta_kubernetes_pod_container_name":                   "weft-proxy",
			"__meta_kubernetes_pod_container_port_name":              "weft-admin",
			"__meta_kubernetes_pod_controller_kind":                  "ReplicaSet",
			"__meta_kubernetes_pod_controller_name":                  p[1] + "-5d8f7c9b4",
			"__meta_kubernetes_pod_annotation_weft_io_proxy_version": "dev",
		}})
	}
	// A target of another container's port, which the relabelling drops.
	static = append(static, map[string]any{"targets": []any{"127.0.0.1:9"}, "labels": map[string]any{
		"__meta_kubernetes_pod_container_name": "app", "__meta_kubernetes_pod_container_port_name": "http"}})
	job["static_configs"] = static
	doc["scrape_configs"] = []any{job}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// promQuery evaluates q now and returns the number of series, or the
// API's error.
func promQuery(base, q string) (int, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Status, Error string
		Data          struct {
			Result []json.RawMessage
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s", r.Error)
	}
	return len(r.Data.Result), nil
}

var grafanaVars = strings.NewReplacer(`$__rate_interval`, "10s", `$__interval`, "10s", `"$namespace"`, `"demo"`,
	`"$deployment"`, `".*"`, `"$dst"`, `".*"`)

// emptyPanels may answer nothing over the test's traffic, and why.
var emptyPanels = map[string]string{
	"mTLS share of requests": "identity is off in the test: no tls=\"true\" series",
	"mTLS share (inbound)":   "identity is off in the test: no tls=\"true\" series",
	"Proxy errors":           "no request fails in the proxy itself",
}

// checkShipped runs every dashboard panel's and every alerting rule's
// expression against the test Prometheus: each must evaluate, and each
// panel must show the test's traffic unless emptyPanels says why not.
func checkShipped(t *testing.T, base string) {
	t.Helper()
	if n, err := promQuery(base, `count by (namespace, pod, deployment) (response_total{job="weft-proxy", deployment=~"web|books"})`); err != nil || n != 2 {
		t.Errorf("the shipped relabelling gave %d (namespace, pod, deployment) label sets, want web's and books': %v", n, err)
	}
	if n, _ := promQuery(base, `up{job="weft-proxy", pod=""}`); n != 0 {
		t.Errorf("the shipped relabelling kept %d targets that are not proxy admin ports", n)
	}
	for _, d := range manifests.GrafanaDashboards() {
		var dash struct {
			Panels []struct {
				Title   string
				Targets []struct{ Expr string }
			}
		}
		if err := json.Unmarshal(d.JSON, &dash); err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		for _, p := range dash.Panels {
			for _, tg := range p.Targets {
				q := grafanaVars.Replace(tg.Expr)
				n, err := promQuery(base, q)
				switch {
				case err != nil:
					t.Errorf("%s panel %q: %v\n%s", d.Name, p.Title, err, q)
				case n == 0 && emptyPanels[p.Title] == "":
					t.Errorf("%s panel %q shows nothing of the test's traffic:\n%s", d.Name, p.Title, q)
				default:
					t.Logf("%s panel %q: %d series", d.Name, p.Title, n)
				}
			}
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(manifests.PrometheusRules(), &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			// A firing alert here would be wrong too: the test's error
			// rate is 1/6 but over less than the 0.1 rps × 5 m floor only
			// for the rules with such a floor, so only evaluation is
			// asserted.
			if _, err := promQuery(base, regexp.MustCompile(`\s+`).ReplaceAllString(r.Expr, " ")); err != nil {
				t.Errorf("rule %s: %v", r.Alert, err)
			}
		}
	}
}
