package authors

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/weftmesh/weft/e2e/demo/api/authorspb"
)

func dial(t *testing.T) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	Register(g, NewServer())
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestGetAuthor(t *testing.T) {
	c := authorspb.NewAuthorsClient(dial(t))
	tests := []struct {
		id   string
		code codes.Code
		name string
	}{
		{"2", codes.OK, "Octavia E. Butler"},
		{"99", codes.NotFound, ""},
		{"", codes.InvalidArgument, ""},
	}
	for _, tt := range tests {
		a, err := c.GetAuthor(context.Background(), &authorspb.GetAuthorRequest{Id: tt.id})
		if status.Code(err) != tt.code || a.GetName() != tt.name {
			t.Errorf("GetAuthor(%q) = %v, %v; want code %v name %q", tt.id, a, err, tt.code, tt.name)
		}
	}
}

func TestListAuthorsStreamsAll(t *testing.T) {
	c := authorspb.NewAuthorsClient(dial(t))
	stream, err := c.ListAuthors(context.Background(), &authorspb.ListAuthorsRequest{DelayMs: 1})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for {
		a, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.GetId())
	}
	if len(ids) != len(seed) || ids[0] != "1" || ids[len(ids)-1] != "4" {
		t.Errorf("streamed ids %v, want the %d seeded authors in order", ids, len(seed))
	}
}

func TestHealthServing(t *testing.T) {
	h := healthpb.NewHealthClient(dial(t))
	resp, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, %v; want SERVING", resp, err)
	}
}
