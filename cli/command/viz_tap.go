package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/internal/kubeclient"
	"github.com/weftmesh/weft/internal/version"
	"github.com/weftmesh/weft/viz/tap"
)

// tapFlags are the filters and limits tap and top share; each zero value
// is the flag's default meaning (no filter, no limit).
type tapFlags struct {
	to, toNS                string
	method, path, authority string
	maxRPS, max             int
	duration                time.Duration
}

func (f *tapFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "only requests to this resource (TYPE/NAME, e.g. deploy/books or svc/books)")
	fl.StringVar(&f.toNS, "to-namespace", "", "namespace of --to (default: -n)")
	fl.StringVar(&f.method, "method", "", "only requests with this HTTP method (e.g. GET)")
	fl.StringVar(&f.path, "path", "", "only requests whose path starts with this prefix (e.g. /books)")
	fl.StringVar(&f.authority, "authority", "", "only requests with this :authority (host or host:port)")
	fl.IntVar(&f.maxRPS, "max-rps", 0, "events per second each proxy sends (0: the proxy's default, 100)")
	fl.IntVar(&f.max, "max", 0, "stop after this many requests (0: no limit)")
	fl.DurationVar(&f.duration, "duration", 0, "stop after this long (0: until interrupted, at most "+tap.MaxDuration.String()+")")
}

var methodToken = regexp.MustCompile(`^[A-Za-z]+$`)

// destinationLabels are the proxy's labels (dst_* without the prefix) that
// name a --to resource.
var destinationLabels = map[string]string{
	"deployments": "deployment", "statefulsets": "statefulset", "daemonsets": "daemonset",
	"jobs": "job", "pods": "pod", "services": "service",
}

// request validates the flags and returns what to tap and the API request.
func (f *tapFlags) request(g *globals, resource string) (tap.Target, tap.Request, error) {
	ns := g.namespace
	if ns == "" {
		ns = "default"
	}
	t, err := tap.ParseTarget(resource, ns)
	if err != nil {
		return t, tap.Request{}, err
	}
	filter := &tapv1.Filter{Method: f.method, PathPrefix: f.path, Authority: f.authority}
	switch {
	case f.method != "" && !methodToken.MatchString(f.method):
		return t, tap.Request{}, fmt.Errorf("--method %q is not an HTTP method: use e.g. GET or POST", f.method)
	case f.path != "" && !strings.HasPrefix(f.path, "/"):
		return t, tap.Request{}, fmt.Errorf("--path %q must start with /: use e.g. /books", f.path)
	case strings.Contains(f.authority, "/"):
		return t, tap.Request{}, fmt.Errorf("--authority %q must be a host or host:port, without scheme or path: use e.g. books.demo.svc.cluster.local:7000", f.authority)
	case f.max < 0:
		return t, tap.Request{}, fmt.Errorf("--max %d is negative: use 0 for no limit", f.max)
	case f.maxRPS < 0:
		return t, tap.Request{}, fmt.Errorf("--max-rps %d is negative: use 0 for the proxy's default", f.maxRPS)
	case f.duration < 0 || f.duration > tap.MaxDuration:
		return t, tap.Request{}, fmt.Errorf("--duration %s is out of range: use a duration up to %s, or 0 for no limit", f.duration, tap.MaxDuration)
	case f.toNS != "" && f.to == "":
		return t, tap.Request{}, errors.New("--to-namespace needs --to: e.g. --to deploy/books --to-namespace demo")
	}
	if f.to != "" {
		toNS := f.toNS
		if toNS == "" {
			toNS = ns
		}
		to, err := tap.ParseTarget(f.to, toNS)
		if err != nil {
			return t, tap.Request{}, fmt.Errorf("--to: %w", err)
		}
		filter.Direction = "outbound"
		filter.DestinationLabels = map[string]string{"namespace": to.Namespace}
		if l := destinationLabels[to.Resource]; l != "" {
			filter.DestinationLabels[l] = to.Name
		}
	}
	raw, err := protojson.Marshal(filter)
	if err != nil {
		return t, tap.Request{}, fmt.Errorf("encode tap filter: %w", err)
	}
	req := tap.Request{Filter: raw, Max: f.max, MaxRPS: f.maxRPS}
	if f.duration > 0 {
		req.Duration = f.duration.String()
	}
	return t, req, nil
}

func vizTapCmd(g *globals) *cobra.Command {
	f := &tapFlags{}
	var output string
	cmd := &cobra.Command{
		Use:   "tap RESOURCE",
		Short: "Watch live requests of a resource's meshed pods",
		Long: `tap streams the requests a resource's meshed pods receive and send, as their
proxies see them: one line when a request starts (req), when its response
starts (rsp) and when it ends (end). RESOURCE is TYPE/NAME with TYPE one of
deploy, sts, ds, job, pod, svc, ns. It goes through the Kubernetes API server
(the viz extension's tap API), which checks that you may watch RESOURCE/tap:
see docs/viz-tap.md. Header values such as Authorization and Cookie are
redacted by the proxies; bodies are never shown.`,
		Example: `  weft viz tap deploy/web -n demo
  weft viz tap deploy/web -n demo --to deploy/books --path /books --max 20
  weft viz tap ns/demo --method POST -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTapOutput(output); err != nil {
				return err
			}
			_, _, stream, err := f.start(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			defer stream.Close()
			if err := printTap(cmd.OutOrStdout(), tap.NewDecoder(stream), output); err != nil && cmd.Context().Err() == nil {
				return err
			}
			return nil // the tap ended, or was interrupted
		},
	}
	f.add(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table (one line per event), wide (with namespaces, pods and identities) or json (JSON lines)")
	return cmd
}

func checkTapOutput(o string) error {
	switch o {
	case "table", "wide", "json":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use table, wide or json", o)
}

// start is what tap and top do first: the request from the flags, a
// client of the API server, and the opened tap stream (the caller closes
// it).
func (f *tapFlags) start(ctx context.Context, g *globals, resource string) (tap.Target, kubernetes.Interface, io.ReadCloser, error) {
	t, req, err := f.request(g, resource)
	if err != nil {
		return t, nil, nil, err
	}
	cs, err := tapClient(g)
	if err != nil {
		return t, nil, nil, err
	}
	stream, err := openTap(ctx, cs, t, req)
	return t, cs, stream, err
}

// tapClient is a client for the global flags without an overall timeout:
// a tap lasts as long as asked, bounded by its context.
func tapClient(g *globals) (kubernetes.Interface, error) {
	opts := g.kube
	opts.UserAgent = "weft/" + version.Version
	rc, err := kubeclient.Config(opts)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("create kubernetes client: %w", err)
	}
	return cs, nil
}

// openTap POSTs req through the API server and returns the event stream.
func openTap(ctx context.Context, cs kubernetes.Interface, t tap.Target, req tap.Request) (io.ReadCloser, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode tap request: %w", err)
	}
	stream, err := cs.CoreV1().RESTClient().Post().AbsPath(tap.Path(t)).
		SetHeader("Content-Type", "application/json").Body(body).Stream(ctx)
	if err != nil {
		return nil, tapError(t, err)
	}
	return stream, nil
}

var forbiddenUser = regexp.MustCompile(`User "([^"]*)"`)

// tapError turns the API server's answer into what to do about it.
func tapError(t tap.Target, err error) error {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		return fmt.Errorf("tap %s/%s in %s: %w", t.Resource, t.Name, t.Namespace, err)
	}
	msg := st.Status().Message
	switch st.Status().Code {
	case http.StatusForbidden:
		if strings.Contains(msg, "kubectl create clusterrolebinding") {
			return errors.New(msg) // the tap API's own denial
		}
		user := "USER"
		if m := forbiddenUser.FindStringSubmatch(msg); m != nil {
			user = m[1]
		}
		return fmt.Errorf("%s\n(the API server said: %s)", tap.DeniedMessage(user, t), msg)
	case http.StatusNotFound:
		if strings.Contains(msg, "could not find the requested resource") {
			return fmt.Errorf("the tap API (%s/%s) is not served: install the viz extension with `weft viz install | kubectl apply -f -`", tap.Group, tap.Version)
		}
	case http.StatusServiceUnavailable:
		return fmt.Errorf("the tap API is unavailable: %s\ncheck: kubectl get apiservice %s.%s; kubectl -n weft-viz logs deploy/weft-viz", msg, tap.Version, tap.Group)
	}
	return fmt.Errorf("tap %s/%s in %s: %s", t.Resource, t.Name, t.Namespace, msg)
}

// printTap writes each event as it arrives until the stream ends.
func printTap(w io.Writer, d *tap.Decoder, output string) error {
	ids := &streamIDs{}
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var line string
		if output == "json" {
			line, err = tapJSON(ev)
			if err != nil {
				return err
			}
		} else {
			line = tapLine(ev, ids, output == "wide")
		}
		if _, err := io.WriteString(w, line+"\n"); err != nil {
			return err
		}
	}
}
