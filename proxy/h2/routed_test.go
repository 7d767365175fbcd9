package h2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// staticProfiles hands every request the same profile, with r's endpoint.
type staticProfiles struct {
	p *profile.Profile
	r target.Router
}

func (s staticProfiles) RouteProfile(ctx context.Context, authority string, orig netip.AddrPort) (*profile.Profile, target.Endpoint, error) {
	ep, err := s.r.Route(ctx, authority, orig)
	return s.p, ep, err
}

// compileRoute compiles a profile with one route matching every path.
func compileRoute(t testing.TB, retryable bool, timeout time.Duration) *profile.Profile {
	t.Helper()
	r := &destinationv1.Route{Name: "all", IsRetryable: retryable,
		Condition: &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_PathRegex{PathRegex: "/.*"}}}
	if timeout > 0 {
		r.Timeout = durationpb.New(timeout)
	}
	p, err := profile.Compile(&destinationv1.DestinationProfile{Routes: []*destinationv1.Route{r},
		RetryBudget: &destinationv1.RetryBudget{RetryRatio: 1, MinRetriesPerSecond: 100, Ttl: durationpb.New(10 * time.Second)}},
		profile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// countingLoad is a target.Load that counts Begin/End and failures.
type countingLoad struct{ begins, ends, failed atomic.Int64 }

func (l *countingLoad) Begin() int64 { l.begins.Add(1); return time.Now().UnixNano() }
func (l *countingLoad) End(_ int64, failed bool) {
	l.ends.Add(1)
	if failed {
		l.failed.Add(1)
	}
}

// routeRecorder is an Observer and RouteObserver.
type routeRecorder struct {
	countingObserver
	mu                          sync.Mutex
	routes, attempts, attFailed int
}

func (o *routeRecorder) ObserveRoute(*record.HTTP, bool) { o.mu.Lock(); o.routes++; o.mu.Unlock() }
func (o *routeRecorder) ObserveRouteAttempt(_ *record.HTTP, failed bool) {
	o.mu.Lock()
	o.attempts++
	if failed {
		o.attFailed++
	}
	o.mu.Unlock()
}

// failingGRPCBackend answers every call UNAVAILABLE, trailers-only, after
// reading its first request message (a unary request is then complete at
// the proxy: a backend failing before it reads the request can beat the
// request's END_STREAM, and such a call is not retried); calls counts them.
func failingGRPCBackend(t testing.TB) (target.Endpoint, *atomic.Int64) {
	t.Helper()
	calls := new(atomic.Int64)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, st grpc.ServerStream) error {
		calls.Add(1)
		_ = st.RecvMsg(new(testgrpc.SimpleRequest))
		return status.Error(codes.Unavailable, "down")
	}))
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return endpointOf(t, ln), calls
}

// TestRoutedRetriesUnaryNotStreaming: on a retryable route, a failed unary
// gRPC call (request complete) is retried with a fresh pick and every
// attempt is reported to the load handle and the route observer; a
// client-streaming call whose request stream is still open when the
// attempt fails is never retried.
func TestRoutedRetriesUnaryNotStreaming(t *testing.T) {
	ep, calls := failingGRPCBackend(t)
	load := &countingLoad{}
	ep.Load = load
	obs := &routeRecorder{}
	_, addr := startProxy(t, Config{Router: staticRouter{ep}, Observer: obs, Profiles: staticProfiles{compileRoute(t, true, 0), staticRouter{ep}}})
	c := grpcClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("unary: %v", err)
	}
	unary := calls.Load()
	if unary < 2 {
		t.Fatalf("unary call not retried: %d backend calls", unary)
	}
	if load.begins.Load() != unary || load.ends.Load() != unary || load.failed.Load() != unary {
		t.Fatalf("load handle: %d begins, %d ends, %d failed for %d attempts", load.begins.Load(), load.ends.Load(), load.failed.Load(), unary)
	}

	st, err := c.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Two messages: complete or not when the attempt fails, this is a
	// client stream.
	for range 2 {
		if err := st.Send(&testgrpc.StreamingInputCallRequest{Payload: payload(10)}); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("send: %v", err)
		}
	}
	if _, err := st.CloseAndRecv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("client stream: %v", err)
	}
	if n := calls.Load() - unary; n != 1 {
		t.Fatalf("client-streaming call sent %d times", n)
	}
	// One message on a stream still open when the attempt fails.
	before := calls.Load()
	st, err = c.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&testgrpc.StreamingInputCallRequest{Payload: payload(10)}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("send: %v", err)
	}
	if err := st.RecvMsg(new(testgrpc.StreamingInputCallResponse)); status.Code(err) != codes.Unavailable {
		t.Fatalf("open client stream: %v", err)
	}
	if n := calls.Load() - before; n != 1 {
		t.Fatalf("open client stream sent %d times", n)
	}
	obs.waitRecords(t, 3)
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.routes != 3 || obs.attempts != int(calls.Load()) || obs.attFailed != obs.attempts {
		t.Fatalf("route records %d, attempts %d (%d failed), backend calls %d", obs.routes, obs.attempts, obs.attFailed, calls.Load())
	}
}

// TestRoutedTimeoutHTTP: an HTTP/2 route timeout answers 504 with
// weft-proxy-error: timeout and cancels the upstream request; the load
// handle gets the failure.
func TestRoutedTimeoutHTTP(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	ep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	}))
	load := &countingLoad{}
	ep.Load = load
	_, addr := startProxy(t, Config{Router: staticRouter{ep}, Profiles: staticProfiles{compileRoute(t, false, 100*time.Millisecond), staticRouter{ep}}})
	req, _ := http.NewRequest("GET", "http://"+addr+"/slow", nil)
	resp, err := h2cClient(t).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 504 || resp.Header.Get("weft-proxy-error") != "timeout" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("weft-proxy-error"))
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream not cancelled")
	}
	if load.begins.Load() != 1 || load.failed.Load() != 1 {
		t.Fatalf("load: %d begins, %d failed", load.begins.Load(), load.failed.Load())
	}
}

// TestRoutedTimeoutMidStreamGRPC: a route timeout that expires after the
// response headers of a server stream ends the call with
// DEADLINE_EXCEEDED and weft-proxy-error: timeout in the trailers, after
// the messages already sent.
func TestRoutedTimeoutMidStreamGRPC(t *testing.T) {
	ep := startGRPCBackend(t, newTestService())
	_, addr := startProxy(t, Config{Router: staticRouter{ep}, Profiles: staticProfiles{compileRoute(t, false, 300*time.Millisecond), staticRouter{ep}}})
	c := grpcClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{
		{Size: 10}, {Size: 10, IntervalUs: 5_000_000}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	_, err = st.Recv()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("after the timeout: %v", err)
	}
	if v := st.Trailer().Get("weft-proxy-error"); len(v) != 1 || v[0] != "timeout" {
		t.Fatalf("trailer %v", st.Trailer())
	}
}
