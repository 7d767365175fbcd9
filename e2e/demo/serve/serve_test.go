package serve

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

func TestHealthDrain(t *testing.T) {
	var h Health
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- HTTPListener(ctx, ln, &h, time.Second) }()
	url := "http://" + ln.Addr().String() + "/healthz"
	status := func() int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != http.StatusOK {
		t.Errorf("ready status = %d, want 200", got)
	}
	h.Drain()
	if got := status(); got != http.StatusServiceUnavailable {
		t.Errorf("draining status = %d, want 503", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("HTTPListener after cancel: %v", err)
	}
}

// blockingStream is a gRPC stream handler that holds the stream until the client goes away.
func blockingStream(_ any, stream grpc.ServerStream) error {
	<-stream.Context().Done()
	return stream.Context().Err()
}

// TestGRPCForcesStopAfterGrace: an open stream cannot hold the server past its grace period.
func TestGRPCForcesStopAfterGrace(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.UnknownServiceHandler(blockingStream))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- GRPC(ctx, ln, s, 100*time.Millisecond) }()

	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	stream, err := cc.NewStream(context.Background(), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/wdm.Test/Hold")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(&emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("GRPC after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("GRPC did not return: the open stream held the server past its grace")
	}
	if err := stream.RecvMsg(&emptypb.Empty{}); err == nil {
		t.Error("stream still open after the forced stop")
	}
}
