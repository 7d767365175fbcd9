package destination

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	"github.com/weftmesh/weft/internal/ctlserver"
)

// Self-test names served on the admin /selftest (`weft check` reads them).
const (
	SelfTestGet        = "get"
	SelfTestGetProfile = "get-profile"
)

// selfTests resolve cfg.SelfTestAuthority through the service's own gRPC
// listener, as a proxy does.
func (s *Server) selfTests() []ctlserver.SelfTest {
	path := s.cfg.SelfTestAuthority
	return []ctlserver.SelfTest{
		{Name: SelfTestGet, Run: func(ctx context.Context, addr string) (string, error) {
			return withClient(addr, func(c destinationv1.DestinationClient) (string, error) {
				st, err := c.Get(ctx, &destinationv1.GetDestination{Path: path})
				if err != nil {
					return "", fmt.Errorf("get %s: %w", path, err)
				}
				u, err := st.Recv()
				if err != nil {
					return "", fmt.Errorf("get %s: %w", path, err)
				}
				add := u.GetAdd()
				if add == nil || len(add.GetAddrs()) == 0 {
					return "", fmt.Errorf("get %s answered no endpoints", path)
				}
				return fmt.Sprintf("%s: %d endpoints", path, len(add.GetAddrs())), nil
			})
		}},
		{Name: SelfTestGetProfile, Run: func(ctx context.Context, addr string) (string, error) {
			return withClient(addr, func(c destinationv1.DestinationClient) (string, error) {
				st, err := c.GetProfile(ctx, &destinationv1.GetDestination{Path: path})
				if err != nil {
					return "", fmt.Errorf("get profile %s: %w", path, err)
				}
				p, err := st.Recv()
				if err != nil {
					return "", fmt.Errorf("get profile %s: %w", path, err)
				}
				if p.GetFullyQualifiedName() == "" {
					return "", errors.New("get profile " + path + " answered a profile without a name")
				}
				return fmt.Sprintf("%s: profile %s, %d routes", path, p.GetFullyQualifiedName(), len(p.GetRoutes())), nil
			})
		}},
	}
}

func withClient(addr string, f func(destinationv1.DestinationClient) (string, error)) (string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	return f(destinationv1.NewDestinationClient(conn))
}
