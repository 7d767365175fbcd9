package manifests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// promtool returns the promtool binary or skips the test.
func promtool(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool absent: install the Debian prometheus package (sudo e2e/scripts/deps.sh test)")
	}
	return bin
}

// runPromtool runs promtool check KIND on doc written to a temporary file.
func runPromtool(t *testing.T, kind string, doc []byte) (string, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), kind+".yaml")
	if err := os.WriteFile(p, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool(t), "check", kind, p).CombinedOutput()
	return string(out), err
}

func TestPrometheusRulesCheck(t *testing.T) {
	out, err := runPromtool(t, "rules", PrometheusRules())
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert  string
				Expr   string
				Labels map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(PrometheusRules(), &doc); err != nil {
		t.Fatal(err)
	}
	alerts := map[string]string{}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Labels["severity"] == "" {
				t.Errorf("alert %s has no severity label", r.Alert)
			}
			alerts[r.Alert] = r.Expr
		}
	}
	// What the rules must cover, and the metric each one reads.
	for _, want := range []struct{ alert, metric string }{
		{"WeftHighErrorRate", "response_total"},
		{"WeftHighLatencyP99", "response_latency_ms_bucket"},
		{"WeftProxyCertificateExpiresSoon", "identity_cert_expiration_timestamp_seconds"},
		{"WeftIssuerCertificateExpiresSoon", "weft_identity_issuer_expiry_timestamp_seconds"},
		{"WeftTrustAnchorExpiresSoon", "weft_identity_trust_anchor_expiry_timestamp_seconds"},
		{"WeftInjectionFailures", "weft_injector_reviews_total"},
	} {
		if expr, ok := alerts[want.alert]; !ok || !strings.Contains(expr, want.metric) {
			t.Errorf("alert %s missing or not on %s: %q", want.alert, want.metric, expr)
		}
	}
}

// scrapeDoc is the part of a prometheus.yml the tests read.
type scrapeDoc struct {
	ScrapeConfigs []map[string]any `json:"scrape_configs"`
}

// TestPrometheusScrapeConfigCheck: promtool accepts the configuration.
// Debian's Prometheus is built without Kubernetes discovery; with such a
// promtool the jobs are checked with static targets in place of their
// kubernetes_sd_configs (the relabelling, the part that can be wrong, is
// still checked), and the discovery blocks are checked here.
func TestPrometheusScrapeConfigCheck(t *testing.T) {
	cfg := PrometheusScrapeConfig()
	out, err := runPromtool(t, "config", cfg)
	if err != nil && strings.Contains(out, "kubernetes_sd_configs not found") {
		t.Logf("this promtool has no Kubernetes discovery: checking the jobs with static targets")
		var doc map[string]any
		if err := yaml.Unmarshal(cfg, &doc); err != nil {
			t.Fatal(err)
		}
		for _, job := range doc["scrape_configs"].([]any) {
			j := job.(map[string]any)
			delete(j, "kubernetes_sd_configs")
			j["static_configs"] = []any{map[string]any{"targets": []any{"198.18.0.1:4191"}}}
		}
		static, merr := yaml.Marshal(doc)
		if merr != nil {
			t.Fatal(merr)
		}
		out, err = runPromtool(t, "config", static)
	}
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	var doc scrapeDoc
	if err := yaml.Unmarshal(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	jobs := map[string]map[string]any{}
	for _, j := range doc.ScrapeConfigs {
		jobs[fmt.Sprint(j["job_name"])] = j
		sd, _ := j["kubernetes_sd_configs"].([]any)
		if len(sd) != 1 || sd[0].(map[string]any)["role"] != "pod" {
			t.Errorf("job %v: want one kubernetes_sd_configs with role pod, have %v", j["job_name"], sd)
		}
	}
	proxy := jobs["weft-proxy"]
	if proxy == nil {
		t.Fatal("no weft-proxy job")
	}
	// The labels viz/promsource and the dashboards read.
	targets := map[string]bool{}
	for _, r := range proxy["relabel_configs"].([]any) {
		if tl, ok := r.(map[string]any)["target_label"].(string); ok {
			targets[tl] = true
		}
	}
	for _, l := range []string{"namespace", "pod", "deployment", "statefulset", "daemonset", "k8s_job"} {
		if !targets[l] {
			t.Errorf("weft-proxy relabelling sets no %s label", l)
		}
	}
	if !strings.Contains(string(cfg), "regex: weft-proxy;weft-admin") {
		t.Errorf("weft-proxy does not keep only the proxy container's weft-admin port")
	}
}

// grafanaVar matches Grafana's variables in expressions.
var grafanaVar = regexp.MustCompile(`\$(__rate_interval|__interval|__range|namespace|deployment|dst)\b`)

// DashboardExprs returns every PromQL expression of a dashboard (panel
// targets, and the series selectors of label_values variables) with
// Grafana's variables replaced by values PromQL accepts.
func dashboardExprs(t *testing.T, d Dashboard) []string {
	t.Helper()
	var dash struct {
		UID, Title string
		Panels     []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct {
			List []struct {
				Type  string
				Query any
			}
		}
	}
	if err := json.Unmarshal(d.JSON, &dash); err != nil {
		t.Fatalf("%s: %v", d.Name, err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("%s: uid %q title %q, %d panels", d.Name, dash.UID, dash.Title, len(dash.Panels))
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", d.Name, p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+), *[a-z_]+\)$`)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		m := labelValues.FindStringSubmatch(fmt.Sprint(q["query"]))
		if m == nil {
			t.Errorf("%s: variable query %v is not label_values(SELECTOR, LABEL)", d.Name, q["query"])
			continue
		}
		exprs = append(exprs, m[1])
	}
	for i, e := range exprs {
		exprs[i] = grafanaVar.ReplaceAllStringFunc(e, func(v string) string {
			switch v {
			case "$__rate_interval", "$__interval":
				return "1m"
			case "$__range":
				return "1h"
			}
			return "demo"
		})
		if strings.Contains(exprs[i], "$") && !strings.Contains(exprs[i], `"$1"`) {
			t.Errorf("%s: unreplaced variable in %s", d.Name, exprs[i])
		}
	}
	return exprs
}

// TestGrafanaDashboards: every dashboard parses, and promtool accepts every
// expression in it (as recording rules).
func TestGrafanaDashboards(t *testing.T) {
	ds := GrafanaDashboards()
	if len(ds) != 3 {
		t.Fatalf("dashboards = %d, want namespaces, workloads and routes", len(ds))
	}
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboards\n  rules:\n")
	n := 0
	for _, d := range ds {
		for _, e := range dashboardExprs(t, d) {
			n++
			q, _ := json.Marshal(e)
			fmt.Fprintf(&rules, "  - record: weft:dashboard_check:%d\n    expr: %s\n", n, q)
		}
	}
	out, err := runPromtool(t, "rules", []byte(rules.String()))
	if err != nil {
		t.Fatalf("promtool rejects a dashboard expression: %v\n%s\n%s", err, out, rules.String())
	}
	if !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Fatalf("promtool checked fewer than the %d expressions:\n%s", n, out)
	}
}

func TestRenderGrafanaDashboards(t *testing.T) {
	out, err := RenderGrafanaDashboards("monitoring")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "grafana-dashboards.yaml", out)
	if _, err := RenderGrafanaDashboards("Not_A_Namespace"); err == nil {
		t.Error("an invalid namespace was accepted")
	}
	if _, err := GrafanaDashboard("weft-routes"); err != nil {
		t.Error(err)
	}
	if _, err := GrafanaDashboard("nope"); err == nil || !strings.Contains(err.Error(), "weft-namespaces, weft-routes, weft-workloads") {
		t.Errorf("unknown dashboard: %v", err)
	}
}
