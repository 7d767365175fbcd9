package iptables

import (
	"fmt"
	"strings"
)

// Chain names weft owns in the nat table.
const (
	ChainPrerouting = "WEFT_PROXY_INIT_PREROUTING"
	ChainRedirect   = "WEFT_PROXY_INIT_REDIRECT"
	ChainOutput     = "WEFT_PROXY_INIT_OUTPUT"
)

// multiportMax is how many ports iptables' multiport match takes per rule (a range counts twice).
const multiportMax = 15

// Family is an IP family: iptables (v4) or ip6tables (v6).
type Family int

// Families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	if f == IPv6 {
		return "ip6tables"
	}
	return "iptables"
}

// state is what already exists in the nat table that Render must not duplicate.
type state struct {
	// preroutingJumps and outputJumps count existing jumps from the built-in chains to ours.
	preroutingJumps, outputJumps int
}

// Render returns the iptables-restore input (nat table, meant for --noflush) that installs the
// rules for one family into an empty table. It is what --dry-run prints.
func Render(cfg Config, fam Family) string {
	return render(cfg, fam, state{})
}

func render(cfg Config, fam Family, st state) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# weft-proxy init: %s nat rules (apply with %s-restore --noflush)", fam, fam)
	w("*nat")
	// Declaring our chains makes --noflush restore create or flush them, so re-runs replace their
	// contents instead of appending (idempotency).
	w(":%s - [0:0]", ChainPrerouting)
	w(":%s - [0:0]", ChainRedirect)
	w(":%s - [0:0]", ChainOutput)

	// Inbound: PREROUTING -> WEFT_PROXY_INIT_PREROUTING -> WEFT_PROXY_INIT_REDIRECT.
	for _, p := range cfg.SubnetsToIgnore {
		if (fam == IPv6) != p.Addr().Is6() {
			continue
		}
		w("-A %s -s %s %s -j RETURN", ChainPrerouting, p, comment("ignore-subnet"))
	}
	w("-A %s -p tcp %s -j %s", ChainPrerouting, comment("inbound"), ChainRedirect)
	for _, ports := range multiport(cfg.inboundIgnored()) {
		w("-A %s -p tcp -m multiport --dports %s %s -j RETURN", ChainRedirect, ports, comment("ignore-inbound-ports"))
	}
	if len(cfg.PortsToRedirect) == 0 {
		w("-A %s -p tcp %s -j REDIRECT --to-ports %d", ChainRedirect, comment("redirect-all-inbound"), cfg.IncomingProxyPort)
	} else {
		for _, ports := range multiport(cfg.PortsToRedirect) {
			w("-A %s -p tcp -m multiport --dports %s %s -j REDIRECT --to-ports %d", ChainRedirect, ports, comment("redirect-inbound-ports"), cfg.IncomingProxyPort)
		}
	}

	// Outbound: OUTPUT -> WEFT_PROXY_INIT_OUTPUT.
	w("-A %s -m owner --uid-owner %d %s -j RETURN", ChainOutput, cfg.ProxyUID, comment("ignore-proxy-uid"))
	if cfg.ProxyGID >= 0 {
		w("-A %s -m owner --gid-owner %d %s -j RETURN", ChainOutput, cfg.ProxyGID, comment("ignore-proxy-gid"))
	}
	w("-A %s -o lo %s -j RETURN", ChainOutput, comment("ignore-loopback"))
	for _, ports := range multiport(cfg.OutboundPortsToIgnore) {
		w("-A %s -p tcp -m multiport --dports %s %s -j RETURN", ChainOutput, ports, comment("ignore-outbound-ports"))
	}
	w("-A %s -p tcp %s -j REDIRECT --to-ports %d", ChainOutput, comment("redirect-all-outbound"), cfg.OutgoingProxyPort)

	// Jumps from the built-in chains, exactly once each.
	jump := func(builtin, chain, name string, have int) {
		if have == 0 {
			w("-A %s %s -j %s", builtin, comment(name), chain)
		}
		for ; have > 1; have-- {
			w("-D %s %s -j %s", builtin, comment(name), chain)
		}
	}
	jump("PREROUTING", ChainPrerouting, "install-prerouting", st.preroutingJumps)
	jump("OUTPUT", ChainOutput, "install-output", st.outputJumps)
	w("COMMIT")
	return b.String()
}

func comment(name string) string {
	return fmt.Sprintf("-m comment --comment \"weft/%s\"", name)
}

// multiport splits port ranges into multiport argument lists of at most multiportMax ports each.
func multiport(rs []PortRange) []string {
	var out []string
	var cur []string
	n := 0
	for _, r := range rs {
		cost := 1
		if r.First != r.Last {
			cost = 2
		}
		if n+cost > multiportMax {
			out = append(out, strings.Join(cur, ","))
			cur, n = nil, 0
		}
		cur = append(cur, r.String())
		n += cost
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, ","))
	}
	return out
}

// parseState counts weft's jumps in iptables-save output of the nat table.
func parseState(save string) state {
	var st state
	for _, line := range strings.Split(save, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "-A" {
			continue
		}
		switch {
		case f[1] == "PREROUTING" && strings.HasSuffix(line, "-j "+ChainPrerouting):
			st.preroutingJumps++
		case f[1] == "OUTPUT" && strings.HasSuffix(line, "-j "+ChainOutput):
			st.outputJumps++
		}
	}
	return st
}
