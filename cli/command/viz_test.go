package command

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	restclient "k8s.io/client-go/rest"
	clienttesting "k8s.io/client-go/testing"

	"github.com/weftmesh/weft/viz/metricsapi"
	"github.com/weftmesh/weft/viz/window"
)

func TestVizInstallGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"viz-install.yaml", []string{"viz", "install"}},
		{"viz-install-custom.yaml", []string{"viz", "install", "--scrape-interval", "5s", "--window", "30m", "--memory-limit", "1Gi", "--controller-image", "registry.example/weft/controller"}},
		{"viz-uninstall.yaml", []string{"viz", "uninstall"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, err := run(t, nil, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, []byte(out))
		})
	}
	if _, err := run(t, nil, "viz", "install", "--window", "1s"); err == nil || !strings.Contains(err.Error(), "--window 1s is shorter than --scrape-interval 10s") {
		t.Errorf("short window: %v", err)
	}
}

// proxyAnswer answers service-proxy GETs with body and records their
// paths and parameters.
type proxyAnswer struct {
	body  []byte
	calls []clienttesting.ProxyGetAction
}

type staticWrapper struct{ body []byte }

func (s staticWrapper) DoRaw(context.Context) ([]byte, error) { return s.body, nil }
func (s staticWrapper) Stream(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(string(s.body))), nil
}

// installedViz is a fake cluster with the viz Service, whose service proxy
// answers body as JSON.
func installedViz(t *testing.T, body any) (*proxyAnswer, *fake.Clientset) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	pa := &proxyAnswer{body: b}
	cs := cluster(true, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: metricsapi.Namespace, Name: metricsapi.ServiceName}})
	cs.Fake.PrependProxyReactor("services", func(a clienttesting.Action) (bool, restclient.ResponseWrapper, error) {
		pa.calls = append(pa.calls, a.(clienttesting.ProxyGetAction))
		return true, staticWrapper{pa.body}, nil
	})
	return pa, cs
}

func f64(v float64) *float64 { return &v }

func TestVizStatFromWindow(t *testing.T) {
	rows := []window.Row{{Namespace: "demo", Type: "deploy", Name: "web", Pods: 2, Meshed: 2,
		Signals: window.Signals{Requests: 600, Success: f64(0.95), RPS: 10, P50: f64(3), P95: f64(9), P99: f64(20), TCPConn: 4}}}
	for _, tc := range []struct {
		name       string
		args       []string
		wantParams map[string]string
		wantOut    []string
	}{
		{"legacy no args", []string{"viz", "stat", "-n", "demo"},
			map[string]string{"resource": "deploy", "namespace": "demo", "window": "1m0s"},
			[]string{"NAME", "LATENCY_P99", "deploy/web", "2/2", "95.00%", "10.0rps", "3ms", "20ms"}},
		{"type and name", []string{"viz", "stat", "deployment/web", "-n", "demo", "-t", "5m", "--to", "svc/books"},
			map[string]string{"resource": "deployment/web", "namespace": "demo", "window": "5m0s", "to": "svc/books"},
			[]string{"deploy/web"}},
		{"all namespaces wide", []string{"viz", "stat", "ns", "-A", "-o", "wide"},
			map[string]string{"resource": "ns", "namespace": ""},
			[]string{"NAMESPACE", "MTLS", "demo"}},
		{"from with namespace", []string{"viz", "stat", "po", "-n", "demo", "--from", "deploy/load", "--from-namespace", "load"},
			map[string]string{"resource": "po", "from": "deploy/load", "fromNamespace": "load"},
			[]string{"deploy/web"}},
		{"json", []string{"viz", "stat", "deploy", "-n", "demo", "-o", "json"},
			map[string]string{"resource": "deploy"},
			[]string{`"requests": 600`, `"latencyP99Ms": 20`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pa, cs := installedViz(t, rows)
			out, errOut, err := runIO(t, cs, "", tc.args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			if errOut != "" {
				t.Errorf("stderr = %q, want nothing when the extension answers", errOut)
			}
			if len(pa.calls) != 1 {
				t.Fatalf("%d proxy calls, want 1", len(pa.calls))
			}
			c := pa.calls[0]
			if c.GetPath() != metricsapi.StatPath || c.GetName() != metricsapi.ServiceName || c.GetNamespace() != metricsapi.Namespace || c.GetPort() != "8084" {
				t.Errorf("proxied to %s/%s:%s%s", c.GetNamespace(), c.GetName(), c.GetPort(), c.GetPath())
			}
			for k, v := range tc.wantParams {
				if got := c.GetParams()[k]; got != v {
					t.Errorf("param %s = %q, want %q", k, got, v)
				}
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestVizRoutesAndEdges(t *testing.T) {
	pa, cs := installedViz(t, []window.RouteRow{{Route: "GET /books", Authority: "books.demo.svc.cluster.local:7000",
		Signals: window.Signals{Success: f64(1), RPS: 2}, ActualSuccess: f64(0.5), ActualRPS: 4}})
	out, _, err := runIO(t, cs, "", "viz", "routes", "svc/books", "-n", "demo", "-o", "wide")
	if err != nil || !strings.Contains(out, "GET /books") || !strings.Contains(out, "ACTUAL_SUCCESS") || !strings.Contains(out, "50.00%") {
		t.Fatalf("routes: %v\n%s", err, out)
	}
	if p := pa.calls[0].GetPath(); p != metricsapi.RoutesPath {
		t.Errorf("routes path = %s", p)
	}
	pa, cs = installedViz(t, []window.Edge{{SrcNamespace: "demo", Src: "web", DstNamespace: "demo", Dst: "books", Secured: true,
		ClientID: "spiffe://cluster.local/ns/demo/sa/web", ServerID: "spiffe://cluster.local/ns/demo/sa/books"}})
	out, _, err = runIO(t, cs, "", "viz", "edges", "deploy", "-n", "demo", "-o", "wide")
	if err != nil || !strings.Contains(out, "books") || !strings.Contains(out, "√") || !strings.Contains(out, "sa/books") {
		t.Fatalf("edges: %v\n%s", err, out)
	}
	if p := pa.calls[0].GetPath(); p != metricsapi.EdgesPath {
		t.Errorf("edges path = %s", p)
	}
}

func TestVizQueryErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown type", []string{"viz", "stat", "foo"}, `unknown resource type "foo": use one of deploy, sts, ds, job, po, svc, ns, authority`},
		{"bad from", []string{"viz", "stat", "deploy", "--from", "cronjob/x"}, `--from: unknown resource type "cronjob"`},
		{"from and to", []string{"viz", "stat", "deploy", "--from", "deploy/a", "--to", "deploy/b"}, "pass --from or --to, not both"},
		{"-n and -A", []string{"viz", "stat", "deploy", "-n", "demo", "-A"}, "pass -n NAMESPACE or -A, not both"},
		{"bad output", []string{"viz", "stat", "deploy", "-o", "yaml"}, `unknown output format "yaml": use table, wide or json`},
		{"bad time window", []string{"viz", "stat", "deploy", "-t", "0s"}, "--time-window 0s is not positive"},
		{"routes of a pod", []string{"viz", "routes", "po/x"}, `routes needs svc/NAME or deploy/NAME, not "po/x"`},
		{"routes without name", []string{"viz", "routes", "svc"}, "routes needs svc/NAME or deploy/NAME"},
		{"edges of a name", []string{"viz", "edges", "deploy/web"}, `edges takes a resource type such as deploy, not "deploy/web"`},
		{"window with pods", []string{"viz", "stat", "po", "--window", "5s"}, "--window measures directly, which covers only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cs := installedViz(t, []window.Row{})
			_, _, err := runIO(t, cs, "", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestVizNotInstalled: stat falls back to the direct scrape and says so on
// stderr; what the direct scrape cannot answer, and routes and edges, name
// the install command.
func TestVizNotInstalled(t *testing.T) {
	_, errOut, err := runIO(t, cluster(true), "", "viz", "stat", "-n", "empty", "--window", "1s", "-o", "json")
	if err == nil || !strings.Contains(err.Error(), "no running pods in namespace empty") || errOut != "" {
		t.Fatalf("explicit --window: %v, stderr %q", err, errOut)
	}
	_, errOut, err = runIO(t, cluster(true), "", "viz", "stat", "deploy", "-n", "empty")
	if !strings.Contains(errOut, "the viz extension is not installed (weft viz install | kubectl apply -f -): measuring directly") {
		t.Errorf("fallback stderr = %q", errOut)
	}
	if err == nil || !strings.Contains(err.Error(), "no running pods in namespace empty") {
		t.Errorf("fallback: %v", err)
	}
	for _, args := range [][]string{{"viz", "stat", "svc", "-n", "demo"}, {"viz", "stat", "deploy", "-A"}, {"viz", "edges", "deploy"}, {"viz", "routes", "svc/books"}} {
		_, _, err := runIO(t, cluster(true), "", args...)
		if !errors.Is(err, metricsapi.ErrNotInstalled) {
			t.Errorf("%v: %v, want ErrNotInstalled", args, err)
		}
	}
}
