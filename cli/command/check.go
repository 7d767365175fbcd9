package command

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/cli/healthcheck"
	"github.com/weftmesh/weft/internal/version"
	"github.com/weftmesh/weft/viz/stat"
)

// DefaultCheckWait bounds how long a waiting check retries (--wait).
const DefaultCheckWait = 5 * time.Minute

// errCheckFailed makes `weft check` exit 1 once its report is printed.
var errCheckFailed = errors.New("check failed: see the report above")

func checkCmd(g *globals) *cobra.Command {
	var (
		pre, proxy, all, strict bool
		wait                    time.Duration
		output                  string
	)
	cmd := &cobra.Command{
		Use:   "check [--pre | --proxy [-n NS | -A]]",
		Short: "Check the cluster before install, the control plane, or the meshed proxies",
		Long: "check runs health checks and prints one line per check (√ ok, ‼ warning, × failure).\n" +
			"Every warning and failure says what was found, how to fix it and its section in docs/checks.md.\n" +
			"Exit status 1 when a check fails (or warns, with --strict).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pre && proxy {
				return errors.New("--pre and --proxy exclude each other: run them one after the other")
			}
			if all && g.namespace != "" {
				return errors.New("-A and -n exclude each other")
			}
			if (all || g.namespace != "") && !proxy {
				return errors.New("-n and -A select the pods of --proxy: add --proxy")
			}
			if wait <= 0 {
				return fmt.Errorf("--wait %s must be positive, e.g. 5m", wait)
			}
			write, err := checkWriter(output, strict)
			if err != nil {
				return err
			}
			cs, err := g.client()
			if err != nil {
				return err
			}
			mode := healthcheck.ControlPlane
			switch {
			case pre:
				mode = healthcheck.Pre
			case proxy:
				mode = healthcheck.DataPlane
			}
			env := &healthcheck.Env{
				Client: cs, Admin: stat.APIServerProxy{Client: cs},
				ControlPlaneNS: g.values.ControlPlaneNamespace, Namespace: g.namespace,
				CLIVersion: version.Version, Now: g.cfg.Now, Values: g.values,
			}
			if proxy && !all && env.Namespace == "" {
				env.Namespace = "default"
			}
			opts := healthcheck.Options{Wait: wait}
			if output == "table" && isTerminal(cmd.ErrOrStderr()) {
				opts.Progress = cmd.ErrOrStderr()
			}
			outcomes := healthcheck.Run(cmd.Context(), env, healthcheck.Checks(mode), opts)
			if err := write(cmd.OutOrStdout(), outcomes); err != nil {
				return err
			}
			if healthcheck.Failed(outcomes, strict) {
				return errCheckFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&pre, "pre", false, "check that the cluster is ready for `weft install`")
	f.BoolVar(&proxy, "proxy", false, "check the meshed pods' proxies (of -n NS, default \"default\", or -A)")
	f.BoolVarP(&all, "all-namespaces", "A", false, "with --proxy: check the pods of every namespace")
	f.BoolVar(&strict, "strict", false, "exit 1 on warnings too")
	f.DurationVar(&wait, "wait", DefaultCheckWait, "how long checks that wait (pods becoming Ready) retry")
	f.StringVarP(&output, "output", "o", "table", "output format: table, json or short")
	return cmd
}

func checkWriter(output string, strict bool) (func(io.Writer, []healthcheck.Outcome) error, error) {
	switch output {
	case "table":
		return healthcheck.WriteTable, nil
	case "short":
		return healthcheck.WriteShort, nil
	case "json":
		return func(w io.Writer, o []healthcheck.Outcome) error { return healthcheck.WriteJSON(w, o, strict) }, nil
	}
	return nil, fmt.Errorf("-o %q is not a format: use table, json or short", output)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
