package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/weftmesh/weft/proxy/iptables"
)

// runInit implements `weft-proxy init`: it parses the flags into an iptables.Config and installs
// (or, with --dry-run, prints) the interception rules. It returns the process exit code.
func runInit(args []string) int {
	return initMain(args, os.Stdout, os.Stderr)
}

// initMain is runInit with explicit output streams (for tests).
func initMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("weft-proxy init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := iptables.Defaults()
	in := fs.Uint("incoming-proxy-port", uint(def.IncomingProxyPort), "port inbound TCP is redirected to")
	out := fs.Uint("outgoing-proxy-port", uint(def.OutgoingProxyPort), "port outbound TCP is redirected to")
	uid := fs.Uint("proxy-uid", uint(def.ProxyUID), "uid of the proxy; its traffic is not redirected")
	gid := fs.Int64("proxy-gid", -1, "gid of the proxy; its traffic is not redirected (-1: no gid rule)")
	inIgnore := fs.String("inbound-ports-to-ignore", "", "inbound ports/ranges not redirected, e.g. 22,8000-8100 (4190,4191 always)")
	outIgnore := fs.String("outbound-ports-to-ignore", "", "outbound ports/ranges not redirected")
	subnets := fs.String("subnets-to-ignore", "", "inbound source CIDRs not redirected")
	redirect := fs.String("ports-to-redirect", "", "redirect only these inbound ports/ranges (default: all)")
	ipv6 := fs.Bool("ipv6", false, "also program ip6tables")
	mode := fs.String("iptables-mode", "", "nft or legacy (default: detect)")
	dry := fs.Bool("dry-run", false, "print the iptables-restore input and change nothing")
	netns := fs.String("netns", "", "apply inside this network namespace (a path such as /proc/PID/ns/net, or a name under /run/netns)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "weft-proxy init: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg, err := initConfig(def, *in, *out, *uid, *gid, *inIgnore, *outIgnore, *subnets, *redirect, *mode)
	if err == nil {
		cfg.IPv6, cfg.NetnsPath = *ipv6, netnsPath(*netns)
		cfg.Logger, err = initLogger(*level, stderr)
	}
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "weft-proxy init: %v\n", err)
		return 2
	}
	if *dry {
		fmt.Fprint(stdout, iptables.Render(cfg, iptables.IPv4))
		if cfg.IPv6 {
			fmt.Fprint(stdout, iptables.Render(cfg, iptables.IPv6))
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := iptables.Apply(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "weft-proxy init: %v\n", err)
		return 1
	}
	return 0
}

func initConfig(cfg iptables.Config, in, out, uid uint, gid int64, inIgnore, outIgnore, subnets, redirect, mode string) (iptables.Config, error) {
	if in < 1 || in > 65535 || out < 1 || out > 65535 {
		return cfg, fmt.Errorf("proxy ports must be 1-65535 (got incoming %d, outgoing %d)", in, out)
	}
	if uid > 1<<32-2 {
		return cfg, fmt.Errorf("proxy uid %d out of range", uid)
	}
	cfg.IncomingProxyPort, cfg.OutgoingProxyPort = uint16(in), uint16(out)
	cfg.ProxyUID, cfg.ProxyGID = uint32(uid), gid
	var err error
	if cfg.InboundPortsToIgnore, err = iptables.ParsePortRanges(inIgnore); err != nil {
		return cfg, fmt.Errorf("--inbound-ports-to-ignore: %w", err)
	}
	if cfg.OutboundPortsToIgnore, err = iptables.ParsePortRanges(outIgnore); err != nil {
		return cfg, fmt.Errorf("--outbound-ports-to-ignore: %w", err)
	}
	if cfg.PortsToRedirect, err = iptables.ParsePortRanges(redirect); err != nil {
		return cfg, fmt.Errorf("--ports-to-redirect: %w", err)
	}
	if cfg.SubnetsToIgnore, err = iptables.ParseSubnets(subnets); err != nil {
		return cfg, fmt.Errorf("--subnets-to-ignore: %w", err)
	}
	if cfg.Mode, err = iptables.ParseMode(mode); err != nil {
		return cfg, fmt.Errorf("--iptables-mode: %w", err)
	}
	return cfg, nil
}

func initLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// netnsPath turns a bare namespace name (as `ip netns` knows it) into its path under /run/netns.
func netnsPath(s string) string {
	if s == "" || strings.Contains(s, "/") {
		return s
	}
	return "/run/netns/" + s
}
