package command

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/viz/metricsapi"
	"github.com/weftmesh/weft/viz/stat"
	"github.com/weftmesh/weft/viz/statview"
	"github.com/weftmesh/weft/viz/window"
)

// vizQuery holds the flags stat, routes and edges share; each field's zero
// value is the flag's default meaning.
type vizQuery struct {
	allNS          bool
	from, to       string // TYPE/NAME; "" means no filter
	fromNS, toNS   string // "" means the -n namespace
	timeWindow     time.Duration
	output         string
	withFromTo     bool
	withAllNS      bool
	directDuration time.Duration // stat --window: measure directly
}

func (q *vizQuery) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.DurationVarP(&q.timeWindow, "time-window", "t", time.Minute, "how far back in the window to look (the window holds 1h by default)")
	f.StringVarP(&q.output, "output", "o", statview.Table, "output format: table, wide or json")
	if q.withAllNS {
		f.BoolVarP(&q.allNS, "all-namespaces", "A", false, "every namespace (instead of -n)")
	}
	if q.withFromTo {
		f.StringVar(&q.from, "from", "", "only traffic from this resource (TYPE/NAME, e.g. deploy/web)")
		f.StringVar(&q.to, "to", "", "only traffic to this resource (TYPE/NAME, e.g. svc/books)")
		f.StringVar(&q.fromNS, "from-namespace", "", "namespace of --from (default: -n)")
		f.StringVar(&q.toNS, "to-namespace", "", "namespace of --to (default: -n)")
	}
}

// params validates the flags and resource and returns the API parameters
// and the parsed resource.
func (q *vizQuery) params(cmd *cobra.Command, g *globals, resource string) (map[string]string, window.Resource, error) {
	if err := statview.CheckFormat(q.output); err != nil {
		return nil, window.Resource{}, err
	}
	if q.timeWindow <= 0 {
		return nil, window.Resource{}, fmt.Errorf("--time-window %s is not positive: use e.g. 1m", q.timeWindow)
	}
	ns := g.namespace
	if q.allNS {
		if cmd.Flags().Changed("namespace") {
			return nil, window.Resource{}, errors.New("pass -n NAMESPACE or -A, not both")
		}
		ns = ""
	} else if ns == "" {
		ns = "default"
	}
	res, err := window.ParseResource(resource, ns)
	if err != nil {
		return nil, window.Resource{}, err
	}
	p := map[string]string{"resource": resource, "namespace": ns, "window": q.timeWindow.String()}
	if q.from != "" && q.to != "" {
		return nil, window.Resource{}, errors.New("pass --from or --to, not both")
	}
	for _, f := range []struct{ name, val, ns string }{{"from", q.from, q.fromNS}, {"to", q.to, q.toNS}} {
		if f.val == "" {
			continue
		}
		if _, err := window.ParseResource(f.val, ns); err != nil {
			return nil, window.Resource{}, fmt.Errorf("--%s: %w", f.name, err)
		}
		p[f.name] = f.val
		if f.ns != "" {
			p[f.name+"Namespace"] = f.ns
		}
	}
	return p, res, nil
}

func vizStatCmd(g *globals) *cobra.Command {
	q := &vizQuery{withFromTo: true, withAllNS: true}
	cmd := &cobra.Command{
		Use:   "stat [RESOURCE-TYPE[/NAME]]",
		Short: "Success rate, requests per second and latency per resource, from the metrics window",
		Long: `stat prints, per resource, meshed pods, success rate, requests per second and
latency percentiles of the requests it served, and its open TCP connections,
answered at once from the viz extension's metrics window. Resource types:
deploy, sts, ds, job, po, svc, ns, authority (default deploy).

Without the extension (or with --window), stat reads every meshed pod's proxy
metrics through the API server's pod proxy twice, --window apart, and says so
on stderr.`,
		Example: `  weft viz stat deploy -n demo
  weft viz stat deploy/web -n demo --to svc/books -t 5m
  weft viz stat ns -A -o wide
  weft viz stat -n demo --window 30s`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if q.directDuration < time.Second || q.directDuration > 5*time.Minute {
				return fmt.Errorf("--window %s is out of range [1s, 5m]", q.directDuration)
			}
			resource := "deploy"
			if len(args) == 1 {
				resource = args[0]
			}
			params, res, err := q.params(cmd, g, resource)
			if err != nil {
				return err
			}
			cs, err := g.client()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("window") {
				return q.statDirect(cmd, cs, res)
			}
			var rows []window.Row
			err = metricsapi.Client{CS: cs}.Get(cmd.Context(), metricsapi.StatPath, params, &rows)
			if errors.Is(err, metricsapi.ErrNotInstalled) {
				if !q.canMeasureDirectly(res) {
					return fmt.Errorf("%w; without it only `weft viz stat [deploy|sts|ds|job] -n NAMESPACE` can measure, with a direct scrape", err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%v: measuring directly instead, scraping every proxy in %s twice, %s apart\n", err, res.Namespace, q.directDuration)
				return q.statDirect(cmd, cs, res)
			}
			if err != nil {
				return err
			}
			return statview.Stat(cmd.OutOrStdout(), rows, q.output, q.allNS)
		},
	}
	q.addFlags(cmd)
	cmd.Flags().DurationVar(&q.directDuration, "window", 10*time.Second, "measure directly (without the extension) for this long")
	return cmd
}

// canMeasureDirectly: the direct scrape knows one namespace's workloads and
// only what they served.
func (q *vizQuery) canMeasureDirectly(res window.Resource) bool {
	switch res.Type {
	case "deploy", "sts", "ds", "job":
		return !q.allNS && q.from == "" && q.to == ""
	}
	return false
}

// statDirect is the fallback: two scrapes of every proxy of the namespace.
func (q *vizQuery) statDirect(cmd *cobra.Command, cs kubernetes.Interface, res window.Resource) error {
	if !q.canMeasureDirectly(res) {
		return fmt.Errorf("--window measures directly, which covers only `weft viz stat [deploy|sts|ds|job] -n NAMESPACE`: drop --window to ask the viz extension")
	}
	got, err := stat.Collect(cmd.Context(), cs, res.Namespace, q.directDuration, stat.APIServerProxy{Client: cs})
	if len(got) == 0 && err == nil {
		return errors.New("no running pods in namespace " + res.Namespace)
	}
	rows := directRows(got, res)
	if len(got) > 0 {
		if werr := statview.Stat(cmd.OutOrStdout(), rows, q.output, false); werr != nil {
			return werr
		}
	}
	return err
}

// directRows converts the direct scrape's rows to the window's, keeping
// those of res's type (every workload for a bare "deploy", which is what
// `weft viz stat -n NS` always printed) and name.
func directRows(got []stat.Row, res window.Resource) []window.Row {
	opt := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		return &v
	}
	var rows []window.Row
	for _, r := range got {
		typ := window.ShortType(r.Kind)
		if res.Name != "" && (typ != res.Type || r.Name != res.Name) {
			continue
		}
		rows = append(rows, window.Row{Namespace: res.Namespace, Type: typ, Name: r.Name, Pods: r.Pods, Meshed: r.Meshed,
			Signals: window.Signals{Success: opt(r.Success), RPS: r.RPS, P50: opt(r.P50), P95: opt(r.P95), P99: opt(r.P99), TCPConn: r.TCPConn}})
	}
	return rows
}

func vizRoutesCmd(g *globals) *cobra.Command {
	q := &vizQuery{withFromTo: true}
	cmd := &cobra.Command{
		Use:   "routes svc/NAME | deploy/NAME",
		Short: "Per-route success, requests per second and latency, from the metrics window",
		Long: `routes prints one line per ServiceProfile route of a Service (summed over every
meshed client that called it: proxies record routes on the calling side), or of the
Services a workload calls (with --to), and [DEFAULT] for requests
that matched no route. SUCCESS and RPS are effective (what clients saw, after
retries); -o wide adds the actual figures (every attempt).`,
		Example: "  weft viz routes svc/books -n demo\n  weft viz routes deploy/web -n demo --to svc/books -o wide",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			params, res, err := q.params(cmd, g, args[0])
			if err != nil {
				return err
			}
			if res.Name == "" || (res.Type != "svc" && res.Type != "deploy") {
				return fmt.Errorf("routes needs svc/NAME or deploy/NAME, not %q", args[0])
			}
			var rows []window.RouteRow
			if err := vizGet(cmd.Context(), g, metricsapi.RoutesPath, params, &rows); err != nil {
				return err
			}
			return statview.Routes(cmd.OutOrStdout(), rows, q.output)
		},
	}
	q.addFlags(cmd)
	return cmd
}

func vizEdgesCmd(g *globals) *cobra.Command {
	q := &vizQuery{withAllNS: true}
	cmd := &cobra.Command{
		Use:   "edges RESOURCE-TYPE",
		Short: "Which workloads talk to which, and whether over mTLS, from the metrics window",
		Long: `edges prints SRC, DST, SRC_NS, DST_NS and SECURED (√ when all their traffic was
mTLS) for every pair of workloads of the type that talked in the time window;
-o wide adds both identities, success and requests per second.`,
		Example: "  weft viz edges deploy -n demo\n  weft viz edges deploy -A -o wide",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			params, res, err := q.params(cmd, g, args[0])
			if err != nil {
				return err
			}
			if res.Name != "" {
				return fmt.Errorf("edges takes a resource type such as deploy, not %q", args[0])
			}
			var rows []window.Edge
			if err := vizGet(cmd.Context(), g, metricsapi.EdgesPath, params, &rows); err != nil {
				return err
			}
			return statview.Edges(cmd.OutOrStdout(), rows, q.output)
		},
	}
	q.addFlags(cmd)
	return cmd
}

// vizGet asks the viz extension through the API server's service proxy.
func vizGet(ctx context.Context, g *globals, path string, params map[string]string, out any) error {
	cs, err := g.client()
	if err != nil {
		return err
	}
	return metricsapi.Client{CS: cs}.Get(ctx, path, params, out)
}
