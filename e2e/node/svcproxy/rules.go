package svcproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// masqMark is the packet mark bit that asks WEFT-POSTROUTING to masquerade (kube-proxy's bit).
const masqMark = "0x4000"

// chains names the chains of one prefix. Per-service chains add a hash of what they serve.
type chains struct{ prefix string }

func (c chains) services() string    { return c.prefix + "-SERVICES" }
func (c chains) postrouting() string { return c.prefix + "-POSTROUTING" }
func (c chains) markMasq() string    { return c.prefix + "-MARK-MASQ" }
func (c chains) svc(sp servicePort) string {
	return c.prefix + "-SVC-" + hash(sp.name+"/"+string(sp.protocol))
}
func (c chains) sep(sp servicePort, ep netip.AddrPort) string {
	return c.prefix + "-SEP-" + hash(sp.name+"/"+string(sp.protocol)+"/"+ep.String())
}

// owns reports whether chain is one of this prefix's chains (and not, say, another component's
// chain that happens to share the prefix).
func (c chains) owns(chain string) bool {
	switch chain {
	case c.services(), c.postrouting(), c.markMasq():
		return true
	}
	return strings.HasPrefix(chain, c.prefix+"-SVC-") || strings.HasPrefix(chain, c.prefix+"-SEP-")
}

// hashLen keeps "<prefix>-SEP-<hash>" within iptables' 28-character chain names for prefixes
// of up to maxPrefixLen characters.
const (
	hashLen      = 12
	maxPrefixLen = 28 - len("-SEP-") - hashLen
)

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:hashLen]
}

// jump is a rule in a built-in chain that sends traffic into one of ours.
type jump struct {
	table, chain string
	args         []string
}

// jumps are the rules Run inserts into built-in chains and Cleanup deletes.
func (p *Proxier) jumps() []jump {
	c := p.chains
	cidr := p.cfg.ServiceCIDR.String()
	return []jump{
		{"nat", "PREROUTING", []string{"-d", cidr, "-m", "comment", "--comment", "weft service portals", "-j", c.services()}},
		{"nat", "OUTPUT", []string{"-d", cidr, "-m", "comment", "--comment", "weft service portals", "-j", c.services()}},
		{"nat", "POSTROUTING", []string{"-m", "comment", "--comment", "weft service postrouting", "-j", c.postrouting()}},
		{"filter", "FORWARD", []string{"-d", cidr, "-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "weft services without endpoints", "-j", c.services()}},
		{"filter", "OUTPUT", []string{"-d", cidr, "-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "weft services without endpoints", "-j", c.services()}},
	}
}

// ruleset is one iptables-restore --noflush payload and the chains it leaves in place.
type ruleset struct {
	payload []byte
	nat     []string // our nat chains after the restore
}

// render writes the complete state of our chains. Every chain we own is declared (which
// flushes it), rewritten, and chains in staleNat (owned before, not needed now) are deleted, all
// in one atomic iptables-restore transaction. masqAll adds a masquerade mark for every
// pod-sourced service connection (used when bridged traffic bypasses iptables).
func (p *Proxier) render(sps []servicePort, staleNat []string, masqAll bool) ruleset {
	c := p.chains
	var nat, natRules, filter bytes.Buffer
	natChains := []string{c.services(), c.postrouting(), c.markMasq()}
	rule := func(b *bytes.Buffer, args ...string) { b.WriteString(strings.Join(args, " ") + "\n") }

	rule(&natRules, "-A", c.postrouting(), "-m", "mark", "!", "--mark", masqMark+"/"+masqMark, "-j", "RETURN")
	rule(&natRules, "-A", c.postrouting(), "-j", "MARK", "--xor-mark", masqMark)
	rule(&natRules, "-A", c.postrouting(), "-m", "comment", "--comment", `"weft service traffic requiring SNAT"`, "-j", "MASQUERADE", "--random-fully")
	rule(&natRules, "-A", c.markMasq(), "-j", "MARK", "--or-mark", masqMark)

	dns := p.cfg.ClusterDNS.String() + "/32"
	for _, proto := range []string{"udp", "tcp"} {
		rule(&natRules, "-A", c.services(), "-d", dns, "-p", proto, "-m", proto, "--dport", "53",
			"-m", "comment", "--comment", `"cluster DNS"`, "-j", "DNAT", "--to-destination", p.cfg.DNSTarget.String())
	}

	for _, sp := range sps {
		proto := strings.ToLower(string(sp.protocol))
		match := []string{"-d", sp.clusterIP.String() + "/32", "-p", proto, "-m", proto, "--dport", fmt.Sprint(sp.port),
			"-m", "comment", "--comment", fmt.Sprintf("%q", sp.name)}
		if len(sp.endpoints) == 0 {
			rule(&filter, append(append([]string{"-A", c.services()}, match...), "-j", "REJECT", "--reject-with", "icmp-port-unreachable")...)
			continue
		}
		svcChain := c.svc(sp)
		natChains = append(natChains, svcChain)
		rule(&natRules, append(append([]string{"-A", c.services()}, match...), "-j", svcChain)...)
		if masqAll {
			rule(&natRules, "-A", svcChain, "-s", p.cfg.PodCIDR.String(), "-j", c.markMasq())
		}
		for i, ep := range sp.endpoints {
			sepChain := c.sep(sp, ep)
			natChains = append(natChains, sepChain)
			if n := len(sp.endpoints) - i; n > 1 {
				rule(&natRules, "-A", svcChain, "-m", "statistic", "--mode", "random", "--probability", fmt.Sprintf("%.10f", 1/float64(n)), "-j", sepChain)
			} else {
				rule(&natRules, "-A", svcChain, "-j", sepChain)
			}
			// Hairpin: a backend reaching itself through its Service must see the reply come
			// back through the node, so its own source address is masqueraded.
			rule(&natRules, "-A", sepChain, "-s", ep.Addr().String()+"/32", "-j", c.markMasq())
			rule(&natRules, "-A", sepChain, "-p", proto, "-m", proto, "-j", "DNAT", "--to-destination", ep.String())
		}
	}

	nat.WriteString("*nat\n")
	declared := slices.Concat(natChains, staleNat)
	for _, ch := range declared {
		fmt.Fprintf(&nat, ":%s - [0:0]\n", ch)
	}
	nat.Write(natRules.Bytes())
	for _, ch := range staleNat {
		fmt.Fprintf(&nat, "-X %s\n", ch)
	}
	nat.WriteString("COMMIT\n*filter\n")
	fmt.Fprintf(&nat, ":%s - [0:0]\n", c.services())
	nat.Write(filter.Bytes())
	nat.WriteString("COMMIT\n")
	return ruleset{payload: nat.Bytes(), nat: natChains}
}
