package command

import (
	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/manifests"
)

func vizCmd(g *globals) *cobra.Command {
	viz := &cobra.Command{
		Use:   "viz",
		Short: "Traffic figures of meshed workloads (the viz extension)",
		Long: `viz installs the viz extension, which keeps a rolling window of every meshed
proxy's metrics, and reads it: stat, routes and edges answer at once from the
window (see docs/viz.md). Without the extension, stat measures directly.`,
	}
	viz.AddCommand(vizInstallCmd(g), vizUninstallCmd(), vizStatCmd(g), vizRoutesCmd(g), vizEdgesCmd(g), vizTapCmd(g), vizTopCmd(g), vizPrometheusCmd(g), vizDashboardCmd(g))
	return viz
}

func vizInstallCmd(g *globals) *cobra.Command {
	v := manifests.DefaultVizValues()
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Print the viz extension as YAML for kubectl apply",
		Long: `Print the viz extension's manifests (namespace ` + manifests.VizNamespace + `, one meshed Deployment
running weft-controller viz, read-only RBAC on pods and workloads, the
Service weft viz commands reach through the API server's service proxy, and
the tap API: APIService v1alpha1.tap.weft.io with a freshly generated serving
certificate, and the ClusterRole weft-viz-tap that users are bound to):

  weft viz install | kubectl apply -f -

Install weft first: the viz pod is meshed by weft's injector, and tap asks
weft's identity service (in --weft-namespace) for its certificate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v.ControlPlaneNamespace = g.values.ControlPlaneNamespace
			certs, err := manifests.NewVizCerts(g.cfg.Generator)
			if err != nil {
				return err
			}
			out, err := manifests.RenderViz(v, certs)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&v.ControllerImage, "controller-image", v.ControllerImage, "controller image, without tag")
	f.StringVar(&v.ControllerVersion, "controller-version", v.ControllerVersion, "controller image tag")
	f.DurationVar(&v.ScrapeInterval, "scrape-interval", v.ScrapeInterval, "time between scrapes of every proxy (the window's resolution)")
	f.DurationVar(&v.Window, "window", v.Window, "how far back the metrics window reaches")
	f.StringVar(&v.CPURequest, "cpu-request", v.CPURequest, "CPU request of the viz container")
	f.StringVar(&v.MemoryRequest, "memory-request", v.MemoryRequest, "memory request of the viz container")
	f.StringVar(&v.MemoryLimit, "memory-limit", v.MemoryLimit, "memory limit of the viz container (see docs/viz.md for sizing)")
	f.StringVar(&v.PrometheusURL, "prometheus-url", "", "answer stat, routes and edges from this Prometheus instead of the viz window (see docs/viz-prometheus.md)")
	return cmd
}

func vizUninstallCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "uninstall",
		Short: "Print what to delete to remove the viz extension, for kubectl delete",
		Long: `Print the viz extension's APIService, its RBAC outside its namespace and the
namespace itself as YAML stubs:

  weft viz uninstall | kubectl delete -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(manifests.UninstallViz())
			return err
		},
	}
}
