package ctlserver

import (
	"context"
	"errors"
	"net"
	"net/http"

	"google.golang.org/grpc"
)

// GRPC adapts a gRPC server: Stop drains with GracefulStop until the drain
// deadline, then closes every stream.
func GRPC(gs *grpc.Server) API { return grpcAPI{gs} }

type grpcAPI struct{ gs *grpc.Server }

func (g grpcAPI) Serve(lis net.Listener) error {
	if err := g.gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return ErrStopped
}

func (g grpcAPI) Stop(ctx context.Context) {
	stopped := make(chan struct{})
	go func() { g.gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		g.gs.Stop()
		<-stopped
	}
}

// HTTPS adapts an HTTP server with a TLSConfig: it serves TLS on the
// listener; Stop shuts it down gracefully until the drain deadline.
func HTTPS(hs *http.Server) API { return httpsAPI{hs} }

type httpsAPI struct{ hs *http.Server }

func (h httpsAPI) Serve(lis net.Listener) error { return h.hs.ServeTLS(lis, "", "") }

func (h httpsAPI) Stop(ctx context.Context) {
	if h.hs.Shutdown(ctx) != nil {
		h.hs.Close()
	}
}
