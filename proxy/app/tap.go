package app

import (
	"errors"
	"fmt"
	"net"

	"github.com/weftmesh/weft/proxy/config"
	"github.com/weftmesh/weft/proxy/metrics"
	"github.com/weftmesh/weft/proxy/pipeline"
	proxytap "github.com/weftmesh/weft/proxy/tap"
)

// tapServer is the tap gRPC server and its listener; nil when tap is off.
type tapServer struct {
	hub *proxytap.Hub
	srv *proxytap.Server
	ln  net.Listener
}

// newTap builds the tap hub and server when tap is on: identity on, a
// listen address and at least one authorized identity. The server speaks
// mTLS with the proxy's own certificate and serves only the authorized IDs.
func (a *App) newTap() (*tapServer, error) {
	c := &a.cfg
	if c.TapAddr == "" || len(c.TapAuthorizedIDs) == 0 {
		return nil, nil
	}
	if a.mesh == nil {
		a.log.Info("tap off: it needs identity (mTLS only)", "tap_authorized_ids", c.TapAuthorizedIDs)
		return nil, nil
	}
	hub := proxytap.NewHub(proxytap.Config{RedactHeaders: c.TapRedactHeaders})
	srv, err := proxytap.NewServer(proxytap.ServerConfig{Hub: hub, SVIDs: a.mesh, Bundle: a.mesh, AuthorizedIDs: c.TapAuthorizedIDs})
	if err != nil {
		return nil, fmt.Errorf("%sTAP_AUTHORIZED_IDS: %w", config.Prefix, err)
	}
	ln, err := net.Listen("tcp", c.TapAddr)
	if err != nil {
		return nil, fmt.Errorf("%sTAP_LISTEN_ADDR: %w", config.Prefix, err)
	}
	a.metrics.AddCollector(func() []metrics.Family { return hub.Stats().Families() })
	return &tapServer{hub: hub, srv: srv, ln: ln}, nil
}

// serve runs the server until stop.
func (t *tapServer) serve(a *App) {
	if err := t.srv.Serve(t.ln); err != nil && !errors.Is(err, net.ErrClosed) {
		a.log.Error("tap server", "err", err)
	}
}

// stop ends every tap stream and closes the listener.
func (t *tapServer) stop() { t.srv.Stop() }

// tapHook is the pipelines' Tap hook: nil (off, one nil check per request)
// without a tap server.
func (a *App) tapHook() pipeline.Tap {
	if a.tap == nil {
		return nil
	}
	return a.tap.hub
}

// TapAddr is the tap server's bound address; nil when tap is off.
func (a *App) TapAddr() net.Addr {
	if a.tap == nil {
		return nil
	}
	return a.tap.ln.Addr()
}
