package httpretry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	"github.com/weftmesh/weft/proxy/balance"
	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

// upstream is a real loopback server that fails its first n requests with
// status and echoes the request body otherwise.
type upstream struct {
	srv      *httptest.Server
	requests atomic.Int64
	failN    int64
	status   int
	delay    atomic.Int64 // ns
	mu       sync.Mutex
	bodies   []string
}

func newUpstream(t *testing.T, failN int64, status int) *upstream {
	u := &upstream{failN: failN, status: status}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := u.requests.Add(1)
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, string(b))
		u.mu.Unlock()
		if d := time.Duration(u.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if n <= u.failN {
			w.WriteHeader(u.status)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) addr() netip.AddrPort {
	return netip.MustParseAddrPort(u.srv.Listener.Addr().String())
}

type balancerResolver struct{ b *balance.Balancer }

func (r balancerResolver) ResolveContext(context.Context, string, netip.AddrPort) (target.Endpoint, error) {
	ep, ok := r.b.Pick()
	if !ok {
		return ep, proxyerr.New(proxyerr.NoEndpoints, nil)
	}
	return ep, nil
}

func executor(t *testing.T, addrs ...netip.AddrPort) (*Executor, *balance.Balancer) {
	b := balance.New(balance.Config{FailureThreshold: -1})
	for _, a := range addrs {
		b.Add(target.Endpoint{Addr: a})
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	send := func(ctx context.Context, ep *target.Endpoint, req *http.Request) (*http.Response, error) {
		out := req.Clone(ctx)
		out.Body = req.Body
		out.URL = &url.URL{Scheme: "http", Host: ep.Addr.String(), Path: req.URL.Path}
		out.RequestURI = ""
		resp, err := tr.RoundTrip(out)
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, proxyerr.New(proxyerr.Connect, err)
		}
		return resp, err
	}
	return &Executor{Resolve: balancerResolver{b}, Send: send}, b
}

func prof(t *testing.T, budget *destinationv1.RetryBudget, routes ...*destinationv1.Route) *profile.Profile {
	p, err := profile.Compile(&destinationv1.DestinationProfile{Routes: routes, RetryBudget: budget}, profile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func rt(name, method, path string, retryable bool, timeout time.Duration) *destinationv1.Route {
	cond := &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_All{All: &destinationv1.RequestMatch_Seq{Matches: []*destinationv1.RequestMatch{
		{Match: &destinationv1.RequestMatch_Method{Method: method}},
		{Match: &destinationv1.RequestMatch_PathRegex{PathRegex: path}},
	}}}}
	r := &destinationv1.Route{Name: name, Condition: cond, IsRetryable: retryable}
	if timeout > 0 {
		r.Timeout = durationpb.New(timeout)
	}
	return r
}

func request(method, path string, body []byte) *http.Request {
	var r io.Reader = http.NoBody
	if body != nil {
		r = io.NopCloser(bytes.NewReader(body)) // unknown length, like a streamed body
	}
	req := httptest.NewRequest(method, "http://books.demo.svc.cluster.local"+path, r)
	if body != nil {
		req.ContentLength = -1
	}
	return req
}

func TestRetriesReplayTheBody(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, 2, http.StatusServiceUnavailable)
	x, _ := executor(t, u.addr())
	p := prof(t, nil, rt("POST /books", "POST", "/books", true, 0))
	body := []byte(strings.Repeat("payload-", 1000))
	resp, res, err := x.Do(request("POST", "/books", body), netip.AddrPort{}, p)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("status %d, body %d bytes", resp.StatusCode, len(got))
	}
	if res.Route != "POST /books" || res.Retries != 2 || res.Attempts != 3 || res.Failures != 2 {
		t.Fatalf("result %+v", res)
	}
	for i, b := range u.bodies {
		if b != string(body) {
			t.Fatalf("attempt %d sent %d bytes", i, len(b))
		}
	}
}

func TestNoRetryWithoutIsRetryable(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, 1, http.StatusInternalServerError)
	x, _ := executor(t, u.addr())
	p := prof(t, nil, rt("POST /pay", "POST", "/pay", false, 0), rt("GET /books", "GET", "/books", false, 0))
	for _, m := range []string{"POST", "GET"} {
		u.requests.Store(0)
		path := map[string]string{"POST": "/pay", "GET": "/books"}[m]
		resp, res, err := x.Do(request(m, path, []byte("x")), netip.AddrPort{}, p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 500 || res.Retries != 0 || u.requests.Load() != 1 {
			t.Fatalf("%s: status %d retries %d requests %d", m, resp.StatusCode, res.Retries, u.requests.Load())
		}
	}
}

func TestLargeBodyIsNotRetried(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, 1, http.StatusServiceUnavailable)
	x, _ := executor(t, u.addr())
	p := prof(t, nil, rt("PUT /blob", "PUT", "/blob", true, 0))
	resp, res, err := x.Do(request("PUT", "/blob", bytes.Repeat([]byte("b"), profile.MaxReplayBody+1)), netip.AddrPort{}, p)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || res.Retries != 0 || u.requests.Load() != 1 {
		t.Fatalf("status %d retries %d requests %d", resp.StatusCode, res.Retries, u.requests.Load())
	}
	if len(u.bodies[0]) != profile.MaxReplayBody+1 {
		t.Fatalf("upstream got %d bytes", len(u.bodies[0]))
	}
}

func TestTimeoutBoundsRetries(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, 1000, http.StatusServiceUnavailable)
	u.delay.Store(int64(50 * time.Millisecond))
	x, _ := executor(t, u.addr())
	p := prof(t, &destinationv1.RetryBudget{RetryRatio: 1, MinRetriesPerSecond: 1000, Ttl: durationpb.New(10 * time.Second)},
		rt("GET /slow", "GET", "/slow", true, 300*time.Millisecond))
	start := time.Now()
	resp, res, err := x.Do(request("GET", "/slow", nil), netip.AddrPort{}, p)
	took := time.Since(start)
	// Either the deadline hit an attempt in flight (504), or the last
	// failed response is returned because no back-off fits in the time left.
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	} else if proxyerr.KindOf(err) != proxyerr.Timeout || proxyerr.KindOf(err).HTTPStatus() != 504 {
		t.Fatalf("err %v, want a timeout (504)", err)
	}
	if took > 3*time.Second || res.Retries == 0 {
		t.Fatalf("took %v with %d retries: the timeout must bound all attempts", took, res.Retries)
	}

	// An attempt still running at the deadline is a 504.
	u.delay.Store(int64(5 * time.Second))
	p = prof(t, nil, rt("GET /slow", "GET", "/slow", true, 100*time.Millisecond))
	start = time.Now()
	_, _, err = x.Do(request("GET", "/slow", nil), netip.AddrPort{}, p)
	if proxyerr.KindOf(err) != proxyerr.Timeout || time.Since(start) > 3*time.Second {
		t.Fatalf("err %v after %v, want a timeout at the route deadline", err, time.Since(start))
	}
}

func TestBudgetLimitsRetries(t *testing.T) {
	t.Parallel()
	u := newUpstream(t, 1<<30, http.StatusServiceUnavailable)
	x, _ := executor(t, u.addr())
	p := prof(t, &destinationv1.RetryBudget{RetryRatio: 0.2, MinRetriesPerSecond: 1, Ttl: durationpb.New(time.Second)},
		rt("GET /b", "GET", "/b", true, 0))
	retries := 0
	for i := 0; i < 50; i++ {
		resp, res, err := x.Do(request("GET", "/b", nil), netip.AddrPort{}, p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		retries += res.Retries
	}
	// 0.2 × 50 + 1/s × 1 s (the test may span a few TTL windows: generous)
	if retries > 10+1+5 {
		t.Fatalf("%d retries for 50 failing requests", retries)
	}
	if retries < 5 {
		t.Fatalf("%d retries: the budget should allow ~11", retries)
	}
}

// seqResolver hands out its endpoints in order, the last one repeated.
type seqResolver struct {
	mu  sync.Mutex
	eps []target.Endpoint
}

func (r *seqResolver) ResolveContext(context.Context, string, netip.AddrPort) (target.Endpoint, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ep := r.eps[0]
	if len(r.eps) > 1 {
		r.eps = r.eps[1:]
	}
	return ep, nil
}

func TestConnectFailureRetriesElsewhere(t *testing.T) {
	t.Parallel()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := netip.MustParseAddrPort(l.Addr().String())
	l.Close()
	u := newUpstream(t, 0, 0)
	x, _ := executor(t)
	bal := balance.New(balance.Config{})
	bal.Add(target.Endpoint{Addr: dead}, target.Endpoint{Addr: u.addr()})
	deadEP, liveEP := bal.Endpoint(dead).Target(), bal.Endpoint(u.addr()).Target()
	withProfile := prof(t, nil) // no routes, default budget
	tests := []struct {
		name        string
		method      string
		p           *profile.Profile
		wantErr     bool
		wantRetries int
	}{
		{"GET retried on the next endpoint", "GET", withProfile, false, 1},
		{"DELETE retried (idempotent)", "DELETE", withProfile, false, 1},
		{"POST never retried implicitly", "POST", withProfile, true, 0},
		{"no profile, no budget, no retry", "GET", nil, true, 0},
	}
	for _, tt := range tests {
		x.Resolve = &seqResolver{eps: []target.Endpoint{deadEP, liveEP}}
		var body []byte
		if tt.method == "POST" {
			body = []byte("pay")
		}
		resp, res, err := x.Do(request(tt.method, "/any", body), netip.AddrPort{}, tt.p)
		if (err != nil) != tt.wantErr || res.Retries != tt.wantRetries {
			t.Errorf("%s: err %v retries %d", tt.name, err, res.Retries)
		}
		if err != nil && proxyerr.KindOf(err) != proxyerr.Connect {
			t.Errorf("%s: error kind %v, want connect", tt.name, proxyerr.KindOf(err))
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
	for _, e := range bal.Endpoints() {
		if n := e.Load.(*balance.Endpoint).Pending(); n != 0 {
			t.Fatalf("%v: %d pending after the requests", e.Addr, n)
		}
	}
}
