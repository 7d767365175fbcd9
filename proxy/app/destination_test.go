package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
	"github.com/weftmesh/weft/destination"
	"github.com/weftmesh/weft/proxy/config"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
	"github.com/weftmesh/weft/proxy/mtls"
)

const booksHost = "books.demo.svc.cluster.local"

// controlPlane is the real destination service over fake clientsets, on
// loopback, with one Service "books" whose endpoints the test sets.
type controlPlane struct {
	kube   *fake.Clientset
	dyn    *dynamicfake.FakeDynamicClient
	addr   string
	port   int32 // the endpoints' port
	cancel context.CancelFunc
	done   chan error
}

func newControlPlane(t *testing.T, port int, ips ...string) *controlPlane {
	t.Helper()
	cp := &controlPlane{port: int32(port)}
	cp.kube = fake.NewClientset(
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "books"},
			Spec: corev1.ServiceSpec{ClusterIPs: []string{"198.19.0.40"}, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
		},
		cp.slice(ips...),
	)
	cp.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{sp.GroupVersionResource: "ServiceProfileList"})
	cp.addr = "127.0.0.1:0"
	cp.start(t)
	t.Cleanup(func() { cp.stop(t) })
	return cp
}

func (cp *controlPlane) slice(ips ...string) *discoveryv1.EndpointSlice {
	ptr := func(s string) *string { return &s }
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "demo", Name: "books-x", Labels: map[string]string{discoveryv1.LabelServiceName: "books"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: &cp.port}},
	}
	ready := true
	for _, ip := range ips {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return es
}

func (cp *controlPlane) start(t *testing.T) {
	t.Helper()
	srv, err := destination.New(destination.Config{Client: cp.kube, Dynamic: cp.dyn, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var lis net.Listener
	for i := 0; ; i++ {
		if lis, err = net.Listen("tcp", cp.addr); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	cp.addr = lis.Addr().String()
	admin := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cp.cancel, cp.done = cancel, make(chan error, 1)
	go func() { cp.done <- srv.Serve(ctx, lis, admin) }()
}

func (cp *controlPlane) stop(t *testing.T) {
	if cp.cancel == nil {
		return
	}
	cp.cancel()
	if err := <-cp.done; err != nil {
		t.Errorf("destination: %v", err)
	}
	cp.cancel = nil
}

func (cp *controlPlane) profile(t *testing.T, spec map[string]any) {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "weft.io/v1alpha1", "kind": "ServiceProfile",
		"metadata": map[string]any{"name": booksHost, "namespace": "demo"},
		"spec":     spec,
	}}
	if _, err := cp.dyn.Resource(sp.GroupVersionResource).Namespace("demo").Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// backends listens on 127.0.0.{1..n} on one port (the endpoints of a
// Service share their port) and serves h with the replica's index. Each
// server speaks HTTP/1 and h2c.
func backends(t *testing.T, n int, h func(i int, w http.ResponseWriter, r *http.Request)) (port int, ips []string) {
	t.Helper()
	for try := 0; ; try++ {
		first := listen(t)
		port = first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		ok := true
		for i := 2; i <= n; i++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", i, port))
			if err != nil {
				ok = false
				break
			}
			t.Cleanup(func() { ln.Close() })
			lns = append(lns, ln)
		}
		if !ok {
			if try == 10 {
				t.Fatal("no common port for the backends")
			}
			continue
		}
		ips = nil
		for i, ln := range lns {
			ips = append(ips, fmt.Sprintf("127.0.0.%d", i+1))
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(i, w, r) }),
				Protocols: new(http.Protocols)}
			srv.Protocols.SetHTTP1(true)
			srv.Protocols.SetUnencryptedHTTP2(true)
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
		}
		return port, ips
	}
}

// meshClient is a client proxy whose outbound discovery is the destination
// service at cp; the app's connections have original destination
// 127.0.0.1:port (anything unknown stays on loopback).
func meshClient(t *testing.T, cp *controlPlane, port int, mutate func(*config.Config)) *harness {
	h := newHarnessWith(t, func(c *config.Config) {
		c.DestinationAddr = cp.addr
		c.DestinationFailFast = 2 * time.Second
		if mutate != nil {
			mutate(c)
		}
	}, Options{})
	h.to("127.0.0.1:" + strconv.Itoa(port))
	return h
}

func h1Client() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 15 * time.Second}
}

func h2cClient() *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}}
}

// get sends GET path to the proxy with Host books and returns status, the
// weft-proxy-error header and body.
func get(t *testing.T, c *http.Client, proxy, scheme, path string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", scheme+"://"+proxy+path, nil)
	req.Host = booksHost + ":80"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("weft-proxy-error"), string(b)
}

// TestDestinationBalancing: three replicas from the destination service,
// one 50 ms slower; P2C over peak-EWMA gives it < 15 % of the requests,
// over HTTP/1 and over HTTP/2 (h2c).
func TestDestinationBalancing(t *testing.T) {
	port, ips := backends(t, 3, func(i int, w http.ResponseWriter, r *http.Request) {
		if i == 2 {
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Fprint(w, i)
	})
	cp := newControlPlane(t, port, ips...)
	h := meshClient(t, cp, port, nil)
	for _, tc := range []struct {
		name, scheme string
		client       *http.Client
	}{{"http1", "http", h1Client()}, {"h2c", "http", h2cClient()}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			counts := map[string]int{}
			var wg sync.WaitGroup
			const workers, each = 6, 60
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						code, perr, body := get(t, tc.client, h.outbound(), tc.scheme, "/")
						if code != 200 {
							t.Errorf("status %d %s %s", code, perr, body)
							return
						}
						mu.Lock()
						counts[body]++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			total := counts["0"] + counts["1"] + counts["2"]
			t.Logf("%s: fast %d / %d, slow %d of %d", tc.name, counts["0"], counts["1"], counts["2"], total)
			if total != workers*each || counts["2"]*100 >= total*15 || counts["0"] == 0 || counts["1"] == 0 {
				t.Fatalf("distribution %v", counts)
			}
		})
	}
}

// TestDestinationFailFastAndOutage: a target without endpoints fails with
// 503 no_endpoints after the fail-fast timeout; once the destination
// service is gone, traffic keeps flowing to the endpoints it last knew.
func TestDestinationFailFastAndOutage(t *testing.T) {
	port, ips := backends(t, 2, func(i int, w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, i) })
	cp := newControlPlane(t, port)
	h := meshClient(t, cp, port, func(c *config.Config) { c.DestinationFailFast = 300 * time.Millisecond })
	// The app's original destination is a closed port: a request that went
	// to pass-through instead of a known endpoint would fail with 502.
	closed := listen(t)
	h.to(closed.Addr().String())
	closed.Close()
	c := h1Client()
	if code, perr, _ := get(t, c, h.outbound(), "http", "/"); code != 503 || perr != "no_endpoints" {
		t.Fatalf("no endpoints: %d %q", code, perr)
	}
	if _, err := cp.kube.DiscoveryV1().EndpointSlices("demo").Update(context.Background(), cp.slice(ips...), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _, _ := get(t, c, h.outbound(), "http", "/")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoints never arrived: %d", code)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cp.stop(t)
	// P2C over peak-EWMA may favour the replica that answered faster, so
	// only "served by a known endpoint" is asserted.
	for range 40 {
		code, perr, body := get(t, c, h.outbound(), "http", "/")
		if code != 200 || (body != "0" && body != "1") {
			t.Fatalf("after the destination service stopped: %d %s %q", code, perr, body)
		}
	}
	m := scrape(t, h)
	if !strings.Contains(m, `weft_proxy_errors_total{direction="outbound",kind="no_endpoints"} 1`) {
		t.Fatalf("no_endpoints not counted:\n%s", grepLines(m, "errors_total"))
	}
}

// TestDestinationRetries: a retryable route whose backend fails every other
// request succeeds more often through retries, and the retries stay within
// the profile's budget; the route is reported in rt_route metrics.
func TestDestinationRetries(t *testing.T) {
	var n atomic.Int64
	port, ips := backends(t, 1, func(_ int, w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if n.Add(1)%2 == 0 {
			http.Error(w, "flaky", 500)
			return
		}
		fmt.Fprintf(w, "ok %s", body)
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
	c := h1Client()
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
	// Wait for the profile.
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(scrape(t, h), `rt_route="POST /flaky"`) {
		if time.Now().After(deadline) {
			t.Fatal("route never matched")
		}
		post("/flaky")
		time.Sleep(20 * time.Millisecond)
	}
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
			if body != "ok payload" {
				t.Fatalf("replayed body %q", body)
			}
		}
	}
	m := scrape(t, h)
	promtoolCheck(t, m)
	requests := counter(m, `route_request_total{direction="outbound",dst="`+booksHost+`:80",rt_route="POST /flaky"}`) -
		counter(base, `route_request_total{direction="outbound",dst="`+booksHost+`:80",rt_route="POST /flaky"}`)
	actual := counter(m, `route_actual_request_total{direction="outbound",dst="`+booksHost+`:80",rt_route="POST /flaky"}`) -
		counter(base, `route_actual_request_total{direction="outbound",dst="`+booksHost+`:80",rt_route="POST /flaky"}`)
	retries := actual - requests
	t.Logf("not retryable: %d/%d ok; retryable: %d/%d ok with %d retries", okOnce, reqs, okFlaky, reqs, retries)
	// Budget (one per destination profile): ratio 0.2 of every request to
	// the destination within the TTL window (both routes and the warm-up)
	// plus the reserve of minRetriesPerSecond × TTL = 10.
	all := counter(m, `route_request_total{direction="outbound",dst="`+booksHost+`:80",rt_route="POST /flaky"}`) +
		counter(m, `route_request_total{direction="outbound",dst="`+booksHost+`:80",rt_route="POST /once"}`)
	budget := 0.2*float64(all) + 10
	if requests != reqs || retries <= 0 || float64(retries) > budget+1 {
		t.Fatalf("requests %d, retries %d, budget %.0f", requests, retries, budget)
	}
	// Every retry here succeeds (the backend alternates), but it also
	// shifts the alternation, so the gain is about half the retries.
	if okOnce > reqs/2+1 || okFlaky < okOnce+int(retries)/4 {
		t.Fatalf("success without retries %d, with %d (retries %d)", okOnce, okFlaky, retries)
	}
	if !strings.Contains(m, `route_response_total{direction="outbound",dst="`+booksHost+`:80",rt_route="POST /once",status_code="500",classification="failure"}`) {
		t.Fatalf("route metrics:\n%s", grepLines(m, "route_"))
	}
}

// counter reads one sample's value from an exposition (0 when absent).
func counter(m, series string) int64 {
	for _, l := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// TestDestinationRouteTimeout: a route with a 100 ms timeout answers 504
// with weft-proxy-error: timeout, and the upstream sees its request
// cancelled.
func TestDestinationRouteTimeout(t *testing.T) {
	cancelled := make(chan struct{}, 16)
	port, ips := backends(t, 1, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			fmt.Fprint(w, "fast")
			return
		}
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	})
	cp := newControlPlane(t, port, ips...)
	cp.profile(t, map[string]any{"routes": []any{
		map[string]any{"name": "GET /slow", "condition": map[string]any{"method": "GET", "pathRegex": "/slow"}, "timeout": "100ms"},
	}})
	h := meshClient(t, cp, port, nil)
	c := h1Client()
	// Warm up: the first request also waits for the subscriptions, and a
	// request whose deadline passed before it was sent never reaches the
	// upstream.
	if code, _, _ := get(t, c, h.outbound(), "http", "/"); code != 200 {
		t.Fatalf("warm-up: %d", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, perr, _ := get(t, c, h.outbound(), "http", "/slow")
		if code == 504 && perr == "timeout" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("route timeout never applied: %d %q", code, perr)
		}
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
	if code, _, body := get(t, c, h.outbound(), "http", "/"); code != 200 || body != "fast" {
		t.Fatalf("other route: %d %s", code, body)
	}
	m := scrape(t, h)
	if !strings.Contains(m, `route_response_total{direction="outbound",dst="`+booksHost+`:80",rt_route="GET /slow",status_code="504",classification="failure"}`) {
		t.Fatalf("route metrics:\n%s", grepLines(m, "route_"))
	}
}

// TestDestinationOverMTLS: with identity on, the client proxy reaches the
// destination service over weft mTLS (here terminated by the destination's
// own proxy, which presents the weft-destination identity), and balances
// over what it answers; nothing readable crosses the wire.
func TestDestinationOverMTLS(t *testing.T) {
	const dstID = "spiffe://cluster.local/ns/weft/sa/weft-destination"
	ca := identitytest.NewCA(t, "")
	svc := identitytest.StartService(t, ca, identitytest.Options{Users: identitytest.Reviewer{
		"tok-web": "system:serviceaccount:demo:web", "tok-dst": "system:serviceaccount:weft:weft-destination",
	}})
	port, ips := backends(t, 2, func(i int, w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, i) })
	cp := newControlPlane(t, port, ips...)
	dstProxy := newHarnessWith(t, func(c *config.Config) {
		c.Identity = identityFor(t, ca, svc, dstID, "tok-dst")
		c.Policy = mtls.Policy{Default: mtls.AllAuthenticated}
	}, Options{})
	wire := newTap(t, dstProxy.InboundAddr().String())
	h := newHarnessWith(t, func(c *config.Config) {
		c.Identity = identityFor(t, ca, svc, webID, "tok-web")
		c.DestinationAddr = cp.addr
		c.DestinationName = dstID
		c.DestinationFailFast = 5 * time.Second
	}, Options{PeerInboundPort: wire.port()})
	h.to("127.0.0.1:" + strconv.Itoa(port))
	waitReady(t, dstProxy)
	waitReady(t, h)
	c := h1Client()
	seen := map[string]int{}
	for range 20 {
		code, perr, body := get(t, c, h.outbound(), "http", "/")
		if code != 200 {
			t.Fatalf("%d %s", code, perr)
		}
		seen[body]++
	}
	if len(seen) != 2 {
		t.Fatalf("not balanced over the destination's endpoints: %v", seen)
	}
	if w := wire.seen(); len(w) < 500 || bytes.Contains(w, []byte("books")) {
		t.Fatalf("destination wire (%d bytes) carries plaintext", len(w))
	}
	m := scrape(t, dstProxy)
	if !strings.Contains(m, `target_addr="`+cp.addr+`",tls="true",client_id="`+webID+`"`) {
		t.Fatalf("destination proxy metrics:\n%s", grepLines(m, "request_total", "tcp_open_total"))
	}
}

// TestDestinationUnreachable: a proxy whose destination service cannot be
// reached (a pod whose control plane is missing) passes traffic through
// without making every request wait the fail-fast timeout.
func TestDestinationUnreachable(t *testing.T) {
	port, _ := backends(t, 1, func(_ int, w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "direct") })
	closed := listen(t)
	addr := closed.Addr().String()
	closed.Close()
	const failFast = 2 * time.Second
	h := newHarnessWith(t, func(c *config.Config) {
		c.DestinationAddr = addr
		c.DestinationFailFast = failFast
	}, Options{})
	h.to("127.0.0.1:" + strconv.Itoa(port))
	c := h1Client()
	if code, _, body := get(t, c, h.outbound(), "http", "/"); code != 200 || body != "direct" {
		t.Fatalf("first request: %d %s", code, body)
	}
	start := time.Now()
	for i := range 20 {
		if code, perr, body := get(t, c, h.outbound(), "http", fmt.Sprint("/", i)); code != 200 || body != "direct" {
			t.Fatalf("request %d: %d %s %s", i, code, perr, body)
		}
	}
	// A generous bound: waiting even once would take the whole fail-fast.
	if d := time.Since(start); d >= failFast {
		t.Fatalf("20 requests took %v: they waited for the unreachable destination", d)
	}
}
