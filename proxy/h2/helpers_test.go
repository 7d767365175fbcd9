package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// staticRouter routes every request to one endpoint.
type staticRouter struct{ ep target.Endpoint }

func (r staticRouter) Route(context.Context, string, netip.AddrPort) (target.Endpoint, error) {
	return r.ep, nil
}

// rrRouter routes requests round-robin over its endpoints.
type rrRouter struct {
	eps []target.Endpoint
	n   atomic.Uint64
}

func (r *rrRouter) Route(context.Context, string, netip.AddrPort) (target.Endpoint, error) {
	return r.eps[(r.n.Add(1)-1)%uint64(len(r.eps))], nil
}

// errRouter fails every request.
type errRouter struct{ err error }

func (r errRouter) Route(context.Context, string, netip.AddrPort) (target.Endpoint, error) {
	return target.Endpoint{}, r.err
}

// countingObserver keeps a copy of every record.
type countingObserver struct {
	mu   sync.Mutex
	recs []record.HTTP
}

func (o *countingObserver) ObserveHTTP(r *record.HTTP) {
	o.mu.Lock()
	o.recs = append(o.recs, *r)
	o.mu.Unlock()
}

func (o *countingObserver) snapshot() []record.HTTP {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]record.HTTP(nil), o.recs...)
}

// waitRecords polls until n records arrived (the record is reported after
// the response ends, possibly just after the client saw it).
func (o *countingObserver) waitRecords(t testing.TB, n int) []record.HTTP {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := o.snapshot()
		if len(recs) >= n || time.Now().After(deadline) {
			if len(recs) != n {
				t.Fatalf("got %d records, want %d: %+v", len(recs), n, recs)
			}
			return recs
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// countingDialer counts upstream dials and dials plain TCP.
type countingDialer struct{ n atomic.Int64 }

func (d *countingDialer) Dial(ctx context.Context, ep target.Endpoint) (net.Conn, error) {
	d.n.Add(1)
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", ep.Addr.String())
}

// endpointOf is the endpoint of a loopback listener.
func endpointOf(t testing.TB, ln net.Listener) target.Endpoint {
	t.Helper()
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return target.Endpoint{Addr: ap, Protocol: target.HTTP2}
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// startProxy serves cfg on a loopback listener the way the core does after
// detection (the preface is still in the stream). Cleanup shuts it down.
func startProxy(t testing.TB, cfg Config) (*Proxy, string) {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.ServeConn(context.Background(), c, netip.MustParseAddrPort("127.0.0.1:9"))
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("proxy shutdown: %v", err)
		}
		wg.Wait()
	})
	return p, ln.Addr().String()
}

// startH2CBackend serves h with net/http's own HTTP/2 server, h2c only.
func startH2CBackend(t testing.TB, h http.Handler) (target.Endpoint, *http.Server) {
	t.Helper()
	ln := listen(t)
	hs := &http.Server{Handler: h, Protocols: new(http.Protocols)}
	hs.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return endpointOf(t, ln), hs
}

// h2cClient is a prior-knowledge HTTP/2 client; CloseIdleConnections in
// cleanup.
func h2cClient(t testing.TB) *http2.Transport {
	t.Helper()
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// startGRPCBackend serves the test service with grpc-go.
func startGRPCBackend(t testing.TB, svc *testService) target.Endpoint {
	t.Helper()
	ln := listen(t)
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, svc)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return endpointOf(t, ln)
}

// testService is a minimal grpc.testing.TestService.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	calls     atomic.Int64
	canceled  chan struct{} // receives when a FullDuplexCall's context ends by cancellation
	started   chan struct{} // receives when a FullDuplexCall starts
	onceClose sync.Once
}

func newTestService() *testService {
	return &testService{canceled: make(chan struct{}, 16), started: make(chan struct{}, 16)}
}

func payload(n int) *testgrpc.Payload {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return &testgrpc.Payload{Body: b}
}

func echoStatus(s *testgrpc.EchoStatus) error {
	if s == nil || s.Code == 0 {
		return nil
	}
	return status.Error(codes.Code(s.Code), s.Message)
}

func (s *testService) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	s.calls.Add(1)
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md["x-echo"]) > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-echo-header", md["x-echo"][0]))
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-echo-trailer", md["x-echo"][0]))
	}
	if err := echoStatus(in.ResponseStatus); err != nil {
		return nil, err
	}
	return &testgrpc.SimpleResponse{Payload: payload(int(in.ResponseSize))}, nil
}

func (s *testService) StreamingOutputCall(in *testgrpc.StreamingOutputCallRequest, st grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	s.calls.Add(1)
	for _, p := range in.ResponseParameters {
		if p.IntervalUs > 0 {
			time.Sleep(time.Duration(p.IntervalUs) * time.Microsecond)
		}
		if err := st.Send(&testgrpc.StreamingOutputCallResponse{Payload: payload(int(p.Size))}); err != nil {
			return err
		}
	}
	return echoStatus(in.ResponseStatus)
}

func (s *testService) StreamingInputCall(st grpc.ClientStreamingServer[testgrpc.StreamingInputCallRequest, testgrpc.StreamingInputCallResponse]) error {
	s.calls.Add(1)
	total := 0
	for {
		in, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return st.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(in.GetPayload().GetBody())
	}
}

func (s *testService) FullDuplexCall(st grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	s.calls.Add(1)
	s.started <- struct{}{}
	for {
		in, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if st.Context().Err() != nil {
				s.canceled <- struct{}{}
			}
			return err
		}
		for _, p := range in.ResponseParameters {
			if err := st.Send(&testgrpc.StreamingOutputCallResponse{Payload: payload(int(p.Size))}); err != nil {
				return err
			}
		}
		if err := echoStatus(in.ResponseStatus); err != nil {
			return err
		}
	}
}

// checkNoGoroutineLeak polls until the goroutine count is back to at most
// before+slack.
func checkNoGoroutineLeak(t *testing.T, before, slack int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+slack {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d before, %d after\n%s", before, n, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
