// Package harness runs weft's proxy benchmark: a backend, an open-loop load generator, the peer
// proxies (weft, nginx, haproxy, Go httputil.ReverseProxy) and the orchestration that puts them in
// network namespaces and writes the report.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// Backend ports inside the server namespace.
const (
	BackendHTTPPort = 8080
	BackendGRPCPort = 8081
	BackendTCPPort  = 8082
	PayloadSize     = 1024
)

var payload = []byte(strings.Repeat("w", PayloadSize))

// RunBackend serves HTTP/1.1 (1 KiB responses), gRPC TestService.UnaryCall (1 KiB payloads) and a
// TCP echo on host:BackendHTTPPort/GRPCPort/TCPPort until ctx ends.
func RunBackend(ctx context.Context, host string) error {
	hl, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(BackendHTTPPort)))
	if err != nil {
		return fmt.Errorf("listen http: %w", err)
	}
	gl, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(BackendGRPCPort)))
	if err != nil {
		return fmt.Errorf("listen grpc: %w", err)
	}
	tl, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(BackendTCPPort)))
	if err != nil {
		return fmt.Errorf("listen tcp: %w", err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(payload)
	})}
	gs := grpc.NewServer()
	testpb.RegisterTestServiceServer(gs, testService{})
	go func() { _ = hs.Serve(hl) }()
	go func() { _ = gs.Serve(gl) }()
	go serveEcho(tl)
	<-ctx.Done()
	_ = hs.Close()
	gs.Stop()
	_ = tl.Close()
	return nil
}

type testService struct {
	testpb.UnimplementedTestServiceServer
}

func (testService) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	n := int(req.GetResponseSize())
	if n > len(payload) {
		n = len(payload)
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: payload[:n]}}, nil
}

func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}
