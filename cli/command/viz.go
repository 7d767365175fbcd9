package command

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/viz/stat"
)

func vizCmd(g *globals) *cobra.Command {
	viz := &cobra.Command{Use: "viz", Short: "Traffic figures of meshed workloads"}
	var window time.Duration
	st := &cobra.Command{
		Use:   "stat",
		Short: "Success rate, requests per second and latency per workload, read from the proxies",
		Long: `stat reads every meshed pod's proxy metrics (through the API server's pod proxy) twice,
--window apart, and prints per workload: meshed pods, success rate, requests per second and
latency percentiles of the requests the workload served, and its open TCP connections.`,
		Example: "  weft viz stat -n demo\n  weft viz stat -n demo --window 30s",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if window < time.Second || window > 5*time.Minute {
				return fmt.Errorf("--window %s is out of range [1s, 5m]", window)
			}
			cs, err := g.client()
			if err != nil {
				return err
			}
			ns := g.namespace
			if ns == "" {
				ns = "default"
			}
			rows, err := stat.Collect(cmd.Context(), cs, ns, window, stat.APIServerProxy{Client: cs})
			if len(rows) == 0 && err == nil {
				err = errors.New("no running pods in namespace " + ns)
			}
			if len(rows) > 0 {
				if werr := stat.WriteTable(cmd.OutOrStdout(), rows); werr != nil {
					return werr
				}
			}
			return err
		},
	}
	st.Flags().DurationVar(&window, "window", 10*time.Second, "how long to measure")
	viz.AddCommand(st)
	return viz
}
