// Package command holds the weft CLI's cobra commands. cli/cmd/weft only
// wires a Config into NewRoot; tests run the same commands with a fake
// cluster and a fixed certificate generator.
package command

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/internal/kubeclient"
	"github.com/weftmesh/weft/internal/version"
	"github.com/weftmesh/weft/manifests"
)

// Config wires the CLI to the world.
type Config struct {
	// Out receives command output (manifests); Err diagnostics.
	Out, Err io.Writer
	// NewClient builds a cluster client from the global flags; nil means
	// kubeclient (kubeconfig, then in-cluster) with ClientTimeout.
	NewClient func(kubeclient.Options) (kubernetes.Interface, error)
	// Generator makes certificates; nil means fresh keys (manifests.PKIGenerator).
	Generator manifests.Generator
	// Now is the clock certificates are checked against; nil means time.Now.
	Now func() time.Time
	// CRDWait is how long install waits for just-applied CRDs to be served;
	// 0 means DefaultCRDWait.
	CRDWait time.Duration
}

// DefaultCRDWait bounds install's wait for the ServiceProfile CRD.
const DefaultCRDWait = 30 * time.Second

// ClientTimeout bounds each request to the cluster, so an unreachable
// cluster fails a command in seconds rather than hanging.
const ClientTimeout = 10 * time.Second

// globals are the kubectl-like flags every command has.
type globals struct {
	kube      kubeclient.Options
	namespace string
	// values is the install values struct: --weft-namespace and every
	// install flag edit it directly.
	values manifests.Values
	cfg    Config
}

// client returns a cluster client for the global flags.
func (g *globals) client() (kubernetes.Interface, error) {
	return g.cfg.NewClient(g.kube)
}

// NewRoot returns the weft command with its subcommands.
func NewRoot(cfg Config) *cobra.Command {
	if cfg.NewClient == nil {
		cfg.NewClient = defaultClient
	}
	if cfg.Generator == nil {
		cfg.Generator = manifests.PKIGenerator{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CRDWait == 0 {
		cfg.CRDWait = DefaultCRDWait
	}
	g := &globals{values: manifests.DefaultValues(), cfg: cfg}
	root := &cobra.Command{
		Use:           "weft",
		Short:         "weft: a zero-config service mesh for Kubernetes",
		Long:          "weft installs and operates the weft service mesh. See docs/cli.md.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(cfg.Out)
	root.SetErr(cfg.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&g.kube.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	pf.StringVar(&g.kube.Context, "context", "", "kubeconfig context to use (default: the current context)")
	pf.StringVarP(&g.namespace, "namespace", "n", "", "namespace of the workloads a command acts on (default: the context's namespace)")
	pf.StringVar(&g.values.ControlPlaneNamespace, "weft-namespace", g.values.ControlPlaneNamespace, "namespace of the weft control plane")
	root.AddCommand(installCmd(g), uninstallCmd(g), versionCmd(g), injectCmd(g), uninjectCmd(g), vizCmd(g), checkCmd(g))
	return root
}

func defaultClient(opts kubeclient.Options) (kubernetes.Interface, error) {
	rc, err := kubeclient.Config(opts)
	if err != nil {
		return nil, err
	}
	rc.Timeout = ClientTimeout
	rc.UserAgent = "weft/" + version.Version
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create kubernetes client: %w", err)
	}
	return cs, nil
}
