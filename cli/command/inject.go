package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/manifests"
)

// maxInput bounds one input (file, stdin or URL).
const maxInput = 32 << 20

func injectCmd(g *globals) *cobra.Command {
	var manual, ignoreCluster bool
	cmd := &cobra.Command{
		Use:   "inject FILE|DIR|URL|- ...",
		Short: "Add weft to Kubernetes manifests (annotation, or the full sidecar with --manual)",
		Long: `inject reads manifests from files, directories (*.yaml, *.yml, *.json, recursively),
URLs or standard input ("-"), and writes them to standard output with weft added to every
workload: by default the weft.io/inject=enabled annotation (the webhook injects the proxy
when pods are created); with --manual the whole sidecar, rendered by the same code the
webhook runs. Other documents pass through unchanged. A report goes to standard error.`,
		Example: "  kubectl get deploy -o yaml | weft inject - | kubectl apply -f -\n  weft inject --manual app.yaml > app-meshed.yaml",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mode := injector.Annotate
			var values injector.Values
			if manual {
				mode = injector.Manual
				v, err := injectValues(cmd.Context(), g, ignoreCluster)
				if err != nil {
					return err
				}
				values = v
			}
			return transform(cmd, args, mode, values)
		},
	}
	cmd.Flags().BoolVar(&manual, "manual", false, "render the full proxy sidecar instead of the annotation")
	cmd.Flags().BoolVar(&ignoreCluster, "ignore-cluster", false, "with --manual: use default install values instead of reading weft-config from the cluster")
	return cmd
}

func uninjectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "uninject FILE|DIR|URL|- ...",
		Short: "Remove what weft inject (either mode) added to manifests",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return transform(cmd, args, injector.Uninject, injector.Values{})
		},
	}
}

// injectValues are the install values --manual renders with: the cluster's
// weft-config, or the defaults with --ignore-cluster.
func injectValues(ctx context.Context, g *globals, ignoreCluster bool) (injector.Values, error) {
	if ignoreCluster {
		return g.values.Values, nil
	}
	cs, err := g.client()
	if err != nil {
		return injector.Values{}, fmt.Errorf("weft inject --manual reads the install values (%s/%s) from the cluster: %w\n(pass --ignore-cluster to inject with the default values instead)", g.values.ControlPlaneNamespace, manifests.ConfigName, err)
	}
	ns := g.values.ControlPlaneNamespace
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, manifests.ConfigName, metav1.GetOptions{})
	if err != nil {
		return injector.Values{}, fmt.Errorf("read %s/%s: %w (is weft installed? use --ignore-cluster to render with defaults)", ns, manifests.ConfigName, err)
	}
	v, err := manifests.ParseConfig(cm.Data)
	if err != nil {
		return injector.Values{}, err
	}
	return v.Values, nil
}

func transform(cmd *cobra.Command, args []string, mode injector.Mode, v injector.Values) error {
	inputs, err := readInputs(cmd.Context(), cmd.InOrStdin(), args)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	for i, in := range inputs {
		res, outcomes, err := injector.InjectManifests(in.data, mode, v)
		if err != nil {
			return fmt.Errorf("%s: %w", in.name, err)
		}
		if i > 0 {
			fmt.Fprintln(out, "---")
		}
		if _, err := out.Write(res); err != nil {
			return err
		}
		for _, o := range outcomes {
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", in.name, o)
		}
	}
	return nil
}

type input struct {
	name string
	data []byte
}

// readInputs expands args into inputs: "-" is standard input, http(s) URLs
// are fetched, directories are walked for YAML and JSON files in name order.
func readInputs(ctx context.Context, stdin io.Reader, args []string) ([]input, error) {
	var out []input
	for _, arg := range args {
		switch {
		case arg == "-":
			b, err := readLimited(stdin)
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			out = append(out, input{"stdin", b})
		case strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://"):
			b, err := fetch(ctx, arg)
			if err != nil {
				return nil, err
			}
			out = append(out, input{arg, b})
		default:
			files, err := manifestFiles(arg)
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					return nil, fmt.Errorf("read %s: %w", f, err)
				}
				out = append(out, input{f, b})
			}
		}
	}
	return out, nil
}

func manifestFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", path, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("directory %s holds no .yaml, .yml or .json file", path)
	}
	sort.Strings(files)
	return files, nil
}

func fetch(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	b, err := readLimited(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	return b, nil
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxInput {
		return nil, errors.New("input larger than 32 MiB")
	}
	return b, nil
}
