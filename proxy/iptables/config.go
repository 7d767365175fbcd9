// Package iptables installs weft's transparent-interception rules: the nat-table chains that send a
// pod's inbound TCP to the proxy's inbound listener and its outbound TCP to the outbound listener.
// It is what Linkerd calls proxy-init and runs as `weft-proxy init`.
package iptables

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Default ports and identities, matching docs/development.md.
const (
	DefaultIncomingProxyPort = 4143
	DefaultOutgoingProxyPort = 4140
	DefaultProxyUID          = 2102
	AdminPort                = 4191
	ControlPort              = 4190
)

// Mode selects the iptables backend binaries.
type Mode string

// Backends. The empty Mode means "detect".
const (
	ModeAuto   Mode = ""
	ModeNFT    Mode = "nft"
	ModeLegacy Mode = "legacy"
)

// ParseMode validates an --iptables-mode value; "" and "auto" mean detect.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return ModeAuto, nil
	case "nft":
		return ModeNFT, nil
	case "legacy":
		return ModeLegacy, nil
	}
	return "", fmt.Errorf("iptables mode %q: want nft or legacy", s)
}

// PortRange is an inclusive range of TCP ports; a single port has First == Last.
type PortRange struct {
	First, Last uint16
}

// String renders the range the way iptables multiport wants it ("80" or "1000:2000").
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d:%d", r.First, r.Last)
}

// ParsePortRanges parses a comma-separated list of ports and ranges ("80,443,1000-2000").
// Empty input yields nil. Ports must be 1..65535 and ranges ascending.
func ParsePortRanges(s string) ([]PortRange, error) {
	var out []PortRange
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(f, "-")
		first, err := parsePort(lo)
		if err != nil {
			return nil, fmt.Errorf("port list %q: %w", s, err)
		}
		last := first
		if isRange {
			if last, err = parsePort(hi); err != nil {
				return nil, fmt.Errorf("port list %q: %w", s, err)
			}
			if last < first {
				return nil, fmt.Errorf("port list %q: range %s is descending", s, f)
			}
		}
		out = append(out, PortRange{First: first, Last: last})
	}
	return out, nil
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("invalid port %q: want an integer 1-65535", s)
	}
	return uint16(n), nil
}

// ParseSubnets parses a comma-separated list of CIDRs ("10.0.0.0/8,fd00::/8"); bare addresses are
// taken as single-host prefixes. Empty input yields nil.
func ParseSubnets(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("subnet list %q: invalid address or CIDR %q", s, f)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("subnet list %q: invalid CIDR %q", s, f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Config describes the rules to install. The zero value is not valid: use Defaults and change fields.
type Config struct {
	// IncomingProxyPort is where inbound TCP is redirected (the proxy's inbound listener).
	IncomingProxyPort uint16
	// OutgoingProxyPort is where outbound TCP is redirected (the proxy's outbound listener).
	OutgoingProxyPort uint16
	// ProxyUID is the uid the proxy runs as; its own traffic is never redirected.
	ProxyUID uint32
	// ProxyGID, when >= 0, additionally exempts traffic of that gid; -1 means no gid rule.
	ProxyGID int64
	// InboundPortsToIgnore are destination ports not redirected inbound; the admin (4191) and
	// control (4190) ports are always added.
	InboundPortsToIgnore []PortRange
	// OutboundPortsToIgnore are destination ports not redirected outbound; nil ignores none.
	OutboundPortsToIgnore []PortRange
	// SubnetsToIgnore are inbound source subnets not redirected; nil ignores none. IPv6 prefixes go
	// to ip6tables only, IPv4 ones to iptables only.
	SubnetsToIgnore []netip.Prefix
	// PortsToRedirect, when non-empty, limits inbound redirection to these ports; nil redirects all.
	PortsToRedirect []PortRange
	// IPv6 also programs ip6tables with the same rules.
	IPv6 bool
	// Mode picks iptables-nft or iptables-legacy; ModeAuto detects.
	Mode Mode
	// NetnsPath, when set, applies the rules inside that network namespace (e.g. /run/netns/x).
	NetnsPath string
	// Logger receives progress messages; nil discards them.
	Logger *slog.Logger
}

// Defaults returns a Config with Linkerd-compatible defaults.
func Defaults() Config {
	return Config{
		IncomingProxyPort: DefaultIncomingProxyPort,
		OutgoingProxyPort: DefaultOutgoingProxyPort,
		ProxyUID:          DefaultProxyUID,
		ProxyGID:          -1,
	}
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	if c.IncomingProxyPort == 0 {
		return fmt.Errorf("incoming proxy port must be 1-65535")
	}
	if c.OutgoingProxyPort == 0 {
		return fmt.Errorf("outgoing proxy port must be 1-65535")
	}
	if c.IncomingProxyPort == c.OutgoingProxyPort {
		return fmt.Errorf("incoming and outgoing proxy ports are both %d", c.IncomingProxyPort)
	}
	if c.ProxyGID < -1 || c.ProxyGID > 1<<32-1 {
		return fmt.Errorf("proxy gid %d out of range", c.ProxyGID)
	}
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return err
	}
	for _, r := range c.PortsToRedirect {
		if inRanges(c.IncomingProxyPort, []PortRange{r}) {
			return fmt.Errorf("ports to redirect %s include the incoming proxy port %d", r, c.IncomingProxyPort)
		}
	}
	return nil
}

// inboundIgnored is InboundPortsToIgnore plus the always-ignored admin and control ports, sorted.
func (c *Config) inboundIgnored() []PortRange {
	out := slices.Clone(c.InboundPortsToIgnore)
	for _, p := range []uint16{ControlPort, AdminPort} {
		if !inRanges(p, out) {
			out = append(out, PortRange{p, p})
		}
	}
	slices.SortFunc(out, func(a, b PortRange) int { return int(a.First) - int(b.First) })
	return out
}

func inRanges(p uint16, rs []PortRange) bool {
	for _, r := range rs {
		if p >= r.First && p <= r.Last {
			return true
		}
	}
	return false
}
