package command

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/manifests"
)

// vizPrometheusCmd prints what teams that run their own Prometheus and
// Grafana need: the scrape configuration, alerting rules and dashboards
// (embedded in manifests, see docs/viz-prometheus.md).
func vizPrometheusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prometheus",
		Short: "Print a Prometheus scrape configuration, alerting rules and Grafana dashboards for the mesh",
		Long: `For teams that run Prometheus and Grafana (see docs/viz-prometheus.md):

  weft viz prometheus scrape-config   the jobs weft-proxy and weft-control-plane (prometheus.yml)
  weft viz prometheus rules           alerting rules (a rule_files entry)
  weft viz prometheus dashboards      Grafana dashboards in a ConfigMap for Grafana's dashboard sidecar
                                      (NAME prints one dashboard's JSON; --dir writes the JSON files)

Once Prometheus scrapes the proxies, weft viz install --prometheus-url URL makes
stat, routes and edges answer from it instead of the viz window.`,
	}
	cmd.AddCommand(
		printCmd("scrape-config", "Print the Prometheus scrape configuration for meshed proxies and the control plane", manifests.PrometheusScrapeConfig),
		printCmd("rules", "Print the Prometheus alerting rules (error rate, p99 latency, certificate expiry, injection failures)", manifests.PrometheusRules),
		vizDashboardsCmd(g),
	)
	return cmd
}

func printCmd(use, short string, doc func() []byte) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(doc())
			return err
		},
	}
}

func vizDashboardsCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "dashboards [NAME]",
		Short: "Print the Grafana dashboards (namespaces, workloads, routes)",
		Long: `Without NAME, print every dashboard in one ConfigMap labelled grafana_dashboard=1, which
Grafana's dashboard sidecar (the grafana Helm chart's sidecar.dashboards) loads, in
namespace -n (default monitoring, not the context's namespace):

  weft viz prometheus dashboards -n monitoring | kubectl apply -f -

With NAME (weft-namespaces, weft-workloads, weft-routes), print that dashboard's JSON for
Grafana's import; with --dir, write every dashboard as DIR/NAME.json.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			switch {
			case len(args) == 1:
				b, err := manifests.GrafanaDashboard(args[0])
				if err != nil {
					return err
				}
				_, err = out.Write(b)
				return err
			case dir != "":
				return writeDashboards(out, dir)
			}
			ns := g.namespace
			if ns == "" {
				ns = "monitoring" // not the context's: dashboards go where Grafana runs
			}
			b, err := manifests.RenderGrafanaDashboards(ns)
			if err != nil {
				return fmt.Errorf("--namespace: %w", err)
			}
			_, err = out.Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "write every dashboard as DIR/NAME.json instead")
	return cmd
}

func writeDashboards(out io.Writer, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("dashboards: %w", err)
	}
	for _, d := range manifests.GrafanaDashboards() {
		p := filepath.Join(dir, d.Name)
		if err := os.WriteFile(p, d.JSON, 0o644); err != nil {
			return fmt.Errorf("dashboards: %w", err)
		}
		fmt.Fprintln(out, p)
	}
	return nil
}
