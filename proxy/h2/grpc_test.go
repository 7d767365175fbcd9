package h2

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

func grpcClient(t testing.TB, addr string) testgrpc.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

func TestGRPCStreamingKinds(t *testing.T) {
	svc := newTestService()
	ep := startGRPCBackend(t, svc)
	obs := &countingObserver{}
	_, addr := startProxy(t, Config{Router: staticRouter{ep}, Observer: obs})
	c := grpcClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Unary with headers and trailers.
	var hdr, trl metadata.MD
	out, err := c.UnaryCall(metadata.AppendToOutgoingContext(ctx, "x-echo", "v1"),
		&testgrpc.SimpleRequest{ResponseSize: 1000, Payload: payload(500)}, grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.GetPayload().GetBody()) != 1000 || hdr.Get("x-echo-header")[0] != "v1" || trl.Get("x-echo-trailer")[0] != "v1" {
		t.Fatalf("unary: %d bytes, header %v, trailer %v", len(out.GetPayload().GetBody()), hdr, trl)
	}

	// Server streaming: 5 messages, one large.
	ss, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{
		{Size: 10}, {Size: 1 << 20}, {Size: 3, IntervalUs: 1000}, {Size: 4}, {Size: 5},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for {
		m, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(m.GetPayload().GetBody()))
	}
	if len(sizes) != 5 || sizes[1] != 1<<20 {
		t.Fatalf("server streaming sizes %v", sizes)
	}

	// Client streaming: 100 messages of 10 KiB.
	cs, err := c.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := cs.Send(&testgrpc.StreamingInputCallRequest{Payload: payload(10 << 10)}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := cs.CloseAndRecv()
	if err != nil || res.AggregatedPayloadSize != 100*10<<10 {
		t.Fatalf("client streaming: %v %v", res, err)
	}

	// Bidi: ping-pong, each reply must arrive before the next request is sent.
	bs, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 20; i++ {
		if err := bs.Send(&testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: int32(i)}}}); err != nil {
			t.Fatal(err)
		}
		m, err := bs.Recv()
		if err != nil || len(m.GetPayload().GetBody()) != i {
			t.Fatalf("bidi round %d: %v %v", i, m, err)
		}
	}
	if err := bs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("bidi end: %v", err)
	}

	recs := obs.waitRecords(t, 4)
	for _, r := range recs {
		if r.StatusCode != 200 || r.GRPCStatus != 0 || r.Err != nil || r.Failed() {
			t.Fatalf("record %+v", r)
		}
	}
}

func TestGRPCStatusPropagates(t *testing.T) {
	svc := newTestService()
	ep := startGRPCBackend(t, svc)
	obs := &countingObserver{}
	_, addr := startProxy(t, Config{Router: staticRouter{ep}, Observer: obs})
	c := grpcClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Trailers-only response (error before any message).
	var trl metadata.MD
	_, err := c.UnaryCall(metadata.AppendToOutgoingContext(ctx, "x-echo", "t1"),
		&testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: "no such thing ünïcode"}}, grpc.Trailer(&trl))
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such thing ünïcode" {
		t.Fatalf("trailers-only: %v", err)
	}
	if got := trl.Get("x-echo-trailer"); len(got) != 1 || got[0] != "t1" {
		t.Fatalf("trailers-only metadata %v", trl)
	}

	// Status in trailers after data.
	ss, err := c.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{
		ResponseParameters: []*testgrpc.ResponseParameters{{Size: 7}},
		ResponseStatus:     &testgrpc.EchoStatus{Code: int32(codes.Unavailable), Message: "going away"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := ss.Recv(); err != nil || len(m.GetPayload().GetBody()) != 7 {
		t.Fatalf("first message: %v %v", m, err)
	}
	if _, err := ss.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("trailer status: %v", err)
	}

	recs := obs.waitRecords(t, 2)
	want := map[int]bool{int(codes.NotFound): false, int(codes.Unavailable): true}
	for _, r := range recs {
		failed, ok := want[r.GRPCStatus]
		if !ok || r.StatusCode != 200 || r.Failed() != failed {
			t.Fatalf("record %+v (Failed=%v)", r, r.Failed())
		}
		delete(want, r.GRPCStatus)
	}
}

func TestGRPCClientCancelReachesBackend(t *testing.T) {
	svc := newTestService()
	ep := startGRPCBackend(t, svc)
	_, addr := startProxy(t, Config{Router: staticRouter{ep}})
	c := grpcClient(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	bs, err := c.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Send(&testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Recv(); err != nil {
		t.Fatal(err)
	}
	<-svc.started
	cancel()
	select {
	case <-svc.canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("backend stream context was not canceled")
	}
}

func TestGRPCPerRequestRouting(t *testing.T) {
	a, b := newTestService(), newTestService()
	r := &rrRouter{eps: []target.Endpoint{startGRPCBackend(t, a), startGRPCBackend(t, b)}}
	_, addr := startProxy(t, Config{Router: r})
	c := grpcClient(t, addr) // one client connection
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 20; i++ {
		if _, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if a.calls.Load() != 10 || b.calls.Load() != 10 {
		t.Fatalf("calls per backend: %d and %d, want 10 each over one client connection", a.calls.Load(), b.calls.Load())
	}
}

func TestGRPCProxyErrorTrailersOnly(t *testing.T) {
	obs := &countingObserver{}
	_, addr := startProxy(t, Config{Router: errRouter{proxyerr.New(proxyerr.NoEndpoints, errors.New("web.default has no endpoints"))}, Observer: obs})
	c := grpcClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var hdr, trl metadata.MD
	_, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Header(&hdr), grpc.Trailer(&trl))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || st.Message() != "weft-proxy: no_endpoints" {
		t.Fatalf("status %v", err)
	}
	// A trailers-only response carries every field in the trailer metadata.
	if got := trl.Get(proxyerr.Header); len(got) != 1 || got[0] != "no_endpoints" {
		t.Fatalf("%s in trailers %v (headers %v)", proxyerr.Header, trl, hdr)
	}
	r := obs.waitRecords(t, 1)[0]
	if r.StatusCode != 200 || r.GRPCStatus != int(codes.Unavailable) || r.ErrKind != proxyerr.NoEndpoints || !r.Failed() {
		t.Fatalf("record %+v", r)
	}
}
