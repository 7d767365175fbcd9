// Package authors is the demo's gRPC authors service: unary GetAuthor and server-streaming
// ListAuthors over a fixed set of authors.
package authors

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/weftmesh/weft/e2e/demo/api/authorspb"
)

// MaxStreamDelay bounds the per-message delay a ListAuthors caller may ask for.
const MaxStreamDelay = time.Second

// seed is the demo's authors; ids match the books service's authorId values.
var seed = []*authorspb.Author{
	{Id: "1", Name: "Ursula K. Le Guin", Born: 1929},
	{Id: "2", Name: "Octavia E. Butler", Born: 1947},
	{Id: "3", Name: "Stanisław Lem", Born: 1921},
	{Id: "4", Name: "Philip K. Dick", Born: 1928},
}

// Server implements authorspb.AuthorsServer.
type Server struct {
	authorspb.UnimplementedAuthorsServer
	byID map[string]*authorspb.Author
}

// NewServer returns a server holding the demo's authors.
func NewServer() *Server {
	s := &Server{byID: map[string]*authorspb.Author{}}
	for _, a := range seed {
		s.byID[a.Id] = a
	}
	return s
}

// GetAuthor returns one author, NotFound for an unknown id, InvalidArgument for an empty one.
func (s *Server) GetAuthor(_ context.Context, req *authorspb.GetAuthorRequest) (*authorspb.Author, error) {
	if req.GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required")
	}
	a, ok := s.byID[req.GetId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "author %q not found", req.GetId())
	}
	return a, nil
}

// ListAuthors streams every author, waiting delay_ms (capped at MaxStreamDelay) between messages.
func (s *Server) ListAuthors(req *authorspb.ListAuthorsRequest, stream grpc.ServerStreamingServer[authorspb.Author]) error {
	delay := min(time.Duration(req.GetDelayMs())*time.Millisecond, MaxStreamDelay)
	for i, a := range seed {
		if i > 0 && delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-stream.Context().Done():
				t.Stop()
				return status.FromContextError(stream.Context().Err()).Err()
			}
		}
		if err := stream.Send(a); err != nil {
			return err
		}
	}
	return nil
}

// Register adds the authors service and a grpc.health.v1 service (SERVING for "" and the authors
// service) to g, and returns the health server so the caller can flip it on shutdown.
func Register(g *grpc.Server, s *Server) *health.Server {
	authorspb.RegisterAuthorsServer(g, s)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(authorspb.Authors_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	return hs
}
