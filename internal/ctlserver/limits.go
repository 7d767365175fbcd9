package ctlserver

import (
	"crypto/tls"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// Limits bound what one client may hold of a component's API server, so a
// broken or hostile pod cannot exhaust it (docs/development.md lists them).
type Limits struct {
	// Handshake bounds connection setup (TLS and HTTP/2 preface); 0 means 10 s.
	Handshake time.Duration
	// MaxRecvMsg is the largest request message in bytes; 0 means 1 MiB.
	MaxRecvMsg int
	// MaxStreams is the concurrent streams per connection; 0 means 1000.
	MaxStreams uint32
}

func (l Limits) withDefaults() Limits {
	if l.Handshake == 0 {
		l.Handshake = 10 * time.Second
	}
	if l.MaxRecvMsg == 0 {
		l.MaxRecvMsg = 1 << 20
	}
	if l.MaxStreams == 0 {
		l.MaxStreams = 1000
	}
	return l
}

// NewGRPC builds a gRPC server with l's limits, keep-alive pings that find
// dead clients (30 s, answered within 10 s) and enforcement against clients
// pinging more often than every 10 s; tlsConf nil serves plaintext (for a
// component whose proxy terminates mTLS).
func NewGRPC(l Limits, tlsConf *tls.Config, opts ...grpc.ServerOption) *grpc.Server {
	l = l.withDefaults()
	base := []grpc.ServerOption{
		grpc.ConnectionTimeout(l.Handshake),
		grpc.MaxRecvMsgSize(l.MaxRecvMsg),
		grpc.MaxConcurrentStreams(l.MaxStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
	if tlsConf != nil {
		base = append(base, grpc.Creds(credentials.NewTLS(tlsConf)))
	}
	return grpc.NewServer(append(base, opts...)...)
}

// maxHeaderBytes bounds an HTTP request head on the API and admin servers.
const maxHeaderBytes = 64 << 10

// NewHTTP builds an HTTP server with bounded head, body and idle times and
// head size; tlsConf nil for plaintext (the admin server).
func NewHTTP(l Limits, h http.Handler, tlsConf *tls.Config) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: l.Handshake,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}
