package h2

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

// Defaults of the Config limits.
const (
	DefaultMaxConcurrentStreams = 100
	DefaultMaxHeaderListSize    = 64 << 10
	DefaultMaxReadFrameSize     = 16 << 10
	DefaultIdleTimeout          = 5 * time.Minute
	DefaultMaxResets            = 200
	DefaultResetWindow          = 10 * time.Second
	DefaultDialTimeout          = 5 * time.Second
	DefaultUpstreamIdleTimeout  = 90 * time.Second
	DefaultPingInterval         = 30 * time.Second
	DefaultPingTimeout          = 15 * time.Second
)

// Config configures a Proxy. Only Router is required.
type Config struct {
	// Direction is reported in every record.
	Direction record.Direction
	// Router picks an endpoint per request. Required.
	Router target.Router
	// Observer receives one record per exchange; nil records nothing. When
	// it also implements RouteObserver it gets the rt_route records.
	Observer target.Observer
	// Profiles looks up request profiles (routes, response classes,
	// timeouts, retries); nil means no profiles: no route is matched and
	// nothing is retried.
	Profiles target.Profiles
	// Tap receives the tapped exchanges; nil taps nothing.
	Tap pipeline.Tap
	// Dialer opens upstream connections; nil dials plain TCP to ep.Addr.
	Dialer target.Dialer
	// Logger receives connection-level events (flood cut-offs); nil uses
	// slog.Default().
	Logger *slog.Logger

	// MaxConcurrentStreams is advertised to clients (SETTINGS) and bounds the
	// handlers running per client connection; 0 means 100.
	MaxConcurrentStreams uint32
	// MaxHeaderListSize bounds the decoded request header list of a client
	// stream (bytes, HTTP/2 accounting) and of upstream responses; 0 means
	// 64 KiB. A larger request is answered 431.
	MaxHeaderListSize uint32
	// MaxReadFrameSize is the largest frame accepted from clients and
	// upstreams; 0 means 16 KiB (the protocol minimum).
	MaxReadFrameSize uint32
	// IdleTimeout closes a client connection (with GOAWAY) after it had no
	// open streams for this long; 0 means 5 minutes, negative disables.
	IdleTimeout time.Duration
	// MaxResets is how many RST_STREAM frames a client connection may send
	// within ResetWindow; one more and the connection is closed with
	// GOAWAY(ENHANCE_YOUR_CALM) (rapid-reset protection, CVE-2023-44487).
	// 0 means 200; negative disables the limit.
	MaxResets int
	// ResetWindow is the window MaxResets is counted over; 0 means 10 s.
	ResetWindow time.Duration

	// DialTimeout bounds one upstream dial; 0 means 5 s.
	DialTimeout time.Duration
	// UpstreamIdleTimeout closes pooled upstream connections idle this long;
	// 0 means 90 s.
	UpstreamIdleTimeout time.Duration
	// PingInterval sends a PING on an upstream connection that received no
	// frame for this long, and PingTimeout closes it when the PING is not
	// answered; 0 means 30 s and 15 s.
	PingInterval, PingTimeout time.Duration
}

// withDefaults validates c and fills the zero values.
func (c Config) withDefaults() (Config, error) {
	if c.Router == nil {
		return c, errors.New("h2 config: Router is required")
	}
	if c.Direction != record.Inbound && c.Direction != record.Outbound {
		return c, fmt.Errorf("h2 config: unknown direction %d", c.Direction)
	}
	if c.MaxReadFrameSize != 0 && (c.MaxReadFrameSize < 16<<10 || c.MaxReadFrameSize > 1<<24-1) {
		return c, fmt.Errorf("h2 config: MaxReadFrameSize %d outside [16384, 16777215]", c.MaxReadFrameSize)
	}
	if c.MaxHeaderListSize != 0 && c.MaxHeaderListSize < 1024 {
		return c, fmt.Errorf("h2 config: MaxHeaderListSize %d below 1024", c.MaxHeaderListSize)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ResetWindow", c.ResetWindow}, {"DialTimeout", c.DialTimeout}, {"UpstreamIdleTimeout", c.UpstreamIdleTimeout}, {"PingInterval", c.PingInterval}, {"PingTimeout", c.PingTimeout}} {
		if d.v < 0 {
			return c, fmt.Errorf("h2 config: %s %v is negative", d.name, d.v)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if c.MaxHeaderListSize == 0 {
		c.MaxHeaderListSize = DefaultMaxHeaderListSize
	}
	if c.MaxReadFrameSize == 0 {
		c.MaxReadFrameSize = DefaultMaxReadFrameSize
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	} else if c.IdleTimeout < 0 {
		c.IdleTimeout = 0
	}
	if c.MaxResets == 0 {
		c.MaxResets = DefaultMaxResets
	}
	if c.ResetWindow == 0 {
		c.ResetWindow = DefaultResetWindow
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.UpstreamIdleTimeout == 0 {
		c.UpstreamIdleTimeout = DefaultUpstreamIdleTimeout
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	return c, nil
}
