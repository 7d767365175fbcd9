package manifests

import (
	"embed"
	"fmt"
	"path"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// For teams that run Prometheus and Grafana: a scrape configuration for the
// proxies and the control plane (Linkerd-compatible target labels), alerting
// rules, and Grafana dashboards on the proxies' Linkerd-compatible metric
// names. `weft viz prometheus scrape-config|rules|dashboards` prints them;
// docs/viz-prometheus.md explains them.

//go:embed prometheus/scrape-config.yaml
var prometheusScrapeConfig []byte

//go:embed prometheus/rules.yaml
var prometheusRules []byte

//go:embed prometheus/dashboards/*.json
var grafanaDashboards embed.FS

// PrometheusScrapeConfig is a prometheus.yml whose scrape_configs scrape
// every meshed proxy (job weft-proxy) and the control plane
// (job weft-control-plane) through Kubernetes pod discovery.
func PrometheusScrapeConfig() []byte { return clone(prometheusScrapeConfig) }

// PrometheusRules is a Prometheus rules file: high error rate, high p99
// latency, certificates near expiry, injection failures.
func PrometheusRules() []byte { return clone(prometheusRules) }

// Dashboard is one Grafana dashboard as JSON.
type Dashboard struct {
	// Name is the file name, e.g. weft-workloads.json.
	Name string
	JSON []byte
}

// GrafanaDashboards returns the dashboards, sorted by name.
func GrafanaDashboards() []Dashboard {
	entries, err := grafanaDashboards.ReadDir("prometheus/dashboards")
	if err != nil {
		panic(fmt.Sprintf("embedded dashboards: %v", err)) // the embed pattern guarantees the directory
	}
	out := make([]Dashboard, 0, len(entries))
	for _, e := range entries {
		b, err := grafanaDashboards.ReadFile(path.Join("prometheus/dashboards", e.Name()))
		if err != nil {
			panic(fmt.Sprintf("embedded dashboard %s: %v", e.Name(), err))
		}
		out = append(out, Dashboard{Name: e.Name(), JSON: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// GrafanaDashboard returns the dashboard named name (with or without
// .json).
func GrafanaDashboard(name string) ([]byte, error) {
	var names []string
	for _, d := range GrafanaDashboards() {
		if d.Name == name || d.Name == name+".json" {
			return d.JSON, nil
		}
		names = append(names, strings.TrimSuffix(d.Name, ".json"))
	}
	return nil, fmt.Errorf("no dashboard %q: have %s", name, strings.Join(names, ", "))
}

// GrafanaDashboardsLabel is the label Grafana's dashboard sidecar (the
// grafana Helm chart's sidecar.dashboards) looks for on ConfigMaps.
const GrafanaDashboardsLabel = "grafana_dashboard"

// RenderGrafanaDashboards renders every dashboard in one ConfigMap of
// namespace ns labelled for Grafana's dashboard sidecar.
func RenderGrafanaDashboards(ns string) ([]byte, error) {
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return nil, fmt.Errorf("namespace %q: %s", ns, strings.Join(errs, "; "))
	}
	data := map[string]string{}
	for _, d := range GrafanaDashboards() {
		data[d.Name] = string(d.JSON)
	}
	cm := &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "weft-grafana-dashboards", Namespace: ns,
			Labels: map[string]string{GrafanaDashboardsLabel: "1", "app.kubernetes.io/part-of": "weft"}},
		Data: data,
	}
	return marshalAll([]object{cm})
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
