package routes

import (
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"

	routesv1 "github.com/weftmesh/weft/api/routes/v1"
	"github.com/weftmesh/weft/proxy/httproute"
)

// Server is the gRPC Routes API over a Controller.
type Server struct {
	routesv1.UnimplementedRoutesServer
	c *Controller
}

// NewServer serves c's routes.
func NewServer(c *Controller) *Server { return &Server{c: c} }

// Register adds the Routes service to gs.
func (s *Server) Register(gs *grpc.Server) { routesv1.RegisterRoutesServer(gs, s) }

// Watch streams the Service port's routes, once now and on every change that
// alters them.
func (s *Server) Watch(req *routesv1.WatchRequest, stream grpc.ServerStreamingServer[routesv1.RouteTable]) error {
	if req.GetNamespace() == "" || req.GetName() == "" {
		return fmt.Errorf("routes watch needs the Service namespace and name")
	}
	k := Key{Namespace: req.GetNamespace(), Name: req.GetName(), Port: int(req.GetPort())}
	var last []byte
	var version uint64
	for {
		routes, changed := s.c.Routes(k, req.GetClientNamespace())
		if routes == nil {
			routes = []httproute.RouteSpec{}
		}
		b, err := json.Marshal(routes)
		if err != nil {
			return fmt.Errorf("encode routes: %w", err)
		}
		if last == nil || string(b) != string(last) {
			version++
			if err := stream.Send(&routesv1.RouteTable{Version: version, RoutesJson: b}); err != nil {
				return fmt.Errorf("send routes: %w", err)
			}
			last = b
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-changed:
		}
	}
}
