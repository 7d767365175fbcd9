package ctlserver

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// closedWithin reads from c until the server closes it; it fails if the
// server holds the stalled connection beyond bound.
func closedWithin(t *testing.T, c net.Conn, bound time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(bound))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still holds a stalled connection after %s", bound)
	}
}

// TestGRPCLimits: a client that connects and never finishes the handshake
// is closed; an oversized message is refused with ResourceExhausted.
func TestGRPCLimits(t *testing.T) {
	gs := NewGRPC(Limits{Handshake: 100 * time.Millisecond, MaxRecvMsg: 1024}, nil)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	lis := listen(t)
	go gs.Serve(lis)
	defer gs.Stop()

	stalled, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	closedWithin(t, stalled, 10*time.Second)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: ""}); err != nil {
		t.Fatalf("a small request: %v", err)
	}
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: strings.Repeat("x", 4096)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a 4 KiB request against a 1 KiB limit: %v, want ResourceExhausted", err)
	}
}

// TestHTTPLimits: a request head that never ends is cut off; an oversized
// head is answered 431.
func TestHTTPLimits(t *testing.T) {
	hs := NewHTTP(Limits{Handshake: 100 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), nil)
	lis := listen(t)
	go hs.Serve(lis)
	defer hs.Close()

	slow, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "GET / HTTP/1.1\r\nHost: x\r\nX-a: "); err != nil {
		t.Fatal(err)
	}
	closedWithin(t, slow, 10*time.Second)

	big, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	go io.WriteString(big, "GET / HTTP/1.1\r\nHost: x\r\nX-a: "+strings.Repeat("a", 2*maxHeaderBytes)+"\r\n\r\n")
	big.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(big).ReadString('\n')
	if err != nil || !strings.Contains(line, "431") {
		t.Fatalf("oversized head answered %q (%v), want 431", line, err)
	}
}
