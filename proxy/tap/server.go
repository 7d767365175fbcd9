package tap

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
)

// ServerConfig configures the tap gRPC server.
type ServerConfig struct {
	Hub *Hub
	// SVIDs is the proxy's certificate source; Bundle the trust anchors a
	// client must chain to. Required: the server speaks mTLS only.
	SVIDs  x509svid.Source
	Bundle x509bundle.Source
	// AuthorizedIDs are the only client SPIFFE IDs served; empty refuses all.
	AuthorizedIDs []string
}

// Server is the proxy's tap gRPC server.
type Server struct {
	tapv1.UnimplementedTapServer
	hub  *Hub
	grpc *grpc.Server
}

// NewServer validates cfg and builds the server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Hub == nil || cfg.SVIDs == nil || cfg.Bundle == nil {
		return nil, errors.New("tap server: Hub, SVIDs and Bundle are required")
	}
	ids := make([]spiffeid.ID, 0, len(cfg.AuthorizedIDs))
	for _, s := range cfg.AuthorizedIDs {
		id, err := spiffeid.FromString(s)
		if err != nil {
			return nil, fmt.Errorf("tap server: authorized id %q: %w (want spiffe://<trust-domain>/ns/<ns>/sa/<sa>)", s, err)
		}
		ids = append(ids, id)
	}
	tc := tlsconfig.MTLSServerConfig(cfg.SVIDs, cfg.Bundle, tlsconfig.AuthorizeOneOf(ids...))
	tc.NextProtos = []string{"h2"}
	creds := &countingCreds{TransportCredentials: credentials.NewTLS(tc), stats: &cfg.Hub.stats}
	s := &Server{hub: cfg.Hub, grpc: grpc.NewServer(grpc.Creds(creds))}
	tapv1.RegisterTapServer(s.grpc, s)
	return s, nil
}

// Serve serves lis until Stop.
func (s *Server) Serve(lis net.Listener) error {
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("tap server: %w", err)
	}
	return nil
}

// Stop closes the listener and every stream.
func (s *Server) Stop() { s.grpc.Stop() }

// Observe streams the events of one tap.
func (s *Server) Observe(req *tapv1.ObserveRequest, stream grpc.ServerStreamingServer[tapv1.Event]) error {
	t, err := s.hub.Open(req)
	switch {
	case errors.Is(err, ErrTooManyTaps):
		return status.Error(codes.ResourceExhausted, err.Error())
	case err != nil:
		return status.Error(codes.InvalidArgument, err.Error())
	}
	defer t.Close()
	return pump(stream.Context(), t, stream.Send)
}

// pump sends t's events until ctx ends or the tap is done and drained; a
// Lost event precedes the next event after losses.
func pump(ctx context.Context, t *Tap, send func(*tapv1.Event) error) error {
	emit := func(ev *tapv1.Event) error {
		if n := t.TakeLost(); n > 0 {
			if err := send(&tapv1.Event{Kind: &tapv1.Event_Lost{Lost: &tapv1.Lost{Events: n}}}); err != nil {
				return err
			}
		}
		return send(ev)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-t.Events():
			if err := emit(ev); err != nil {
				return err
			}
		case <-t.Done():
			for {
				select {
				case ev := <-t.Events():
					if err := emit(ev); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		}
	}
}

// countingCreds counts refused handshakes (no, untrusted or unauthorized
// client certificate).
type countingCreds struct {
	credentials.TransportCredentials
	stats *counters
}

func (c *countingCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		c.stats.refused.Add(1)
	}
	return conn, info, err
}

func (c *countingCreds) Clone() credentials.TransportCredentials {
	return &countingCreds{TransportCredentials: c.TransportCredentials.Clone(), stats: c.stats}
}
