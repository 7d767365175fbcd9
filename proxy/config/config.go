// Package config turns the proxy's WEFT_PROXY_* environment into a typed,
// validated Config. Every error names the variable that caused it.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weftmesh/weft/proxy/admin"
	"github.com/weftmesh/weft/proxy/identity"
	"github.com/weftmesh/weft/proxy/mtls"
)

// Prefix is the common prefix of every proxy environment variable.
const Prefix = "WEFT_PROXY_"

// DefaultOpaquePorts are the server-speaks-first ports that skip protocol
// detection unless configured otherwise (Linkerd's default list).
var DefaultOpaquePorts = []uint16{25, 587, 3306, 4444, 5432, 6379, 9300, 11211}

// Config is the proxy's whole configuration.
type Config struct {
	// InboundAddrs are where redirected inbound connections arrive (one
	// listener each; an IPv6 address listens IPv6-only, so "0.0.0.0:4143"
	// and "[::]:4143" can be combined for dual stack).
	InboundAddrs []string
	// OutboundAddrs are where redirected outbound connections arrive
	// (e.g. "127.0.0.1:4140,[::1]:4140" for IPv6 pods).
	OutboundAddrs []string
	// AdminAddr serves /metrics, /ready, /live and /shutdown.
	AdminAddr string
	// InboundOpaquePorts and OutboundOpaquePorts skip protocol detection:
	// connections to them are forwarded as opaque TCP at once.
	InboundOpaquePorts, OutboundOpaquePorts []uint16
	// DetectTimeout bounds how long detection waits for the client's first
	// bytes before falling back to opaque TCP. At most 1s.
	DetectTimeout time.Duration
	// StaticDiscovery is the path of a STATIC_DISCOVERY YAML file; empty means
	// pass-through mode (everything goes to its original destination).
	StaticDiscovery string
	// ConnectTimeout bounds dialing an endpoint (502/504 on failure).
	ConnectTimeout time.Duration
	// ResponseTimeout bounds the wait for an HTTP response's headers (504);
	// zero means no limit.
	ResponseTimeout time.Duration
	// HeaderTimeout bounds reading an HTTP/1 request head (slow clients get
	// 408 and are closed); bodies are not limited by it.
	HeaderTimeout time.Duration
	// IdleTimeout closes client connections idle for this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds an HTTP/1 request head; larger heads get 431.
	MaxHeaderBytes int
	// ShutdownGracePeriod bounds draining after SIGTERM.
	ShutdownGracePeriod time.Duration
	// ShutdownQuiet is how long the proxy must see no open connections
	// during drain before it exits early.
	ShutdownQuiet time.Duration
	// AdminShutdown enables POST /shutdown (from loopback only).
	AdminShutdown bool
	// AppProbes are the application's HTTP probes the admin server forwards
	// under /app-probe/ (WEFT_PROXY_APP_PROBES, "port:/path,..."; the injector
	// sets it when it rewrites probes); empty disables forwarding.
	AppProbes []admin.Probe
	// PodIP is where forwarded probes reach the application; invalid means
	// 127.0.0.1.
	PodIP netip.Addr
	// InboundConnectLoopback sends inbound traffic to 127.0.0.1:<port>
	// (Linkerd's behaviour) instead of the original destination address.
	InboundConnectLoopback bool
	// LogLevel is debug, info, warn or error.
	LogLevel string

	// Identity configures the proxy's SVID source; nil means identity is
	// off (no mTLS: plaintext to every endpoint, inbound TLS stays opaque).
	Identity *identity.Config
	// IdentityDisabledExplicitly is true when WEFT_PROXY_IDENTITY_DISABLED
	// was set (informational).
	IdentityDisabledExplicitly bool
	// Policy is the inbound authorization policy; the zero value accepts
	// plaintext and mTLS alike. Anything stricter requires Identity.
	Policy mtls.Policy
	// DestinationAddr is the destination service's host:port; empty means
	// STATIC_DISCOVERY or pass-through.
	DestinationAddr string
	// DestinationName is the SPIFFE ID the destination service must
	// present; set only when Identity is on (empty: plaintext gRPC).
	DestinationName string
	// DestinationContext is the context token sent with every lookup
	// (JSON naming the pod); empty sends none.
	DestinationContext string
	// DestinationFailFast is how long a request waits for endpoints before
	// 503; zero means the destination client's default (3s).
	DestinationFailFast time.Duration
	// DestinationSuffixes are the name suffixes looked up by name; nil
	// means the destination client's default (svc.cluster.local); empty
	// (".") means every target is looked up by original destination.
	DestinationSuffixes []string

	// TapAddr serves the tap gRPC API (proxy/tap) over mTLS
	// (WEFT_PROXY_TAP_LISTEN_ADDR); it needs Identity.
	TapAddr string
	// TapAuthorizedIDs are the SPIFFE IDs allowed to tap
	// (WEFT_PROXY_TAP_AUTHORIZED_IDS, comma-separated); empty disables tap.
	TapAuthorizedIDs []string
	// TapRedactHeaders are header names whose values are redacted in tap
	// events besides the built-in list (WEFT_PROXY_TAP_REDACT_HEADERS).
	TapRedactHeaders []string
}

// Default returns the configuration used when no variable is set.
func Default() Config {
	return Config{
		InboundAddrs:        []string{"0.0.0.0:4143"},
		OutboundAddrs:       []string{"127.0.0.1:4140"},
		AdminAddr:           "0.0.0.0:4191",
		InboundOpaquePorts:  slices.Clone(DefaultOpaquePorts),
		OutboundOpaquePorts: slices.Clone(DefaultOpaquePorts),
		DetectTimeout:       500 * time.Millisecond,
		ConnectTimeout:      1 * time.Second,
		ResponseTimeout:     0,
		HeaderTimeout:       10 * time.Second,
		IdleTimeout:         90 * time.Second,
		MaxHeaderBytes:      16 << 10,
		ShutdownGracePeriod: 30 * time.Second,
		ShutdownQuiet:       time.Second,
		LogLevel:            "info",
		TapAddr:             "0.0.0.0:4190",
	}
}

// FromEnv reads the configuration from getenv (os.Getenv when nil) over the
// defaults and validates it.
func FromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := Default()
	p := parser{getenv: getenv}
	p.addrs("INBOUND_LISTEN_ADDR", &c.InboundAddrs)
	p.addrs("OUTBOUND_LISTEN_ADDR", &c.OutboundAddrs)
	p.addr("ADMIN_LISTEN_ADDR", &c.AdminAddr)
	p.ports("INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION", &c.InboundOpaquePorts)
	p.ports("OUTBOUND_PORTS_DISABLE_PROTOCOL_DETECTION", &c.OutboundOpaquePorts)
	p.duration("DETECT_TIMEOUT", &c.DetectTimeout)
	p.str("STATIC_DISCOVERY", &c.StaticDiscovery)
	p.duration("CONNECT_TIMEOUT", &c.ConnectTimeout)
	p.duration("HTTP_RESPONSE_TIMEOUT", &c.ResponseTimeout)
	p.duration("HTTP_HEADER_READ_TIMEOUT", &c.HeaderTimeout)
	p.duration("IDLE_TIMEOUT", &c.IdleTimeout)
	p.integer("MAX_HEADER_BYTES", &c.MaxHeaderBytes)
	p.duration("SHUTDOWN_GRACE_PERIOD", &c.ShutdownGracePeriod)
	p.duration("SHUTDOWN_QUIET", &c.ShutdownQuiet)
	p.boolean("ADMIN_SHUTDOWN_ENABLED", &c.AdminShutdown)
	p.probes("APP_PROBES", &c.AppProbes)
	p.ip("POD_IP", &c.PodIP)
	p.boolean("INBOUND_CONNECT_LOOPBACK", &c.InboundConnectLoopback)
	p.str("LOG_LEVEL", &c.LogLevel)
	p.addr("TAP_LISTEN_ADDR", &c.TapAddr)
	p.list("TAP_AUTHORIZED_IDS", &c.TapAuthorizedIDs)
	p.list("TAP_REDACT_HEADERS", &c.TapRedactHeaders)
	if p.err != nil {
		return Config{}, p.err
	}
	if err := parseMesh(getenv, &c); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks the ranges of every field.
func (c *Config) Validate() error {
	switch {
	case c.DetectTimeout <= 0 || c.DetectTimeout > time.Second:
		return fmt.Errorf("%sDETECT_TIMEOUT: %s is out of range (0, 1s]", Prefix, c.DetectTimeout)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("%sCONNECT_TIMEOUT: must be positive, got %s", Prefix, c.ConnectTimeout)
	case c.ResponseTimeout < 0:
		return fmt.Errorf("%sHTTP_RESPONSE_TIMEOUT: must not be negative, got %s", Prefix, c.ResponseTimeout)
	case c.HeaderTimeout <= 0:
		return fmt.Errorf("%sHTTP_HEADER_READ_TIMEOUT: must be positive, got %s", Prefix, c.HeaderTimeout)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("%sIDLE_TIMEOUT: must be positive, got %s", Prefix, c.IdleTimeout)
	case c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 1<<20:
		return fmt.Errorf("%sMAX_HEADER_BYTES: %d is out of range [1024, 1048576]", Prefix, c.MaxHeaderBytes)
	case c.ShutdownGracePeriod <= 0:
		return fmt.Errorf("%sSHUTDOWN_GRACE_PERIOD: must be positive, got %s", Prefix, c.ShutdownGracePeriod)
	case c.ShutdownQuiet < 0:
		return fmt.Errorf("%sSHUTDOWN_QUIET: must not be negative, got %s", Prefix, c.ShutdownQuiet)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("%sLOG_LEVEL: %q is not one of debug, info, warn, error", Prefix, c.LogLevel)
	}
	return nil
}

type parser struct {
	getenv func(string) string
	err    error
}

func (p *parser) get(name string) (string, bool) {
	if p.err != nil {
		return "", false
	}
	v := strings.TrimSpace(p.getenv(Prefix + name))
	return v, v != ""
}

func (p *parser) fail(name, v string, err error) {
	p.err = fmt.Errorf("%s%s=%q: %w", Prefix, name, v, err)
}

func (p *parser) str(name string, dst *string) {
	if v, ok := p.get(name); ok {
		*dst = v
	}
}

// list reads a comma-separated list, dropping empty items.
func (p *parser) list(name string, dst *[]string) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	*dst = out
}

func (p *parser) addr(name string, dst *string) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	if _, err := netip.ParseAddrPort(v); err != nil {
		p.fail(name, v, fmt.Errorf("want ip:port: %w", err))
		return
	}
	*dst = v
}

// addrs parses a comma-separated list of ip:port.
func (p *parser) addrs(name string, dst *[]string) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	var out []string
	for _, a := range strings.Split(v, ",") {
		a = strings.TrimSpace(a)
		if _, err := netip.ParseAddrPort(a); err != nil {
			p.fail(name, v, fmt.Errorf("want ip:port[,ip:port...]: %w", err))
			return
		}
		out = append(out, a)
	}
	*dst = out
}

func (p *parser) duration(name string, dst *time.Duration) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(name, v, err)
		return
	}
	*dst = d
}

func (p *parser) integer(name string, dst *int) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(name, v, err)
		return
	}
	*dst = n
}

func (p *parser) boolean(name string, dst *bool) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, err)
		return
	}
	*dst = b
}

// ports parses a comma-separated list of ports and ranges (25,8000-8010).
// The literal "none" means an empty list.
func (p *parser) ports(name string, dst *[]uint16) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	ps, err := ParsePorts(v)
	if err != nil {
		p.fail(name, v, err)
		return
	}
	*dst = ps
}

// ParsePorts parses "25,587,8000-8010" into a sorted, deduplicated list;
// "none" is the empty list.
func ParsePorts(s string) ([]uint16, error) {
	if s == "none" {
		return []uint16{}, nil
	}
	var out []uint16
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := parsePort(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("port range %q is reversed", f)
			}
			if int(b)-int(a) > 4096 {
				return nil, fmt.Errorf("port range %q is wider than 4096 ports", f)
			}
		}
		for p := int(a); p <= int(b); p++ {
			out = append(out, uint16(p))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(n), nil
}

func splitHostPort(s string) (string, string, error) {
	h, p, err := net.SplitHostPort(s)
	if err == nil && (h == "" || p == "") {
		err = fmt.Errorf("empty host or port")
	}
	return h, p, err
}

func (p *parser) probes(name string, dst *[]admin.Probe) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	probes, err := admin.ParseProbes(v)
	if err != nil {
		p.fail(name, v, err)
		return
	}
	*dst = probes
}

func (p *parser) ip(name string, dst *netip.Addr) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		p.fail(name, v, err)
		return
	}
	*dst = a
}
