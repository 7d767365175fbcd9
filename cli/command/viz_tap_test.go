package command

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/viz/tap"
)

// demoEvents are what web's proxy reports for one inbound request that
// web answers after an outbound call to books, and a failing call.
func demoEvents() []tap.Event {
	in := func(id uint64) *tapv1.Event {
		return &tapv1.Event{Id: id, Direction: "inbound", Tls: true, ClientId: "spiffe://cluster.local/ns/demo/sa/traffic",
			ServerId: "spiffe://cluster.local/ns/demo/sa/web", TargetAddr: "198.18.0.12:8080", SourceAddr: "198.18.0.20:41234"}
	}
	out := func(id uint64) *tapv1.Event {
		return &tapv1.Event{Id: id, Direction: "outbound", Tls: true, ClientId: "spiffe://cluster.local/ns/demo/sa/web",
			ServerId: "spiffe://cluster.local/ns/demo/sa/books", TargetAddr: "198.18.0.14:7000", SourceAddr: "127.0.0.1:50110",
			DestinationLabels: map[string]string{"deployment": "books", "namespace": "demo", "pod": "books-6d5f-x2"}}
	}
	// authors answers without identity labels: the server identity names it.
	authors := func(id uint64) *tapv1.Event {
		return &tapv1.Event{Id: id, Direction: "outbound", Tls: true, ClientId: "spiffe://cluster.local/ns/demo/sa/web",
			ServerId: "spiffe://cluster.local/ns/demo/sa/authors", TargetAddr: "198.18.0.15:7001"}
	}
	with := func(e *tapv1.Event, kind any) *tapv1.Event {
		switch k := kind.(type) {
		case *tapv1.RequestInit:
			e.Kind = &tapv1.Event_Request{Request: k}
		case *tapv1.ResponseInit:
			e.Kind = &tapv1.Event_Response{Response: k}
		case *tapv1.ResponseEnd:
			e.Kind = &tapv1.Event_End{End: k}
		case *tapv1.Lost:
			e.Kind = &tapv1.Event_Lost{Lost: k}
		}
		return e
	}
	evs := []*tapv1.Event{
		with(in(1), &tapv1.RequestInit{Method: "GET", Scheme: "http", Authority: "web.demo.svc.cluster.local:8080", Path: "/",
			Headers: []*tapv1.Header{{Name: "authorization", Value: "[redacted]"}}}),
		with(out(2), &tapv1.RequestInit{Method: "GET", Scheme: "http", Authority: "books.demo.svc.cluster.local:7000", Path: "/books"}),
		with(out(2), &tapv1.ResponseInit{Status: 200, LatencyUs: 1830}),
		with(out(2), &tapv1.ResponseEnd{GrpcStatus: -1, ResponseBytes: 412, DurationUs: 1990}),
		with(in(1), &tapv1.ResponseInit{Status: 200, LatencyUs: 2410}),
		with(in(1), &tapv1.ResponseEnd{GrpcStatus: -1, ResponseBytes: 1024, DurationUs: 2533}),
		with(out(3), &tapv1.RequestInit{Method: "GET", Authority: "books.demo.svc.cluster.local:7000", Path: "/fail"}),
		with(out(3), &tapv1.ResponseInit{Status: 500, LatencyUs: 950}),
		with(out(3), &tapv1.ResponseEnd{GrpcStatus: -1, ResponseBytes: 22, DurationUs: 990}),
		with(authors(4), &tapv1.RequestInit{Method: "POST", Authority: "authors.demo.svc.cluster.local:7001", Path: "/demo.authors.Authors/GetAuthor"}),
		with(authors(4), &tapv1.ResponseEnd{GrpcStatus: 14, DurationUs: 30100, ErrorKind: "connect", Reset_: true}),
		{Kind: &tapv1.Event_Lost{Lost: &tapv1.Lost{Events: 7}}},
	}
	var outEvs []tap.Event
	for _, e := range evs {
		outEvs = append(outEvs, tap.Event{Namespace: "demo", Pod: "web-7c9d-abcde", Workload: "deploy/web", Event: e})
	}
	// A second pod's stream gets the next stream number.
	outEvs = append(outEvs, tap.Event{Namespace: "demo", Pod: "web-7c9d-fghij", Workload: "deploy/web",
		Event: with(in(1), &tapv1.RequestInit{Method: "GET", Authority: "web.demo.svc.cluster.local:8080", Path: "/stream"})})
	return outEvs
}

func TestTapRenderGolden(t *testing.T) {
	for _, tc := range []struct{ golden, output string }{
		{"viz-tap.txt", "table"}, {"viz-tap-wide.txt", "wide"}, {"viz-tap.jsonl", "json"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var in strings.Builder
			for _, ev := range demoEvents() {
				if err := tap.WriteEvent(&in, ev); err != nil {
					t.Fatal(err)
				}
			}
			var out strings.Builder
			if err := printTap(&out, tap.NewDecoder(strings.NewReader(in.String())), tc.output); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, []byte(out.String()))
		})
	}
}

func TestTapFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no type", []string{"web"}, `resource "web": want TYPE/NAME`},
		{"bad type", []string{"cronjob/x"}, `resource "cronjob/x": want TYPE/NAME`},
		{"bad to", []string{"deploy/web", "--to", "books"}, `--to: resource "books": want TYPE/NAME`},
		{"to-namespace alone", []string{"deploy/web", "--to-namespace", "demo"}, "--to-namespace needs --to"},
		{"bad method", []string{"deploy/web", "--method", "GE T"}, `--method "GE T" is not an HTTP method`},
		{"bad path", []string{"deploy/web", "--path", "books"}, `--path "books" must start with /`},
		{"bad authority", []string{"deploy/web", "--authority", "http://books"}, `--authority "http://books" must be a host or host:port`},
		{"negative max", []string{"deploy/web", "--max", "-1"}, "--max -1 is negative"},
		{"negative rps", []string{"deploy/web", "--max-rps", "-5"}, "--max-rps -5 is negative"},
		{"long duration", []string{"deploy/web", "--duration", "1h"}, "--duration 1h0m0s is out of range"},
		{"bad output", []string{"deploy/web", "-o", "yaml"}, `unknown output format "yaml": use table, wide or json`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range []string{"tap", "top"} {
				if cmd == "top" && tc.name == "bad output" {
					continue
				}
				_, err := run(t, nil, append([]string{"viz", cmd}, tc.args...)...)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error = %v, want %q", cmd, err, tc.want)
				}
			}
		})
	}
}

// fakeTapAPI is a loopback HTTPS server in the API server's place: it
// records tap requests and answers with status and events.
type fakeTapAPI struct {
	mu     sync.Mutex
	paths  []string
	bodies []tap.Request
	status int
	msg    string
	events []tap.Event
}

// booksProfile is books' ServiceProfile as the API server returns it.
const booksProfile = `{"apiVersion":"weft.io/v1alpha1","kind":"ServiceProfile","metadata":{"name":"books.demo.svc.cluster.local","namespace":"demo"},
"spec":{"routes":[{"name":"GET /books","condition":{"method":"GET","pathRegex":"/books"}},{"name":"GET /fail","condition":{"method":"GET","pathRegex":"/fail"}}]}}`

func (f *fakeTapAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/apis/weft.io/v1alpha1/namespaces/") {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/apis/weft.io/v1alpha1/namespaces/demo/serviceprofiles/books.demo.svc.cluster.local" {
			fmt.Fprint(w, booksProfile)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":404,"reason":"NotFound"}`)
		return
	}
	var req tap.Request
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	f.paths, f.bodies = append(f.paths, r.Method+" "+r.URL.Path), append(f.bodies, req)
	f.mu.Unlock()
	if f.status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","code":%d,"reason":"Forbidden","message":%q}`, f.status, f.msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	for _, ev := range f.events {
		_ = tap.WriteEvent(w, ev)
	}
}

// tapCluster starts f and returns the --kubeconfig flag reaching it.
func tapCluster(t *testing.T, f *fakeTapAPI) []string {
	t.Helper()
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: test}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, srv.URL)
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--kubeconfig", kc}
}

func TestTapThroughAPIServer(t *testing.T) {
	f := &fakeTapAPI{events: demoEvents()}
	kc := tapCluster(t, f)
	out, err := run(t, nil, append(kc, "viz", "tap", "deploy/web", "-n", "demo", "--to", "deploy/books", "--path", "/books",
		"--method", "GET", "--max", "20", "--max-rps", "50", "--duration", "30s")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "req id=0:1 proxy=in src=sa/traffic dst=deploy/web tls=true :method=GET") {
		t.Errorf("output:\n%s", out)
	}
	if f.paths[0] != "POST /apis/tap.weft.io/v1alpha1/watch/namespaces/demo/deployments/web/tap" {
		t.Errorf("path = %s", f.paths[0])
	}
	b := f.bodies[0]
	var filter tapv1.Filter
	if err := protojson.Unmarshal(b.Filter, &filter); err != nil {
		t.Fatal(err)
	}
	if b.Max != 20 || b.MaxRPS != 50 || b.Duration != "30s" || filter.GetPathPrefix() != "/books" || filter.GetMethod() != "GET" ||
		filter.GetDirection() != "outbound" || filter.GetDestinationLabels()["deployment"] != "books" || filter.GetDestinationLabels()["namespace"] != "demo" {
		t.Errorf("request = %+v, filter %v", b, &filter)
	}

	out, err = run(t, nil, append(kc, "viz", "top", "deploy/web", "-n", "demo", "--once")...)
	if err != nil {
		t.Fatal(err)
	}
	if f.bodies[1].Duration != "10s" {
		t.Errorf("top --once duration = %q, want 10s", f.bodies[1].Duration)
	}
	for _, want := range []string{"Source", "deploy/books  GET     /fail", "0.00%", "sa/traffic", "100.00%"} {
		if !strings.Contains(out, want) {
			t.Errorf("top output lacks %q:\n%s", want, out)
		}
	}

	out, err = run(t, nil, append(kc, "viz", "top", "deploy/web", "-n", "demo", "--once", "--routes", "--hide-sources")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Route", "deploy/books  GET     GET /books", "deploy/books  GET     GET /fail", "deploy/web    GET     [DEFAULT]", "sa/authors    POST    [DEFAULT]"} {
		if !strings.Contains(out, want) {
			t.Errorf("top --routes output lacks %q:\n%s", want, out)
		}
	}
}

func TestTapDenied(t *testing.T) {
	f := &fakeTapAPI{status: http.StatusForbidden,
		msg: `deployments.tap.weft.io "web" is forbidden: User "system:serviceaccount:demo:nobody" cannot watch resource "deployments/tap" in API group "tap.weft.io" in the namespace "demo"`}
	kc := tapCluster(t, f)
	_, err := run(t, nil, append(kc, "viz", "tap", "deploy/web", "-n", "demo")...)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`missing permission "watch" on "deployments/tap"`,
		"kubectl create clusterrolebinding system-serviceaccount-demo-nobody-tap --clusterrole=weft-viz-tap --serviceaccount=demo:nobody",
		"the API server said"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	f.status, f.msg = http.StatusNotFound, "the server could not find the requested resource"
	if _, err := run(t, nil, append(kc, "viz", "top", "deploy/web", "-n", "demo", "--once")...); err == nil || !strings.Contains(err.Error(), "weft viz install | kubectl apply -f -") {
		t.Errorf("not installed: %v", err)
	}
}
