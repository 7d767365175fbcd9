package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// healthCheck is the gRPC method the tests call (grpc.health.v1, a real
// unary service from grpc-go).
const healthCheck = "/grpc.health.v1.Health/Check"

// healthFunc is a grpc.health.v1 server whose Check runs check.
type healthFunc struct {
	healthpb.UnimplementedHealthServer
	check func(ctx context.Context) error
}

func (h healthFunc) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if err := h.check(ctx); err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// grpcBackends starts n gRPC replicas on 127.0.0.{1..n} sharing one port,
// served by grpc-go's own HTTP/2 transport (which answers errors
// trailers-only); replica i runs check(i, ctx) for every Check.
func grpcBackends(t *testing.T, n int, check func(i int, ctx context.Context) error) (port int, ips []string) {
	t.Helper()
	for try := 0; ; try++ {
		first := listen(t)
		port = first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for i := 2; i <= n; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", i, port))
			if err != nil {
				break
			}
			t.Cleanup(func() { ln.Close() })
			lns = append(lns, ln)
		}
		if len(lns) < n {
			if try == 10 {
				t.Fatal("no common port for the backends")
			}
			continue
		}
		ips = nil
		for i, ln := range lns {
			ips = append(ips, fmt.Sprintf("127.0.0.%d", i+1))
			srv := grpc.NewServer()
			healthpb.RegisterHealthServer(srv, healthFunc{check: func(ctx context.Context) error { return check(i, ctx) }})
			go srv.Serve(ln)
			t.Cleanup(srv.Stop)
		}
		return port, ips
	}
}

// grpcMeshClient is one gRPC client connection to the proxy for the books
// service; dials counts the TCP connections it opened.
func grpcMeshClient(t *testing.T, h *harness) (healthpb.HealthClient, *atomic.Int64) {
	t.Helper()
	dials := new(atomic.Int64)
	cc, err := grpc.NewClient("passthrough:///"+h.outbound(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(booksHost+":80"),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return healthpb.NewHealthClient(cc), dials
}

// check calls Check with a 10 s deadline; it returns the status code and
// the weft-proxy-error trailer.
func check(c healthpb.HealthClient) (codes.Code, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var tr metadata.MD
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Trailer(&tr))
	perr := ""
	if v := tr.Get("weft-proxy-error"); len(v) > 0 {
		perr = v[0]
	}
	return status.Code(err), perr
}

// waitRoute sends requests until the route appears in the metrics (the
// profile has arrived).
func waitRoute(t *testing.T, h *harness, route string, send func()) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(scrape(t, h), `rt_route="`+route+`"`) {
		if time.Now().After(deadline) {
			t.Fatalf("route %q never matched", route)
		}
		send()
		time.Sleep(20 * time.Millisecond)
	}
}

func routeSeries(name, route string) string {
	return name + `{direction="outbound",dst="` + booksHost + `:80",rt_route="` + route + `"}`
}

// TestH2GRPCBalancingOneConnection: gRPC to three replicas over ONE client
// connection, one replica 50 ms slower; the h2 layer reports every request
// to the balancer (RTT to the response headers), so P2C over peak-EWMA
// gives the slow one < 15 %.
func TestH2GRPCBalancingOneConnection(t *testing.T) {
	var served [3]atomic.Int64
	port, ips := grpcBackends(t, 3, func(i int, ctx context.Context) error {
		if i == 2 {
			time.Sleep(50 * time.Millisecond)
		}
		served[i].Add(1)
		return nil
	})
	cp := newControlPlane(t, port, ips...)
	h := meshClient(t, cp, port, nil)
	c, dials := grpcMeshClient(t, h)
	if code, perr := check(c); code != codes.OK {
		t.Fatalf("warm-up: %v %s", code, perr)
	}
	for i := range served {
		served[i].Store(0)
	}
	const workers, each = 6, 60
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if code, perr := check(c); code != codes.OK {
					t.Errorf("status %v %s", code, perr)
					return
				}
			}
		}()
	}
	wg.Wait()
	fast0, fast1, slow := served[0].Load(), served[1].Load(), served[2].Load()
	total := fast0 + fast1 + slow
	t.Logf("gRPC on %d connection(s): fast %d / %d, slow %d of %d", dials.Load(), fast0, fast1, slow, total)
	if dials.Load() != 1 {
		t.Fatalf("client connections: %d", dials.Load())
	}
	if total != workers*each || slow*100 >= total*15 || fast0 == 0 || fast1 == 0 {
		t.Fatalf("distribution %d %d %d", fast0, fast1, slow)
	}
}

// TestH2Retries: over HTTP/2, a retryable route whose backend fails every
// other request succeeds more often through retries (body replayed), the
// retries stay within the budget and route_actual_request_total exceeds
// route_request_total; a non-retryable POST is never retried; a retryable
// gRPC route answering UNAVAILABLE every other call is retried too.
func TestH2Retries(t *testing.T) {
	var n atomic.Int64
	port, ips := backends(t, 1, func(_ int, w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if n.Add(1)%2 == 0 {
			http.Error(w, "flaky", 500)
			return
		}
		fmt.Fprintf(w, "ok %s %s", r.Proto, body)
	})
	cp := newControlPlane(t, port, ips...)
	cp.profile(t, map[string]any{
		"routes": []any{
			map[string]any{"name": "POST /flaky", "condition": map[string]any{"method": "POST", "pathRegex": "/flaky"}, "isRetryable": true},
			map[string]any{"name": "POST /once", "condition": map[string]any{"method": "POST", "pathRegex": "/once"}},
		},
		"retryBudget": map[string]any{"retryRatio": 0.2, "minRetriesPerSecond": int64(1), "ttl": "10s"},
	})
	h := meshClient(t, cp, port, nil)
	c := h2cClient()
	post := func(path string) (int, string) {
		req, _ := http.NewRequest("POST", "http://"+h.outbound()+path, strings.NewReader("payload"))
		req.Host = booksHost + ":80"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	waitRoute(t, h, "POST /flaky", func() { post("/flaky") })
	base := scrape(t, h)
	const reqs = 200
	okOnce, okFlaky := 0, 0
	for range reqs {
		if code, _ := post("/once"); code == 200 {
			okOnce++
		}
	}
	for range reqs {
		code, body := post("/flaky")
		if code == 200 {
			okFlaky++
			if body != "ok HTTP/2.0 payload" {
				t.Fatalf("replayed body %q", body)
			}
		}
	}
	m := scrape(t, h)
	promtoolCheck(t, m)
	delta := func(name, route string) int64 {
		return counter(m, routeSeries(name, route)) - counter(base, routeSeries(name, route))
	}
	requests, actual := delta("route_request_total", "POST /flaky"), delta("route_actual_request_total", "POST /flaky")
	onceReqs, onceActual := delta("route_request_total", "POST /once"), delta("route_actual_request_total", "POST /once")
	retries := actual - requests
	t.Logf("h2 not retryable: %d/%d ok (%d attempts); retryable: %d/%d ok with %d retries", okOnce, reqs, onceActual, okFlaky, reqs, retries)
	all := counter(m, routeSeries("route_request_total", "POST /flaky")) + counter(m, routeSeries("route_request_total", "POST /once"))
	budget := 0.2*float64(all) + 10
	if requests != reqs || actual <= requests || float64(retries) > budget+1 {
		t.Fatalf("requests %d, actual %d, budget %.0f", requests, actual, budget)
	}
	if onceReqs != reqs || onceActual != onceReqs {
		t.Fatalf("non-retryable POST retried: %d requests, %d attempts", onceReqs, onceActual)
	}
	if okOnce > reqs/2+1 || okFlaky < okOnce+int(retries)/4 {
		t.Fatalf("success without retries %d, with %d (retries %d)", okOnce, okFlaky, retries)
	}
	for _, want := range []string{
		`route_response_total{direction="outbound",dst="` + booksHost + `:80",rt_route="POST /once",status_code="500",classification="failure"}`,
		`route_actual_response_total{direction="outbound",dst="` + booksHost + `:80",rt_route="POST /flaky",status_code="500",classification="failure"}`,
	} {
		if !strings.Contains(m, want) {
			t.Fatalf("route metrics lack %s:\n%s", want, grepLines(m, "route_"))
		}
	}
}

// TestH2GRPCRetries: a retryable gRPC route whose backend answers
// UNAVAILABLE (trailers-only) every other call: retried at the response
// head, so (budget permitting) the client sees far fewer failures, and the
// rt_route metrics classify by grpc-status.
func TestH2GRPCRetries(t *testing.T) {
	var n atomic.Int64
	port, ips := grpcBackends(t, 1, func(_ int, _ context.Context) error {
		if n.Add(1)%2 == 0 {
			return status.Error(codes.Unavailable, "flaky")
		}
		return nil
	})
	cp := newControlPlane(t, port, ips...)
	cp.profile(t, map[string]any{
		"routes":      []any{map[string]any{"name": "health", "condition": map[string]any{"method": "POST", "pathRegex": healthCheck}, "isRetryable": true}},
		"retryBudget": map[string]any{"retryRatio": 0.5, "minRetriesPerSecond": int64(10), "ttl": "10s"},
	})
	h := meshClient(t, cp, port, nil)
	c, _ := grpcMeshClient(t, h)
	waitRoute(t, h, "health", func() { check(c) })
	base := scrape(t, h)
	const reqs = 100
	ok := 0
	for range reqs {
		if code, _ := check(c); code == codes.OK {
			ok++
		}
	}
	m := scrape(t, h)
	promtoolCheck(t, m)
	requests := counter(m, routeSeries("route_request_total", "health")) - counter(base, routeSeries("route_request_total", "health"))
	actual := counter(m, routeSeries("route_actual_request_total", "health")) - counter(base, routeSeries("route_actual_request_total", "health"))
	t.Logf("gRPC retryable: %d/%d ok, %d attempts", ok, reqs, actual)
	if requests != reqs || actual <= requests || ok < reqs*3/4 {
		t.Fatalf("ok %d, requests %d, attempts %d", ok, requests, actual)
	}
	if !strings.Contains(m, `route_actual_response_total{direction="outbound",dst="`+booksHost+`:80",rt_route="health",status_code="200",classification="failure"}`) {
		t.Fatalf("gRPC failures not classified:\n%s", grepLines(m, "route_"))
	}
}

// TestH2GRPCRouteTimeout: a gRPC route with a 100 ms timeout answers
// DEADLINE_EXCEEDED with weft-proxy-error: timeout, and the backend sees
// its call cancelled.
func TestH2GRPCRouteTimeout(t *testing.T) {
	cancelled := make(chan struct{}, 64)
	var slow atomic.Bool
	port, ips := grpcBackends(t, 1, func(_ int, ctx context.Context) error {
		if !slow.Load() {
			return nil
		}
		select {
		case <-ctx.Done():
			cancelled <- struct{}{}
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return nil
		}
	})
	cp := newControlPlane(t, port, ips...)
	cp.profile(t, map[string]any{"routes": []any{
		map[string]any{"name": "health", "condition": map[string]any{"method": "POST", "pathRegex": healthCheck}, "timeout": "100ms"},
	}})
	h := meshClient(t, cp, port, nil)
	c, _ := grpcMeshClient(t, h)
	waitRoute(t, h, "health", func() { check(c) })
	slow.Store(true)
	start := time.Now()
	code, perr := check(c)
	if code != codes.DeadlineExceeded || perr != "timeout" {
		t.Fatalf("slow call: %v %q", code, perr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend call was not cancelled")
	}
	m := scrape(t, h)
	promtoolCheck(t, m)
	if !strings.Contains(m, `route_response_total{direction="outbound",dst="`+booksHost+`:80",rt_route="health",status_code="200",classification="failure"}`) {
		t.Fatalf("route metrics:\n%s", grepLines(m, "route_"))
	}
}
