// Package destclient is the proxy's client of the destination service: one
// Get and one GetProfile subscription per authority (or original destination
// address) shared by every request, reconnected with jittered exponential
// back-off, keeping the last known endpoints and profile while the control
// plane is unreachable. Client implements discovery.Resolver by balancing
// each subscription's endpoints (package balance) and serves the compiled
// profiles (package profile) the HTTP layers route with.
package destclient

import (
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/weftmesh/weft/proxy/balance"
	"github.com/weftmesh/weft/proxy/discovery"
)

// Defaults.
const (
	DefaultFailFastTimeout  = 3 * time.Second
	DefaultBackoffMin       = 100 * time.Millisecond
	DefaultBackoffMax       = 10 * time.Second
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultMaxSubscriptions = 4096
)

// DefaultSuffixes are the name suffixes looked up by name.
var DefaultSuffixes = []string{"svc.cluster.local"}

// Config configures a Client.
type Config struct {
	// Addr is the destination service's gRPC address (host:port). Required.
	Addr string
	// ContextToken is sent with every lookup: JSON naming the caller
	// ({"ns":"…","pod":"…","nodeName":"…"}); empty sends none.
	ContextToken string
	// DialOptions are added to the gRPC client's; without transport
	// credentials among them the connection is plaintext (mTLS plugs in
	// here with grpc.WithTransportCredentials).
	DialOptions []grpc.DialOption
	// Suffixes: an authority whose host is one of these or ends with
	// "." + one of them is looked up by name; any other request is looked up
	// by its original destination address (a ClusterIP resolves to its
	// Service). nil means DefaultSuffixes; an empty non-nil slice looks
	// everything up by address.
	Suffixes []string
	// FailFastTimeout is how long a request waits for an endpoint when its
	// target has none (or before the first answer) before failing with
	// proxyerr.NoEndpoints (503); 0 means 3 s.
	FailFastTimeout time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential back-off
	// between reconnection attempts; 0 means 100 ms and 10 s.
	BackoffMin, BackoffMax time.Duration
	// IdleTimeout ends a subscription no request has used for this long;
	// 0 means 5 min.
	IdleTimeout time.Duration
	// MaxSubscriptions caps concurrent subscriptions; targets beyond it go
	// to Fallback. 0 means 4096.
	MaxSubscriptions int
	// Balance tunes every subscription's balancer.
	Balance balance.Config
	// Fallback resolves targets the destination service does not know
	// (NoEndpoints{exists: false}, names it rejects, authorities without an
	// original destination) and targets it never answered for within the
	// fail-fast timeout. nil means pass-through to the original destination.
	Fallback discovery.Resolver
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		return c, errors.New("destination client: Addr is required")
	}
	if c.Suffixes == nil {
		c.Suffixes = DefaultSuffixes
	}
	if c.FailFastTimeout <= 0 {
		c.FailFastTimeout = DefaultFailFastTimeout
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxSubscriptions <= 0 {
		c.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if c.Fallback == nil {
		c.Fallback = &discovery.PassThrough{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
