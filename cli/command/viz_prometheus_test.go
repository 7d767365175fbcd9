package command

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftmesh/weft/manifests"
)

func TestVizPrometheus(t *testing.T) {
	dir := t.TempDir()
	cm, _ := manifests.RenderGrafanaDashboards("grafana")
	routes, _ := manifests.GrafanaDashboard("weft-routes")
	tests := []struct {
		name string
		args []string
		want []byte // exact output; nil: check err
		err  string
	}{
		{"scrape config", []string{"viz", "prometheus", "scrape-config"}, manifests.PrometheusScrapeConfig(), ""},
		{"rules", []string{"viz", "prometheus", "rules"}, manifests.PrometheusRules(), ""},
		{"dashboards configmap", []string{"viz", "prometheus", "dashboards", "-n", "grafana"}, cm, ""},
		{"one dashboard", []string{"viz", "prometheus", "dashboards", "weft-routes"}, routes, ""},
		{"unknown dashboard", []string{"viz", "prometheus", "dashboards", "nope"}, nil, `no dashboard "nope"`},
		{"bad namespace", []string{"viz", "prometheus", "dashboards", "-n", "Bad_NS"}, nil, `--namespace: namespace "Bad_NS"`},
		{"install with a bad prometheus url", []string{"viz", "install", "--prometheus-url", "prometheus:9090"}, nil, "--prometheus-url: prometheus url \"prometheus:9090\": want http:// or https://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, nil, tt.args...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal([]byte(out), tt.want) {
				t.Errorf("output differs from manifests' (%d bytes, want %d)", len(out), len(tt.want))
			}
		})
	}
	out, err := run(t, nil, "viz", "prometheus", "dashboards", "--dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range manifests.GrafanaDashboards() {
		b, err := os.ReadFile(filepath.Join(dir, d.Name))
		if err != nil || !bytes.Equal(b, d.JSON) || !strings.Contains(out, d.Name) {
			t.Errorf("--dir %s: %v, output %q", d.Name, err, out)
		}
	}
	out, err = run(t, nil, "viz", "install", "--prometheus-url", "http://prometheus.monitoring:9090")
	if err != nil || !strings.Contains(out, "--prometheus-url=http://prometheus.monitoring:9090") {
		t.Errorf("install --prometheus-url: %v\n%s", err, out)
	}
}
