package metricsapi

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/weftmesh/weft/internal/ctlserver"
)

// Run serves the query API on ListenAddr and the admin endpoints on
// AdminAddr while scraping, until ctx ends. /ready turns 200 once the pod
// and Service informers have synced.
func (s *Server) Run(ctx context.Context) error {
	return ctlserver.Run(ctx, s.serverConfig(), httpAPI{ctlserver.NewHTTP(ctlserver.Limits{}, s.Handler(), nil)}, s.Scrape)
}

// Serve is Run on listeners the caller opened (tests).
func (s *Server) Serve(ctx context.Context, lis, admin net.Listener) error {
	return ctlserver.Serve(ctx, s.serverConfig(), httpAPI{ctlserver.NewHTTP(ctlserver.Limits{}, s.Handler(), nil)}, lis, admin, s.Scrape)
}

func (s *Server) serverConfig() ctlserver.Config {
	return ctlserver.Config{
		Name: "viz", Addr: s.cfg.ListenAddr, AdminAddr: s.cfg.AdminAddr, Logger: s.cfg.Logger,
		Ready: func() error {
			select {
			case <-s.synced:
				return nil
			default:
				return errors.New("pod and service informers syncing")
			}
		},
	}
}

// httpAPI adapts a plaintext HTTP server (the viz pod's proxy terminates
// mTLS; the API server's service proxy reaches it in plaintext).
type httpAPI struct{ hs *http.Server }

func (h httpAPI) Serve(lis net.Listener) error { return h.hs.Serve(lis) }

func (h httpAPI) Stop(ctx context.Context) {
	if h.hs.Shutdown(ctx) != nil {
		h.hs.Close()
	}
}
