package command

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPIServer serves what the dashboard asks the API server for: the viz
// Service (unless absent) and its service proxy (answer decides), recording
// every proxied request.
type fakeAPIServer struct {
	absent bool
	answer func(w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	seen []*http.Request
}

func (f *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const svc = "/api/v1/namespaces/weft-viz/services/weft-viz"
	switch {
	case r.URL.Path == svc && !f.absent:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"kind":"Service","apiVersion":"v1","metadata":{"name":"weft-viz","namespace":"weft-viz"}}`)
	case strings.HasPrefix(r.URL.Path, vizServicePath+"/") && !f.absent:
		f.mu.Lock()
		f.seen = append(f.seen, r.Clone(context.Background()))
		f.mu.Unlock()
		f.answer(w, r)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"%s not found"}`, r.URL.Path)
	}
}

func (f *fakeAPIServer) last(t *testing.T) *http.Request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		t.Fatal("the API server saw no proxied request")
	}
	return f.seen[len(f.seen)-1]
}

func (f *fakeAPIServer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

// dashboardPage answers like the viz web server: the page at /, JSON
// elsewhere.
func dashboardPage(w http.ResponseWriter, r *http.Request) {
	if strings.TrimPrefix(r.URL.Path, vizServicePath) == "/" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><main id="main"></main>`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `[]`)
}

// kubeconfigFor writes a kubeconfig for srv (TLS: client-go sends
// credentials only over TLS) with a bearer token.
func kubeconfigFor(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	p := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, certificate-authority-data: %s}}]
users: [{name: u, user: {token: the-kubeconfig-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, srv.URL, ca)
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer is a bytes.Buffer safe for the command's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startDashboard runs `weft viz dashboard --port 0` against api until the
// test ends and returns its URL.
func startDashboard(t *testing.T, api *fakeAPIServer, extra ...string) (string, *syncBuffer) {
	t.Helper()
	srv := httptest.NewTLSServer(api)
	t.Cleanup(srv.Close)
	var out, errOut syncBuffer
	root := NewRoot(Config{Out: &out, Err: &errOut})
	root.SetArgs(append([]string{"viz", "dashboard", "--port", "0", "--kubeconfig", kubeconfigFor(t, srv)}, extra...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dashboard after Ctrl-C: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("the dashboard did not stop within 10s of its context ending")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			done <- nil // for the cleanup
			t.Fatalf("dashboard exited: %v\n%s%s", err, out.String(), errOut.String())
		default:
		}
		if line, _, ok := strings.Cut(out.String(), "\n"); ok {
			url := strings.TrimPrefix(line, "weft viz dashboard: ")
			if !strings.HasPrefix(url, "http://127.0.0.1:") {
				t.Fatalf("first line %q does not name a loopback URL", line)
			}
			return url, &errOut
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no URL printed within 10s: %q", out.String())
	return "", nil
}

// rawGet sends one request line as written (no client-side cleaning).
func rawGet(t *testing.T, base, target, host string) int {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if host == "" {
		host = addr
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestVizDashboardProxies(t *testing.T) {
	api := &fakeAPIServer{answer: dashboardPage}
	url, _ := startDashboard(t, api)

	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `id="main"`) || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	req, _ := http.NewRequest("GET", url+"api/v1/stat?resource=deploy&namespace=demo", nil)
	req.Header.Set("Authorization", "Bearer from-the-browser")
	req.Header.Set("Cookie", "session=browser")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := api.last(t)
	if resp.StatusCode != 200 || got.URL.Path != vizServicePath+"/api/v1/stat" || got.URL.RawQuery != "resource=deploy&namespace=demo" {
		t.Errorf("proxied %d to %s?%s", resp.StatusCode, got.URL.Path, got.URL.RawQuery)
	}
	if a := got.Header.Get("Authorization"); a != "Bearer the-kubeconfig-token" {
		t.Errorf("the API server saw Authorization %q, want the kubeconfig's token only (headers %v)", a, got.Header)
	}
	if c := got.Header.Get("Cookie"); c != "" {
		t.Errorf("the browser's cookie reached the API server: %q", c)
	}

	before := api.count()
	for _, tc := range []struct {
		name, method, target, host string
		status                     int
	}{
		{"POST is refused", "POST", "/api/v1/stat", "", 405},
		{"DELETE is refused", "DELETE", "/", "", 405},
		{"dot segments", "GET", "/../../secrets", "", 400},
		{"escaped dot segments", "GET", "/%2e%2e/%2e%2e/api/v1/secrets", "", 400},
		{"escaped slash", "GET", "/a%2F..%2F..%2Fsecrets", "", 400},
		{"doubled slash", "GET", "//api/v1/stat", "", 400},
		{"rebound host", "GET", "/", "attacker.example:80", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var status int
			if tc.method == "GET" {
				status = rawGet(t, url, tc.target, tc.host)
			} else {
				req, _ := http.NewRequest(tc.method, strings.TrimSuffix(url, "/")+tc.target, strings.NewReader("x"))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				status = resp.StatusCode
				if status == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
					t.Errorf("Allow = %q", resp.Header.Get("Allow"))
				}
			}
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
		})
	}
	if n := api.count(); n != before {
		t.Errorf("refused requests reached the API server (%d more)", n-before)
	}
	if s := rawGet(t, url, "/app.js", strings.Replace(strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), "127.0.0.1", "localhost", 1)); s != 200 {
		t.Errorf("localhost:PORT: %d, want 200", s)
	}
}

func TestVizDashboardOpen(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no xdg-open
	url, errOut := startDashboard(t, &fakeAPIServer{answer: dashboardPage}, "--open")
	if want := "no xdg-open on PATH: open " + url + " in a browser"; !strings.Contains(errOut.String(), want) {
		t.Errorf("stderr %q lacks %q", errOut.String(), want)
	}
}

func TestVizDashboardErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, busyPort, _ := net.SplitHostPort(busy.Addr().String())
	for _, tc := range []struct {
		name string
		api  *fakeAPIServer
		args []string
		want string
	}{
		{"not installed", &fakeAPIServer{absent: true}, nil, "the viz extension is not installed (weft viz install | kubectl apply -f -)"},
		{"old viz", &fakeAPIServer{answer: func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }}, nil,
			"serves no dashboard (it predates weft viz dashboard): reinstall it with this weft version (weft viz install | kubectl apply -f -)"},
		{"no ready pod", &fakeAPIServer{answer: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"no endpoints available for service \"weft-viz\"","reason":"ServiceUnavailable","code":503}`)
		}}, nil, "the viz extension has no ready pod (kubectl -n weft-viz rollout status deploy/weft-viz)"},
		{"port in use", &fakeAPIServer{answer: dashboardPage}, []string{"--port", busyPort}, "pass --port N for another port, or --port 0 for a free one"},
		{"bad port", &fakeAPIServer{answer: dashboardPage}, []string{"--port", "70000"}, "--port 70000 is not a port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(tc.api)
			defer srv.Close()
			root := NewRoot(Config{Out: io.Discard, Err: io.Discard})
			root.SetArgs(append([]string{"viz", "dashboard", "--kubeconfig", kubeconfigFor(t, srv)}, tc.args...))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := root.ExecuteContext(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}
