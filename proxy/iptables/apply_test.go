package iptables

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftmesh/weft/internal/testnet"
)

// Helper modes of the test binary, run in a subprocess (e.g. as another uid).
const helperEnv = "WEFT_IPTABLES_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "dial": // dial the address in argv and print what the peer says
		os.Exit(helperDial(os.Getenv("WEFT_DIAL")))
	case "apply": // try to apply rules; print the error
		err := Apply(context.Background(), Defaults())
		fmt.Print(err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helperDial(addr string) int {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	fmt.Print(string(b))
	return 0
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// saveNormalized is iptables-save for the nat table without comments and counters.
func saveNormalized(t *testing.T, h *testnet.Host, mode Mode, fam Family) string {
	t.Helper()
	out, err := Save(context.Background(), h.NetnsPath(), mode, fam)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, counters.ReplaceAllString(l, "[0:0]"))
	}
	return strings.Join(lines, "\n")
}

func TestApplyIdempotent(t *testing.T) {
	n := testnet.New(t)
	for _, mode := range []Mode{ModeNFT, ModeLegacy} {
		t.Run(string(mode), func(t *testing.T) {
			h := n.AddHost(t, "pod-"+string(mode))
			cfg := Defaults()
			cfg.Mode, cfg.NetnsPath, cfg.IPv6 = mode, h.NetnsPath(), true
			cfg.OutboundPortsToIgnore = []PortRange{{25, 25}, {3306, 3306}}
			cfg.SubnetsToIgnore = []netip.Prefix{netip.MustParsePrefix("198.18.64.0/18"), netip.MustParsePrefix("fd00:198:18::/48")}
			if err := Apply(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			first := map[Family]string{IPv4: saveNormalized(t, h, mode, IPv4), IPv6: saveNormalized(t, h, mode, IPv6)}
			for fam, save := range first {
				for _, want := range []string{
					"-A PREROUTING -m comment --comment \"weft/install-prerouting\" -j WEFT_PROXY_INIT_PREROUTING",
					"-A OUTPUT -m comment --comment \"weft/install-output\" -j WEFT_PROXY_INIT_OUTPUT",
					"-m owner --uid-owner 2102",
					"-m multiport --dports 4190,4191",
					"--dports 25,3306",
					"-j REDIRECT --to-ports 4143",
					"-j REDIRECT --to-ports 4140",
					"-o lo",
				} {
					if !strings.Contains(save, want) {
						t.Errorf("%s save lacks %q:\n%s", fam, want, save)
					}
				}
				for _, l := range strings.Split(save, "\n") {
					if strings.HasPrefix(l, "-A ") && !strings.Contains(l, "weft/") {
						t.Errorf("%s rule without a weft comment: %s", fam, l)
					}
				}
			}
			if !strings.Contains(first[IPv4], "-s 198.18.64.0/18") || strings.Contains(first[IPv4], "fd00") ||
				!strings.Contains(first[IPv6], "-s fd00:198:18::/48") {
				t.Errorf("subnets not split by family:\n%s\n%s", first[IPv4], first[IPv6])
			}
			for range 2 {
				if err := Apply(context.Background(), cfg); err != nil {
					t.Fatal(err)
				}
			}
			for fam, save := range first {
				if again := saveNormalized(t, h, mode, fam); again != save {
					t.Errorf("%s rules changed on re-run:\n--- first\n%s\n--- after\n%s", fam, save, again)
				}
			}
			// A changed config replaces the chain contents, still one jump each.
			cfg.OutboundPortsToIgnore = nil
			if err := Apply(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			changed := saveNormalized(t, h, mode, IPv4)
			if strings.Contains(changed, "25,3306") || strings.Count(changed, "-j WEFT_PROXY_INIT_OUTPUT") != 1 {
				t.Errorf("reconfigured rules wrong:\n%s", changed)
			}
		})
	}
}

func TestApplyDetectsMode(t *testing.T) {
	n := testnet.New(t)
	h := n.AddHost(t, "pod")
	// Put a foreign rule in legacy: detection must follow the backend that has rules.
	if out, err := h.Command("iptables-legacy", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "RETURN").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	cfg := Defaults()
	cfg.NetnsPath = h.NetnsPath()
	if err := Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(saveNormalized(t, h, ModeLegacy, IPv4), ChainOutput) {
		t.Error("rules not installed with iptables-legacy")
	}
	if strings.Contains(saveNormalized(t, h, ModeNFT, IPv4), ChainOutput) {
		t.Error("rules installed with iptables-nft too")
	}
}

func TestApplyErrors(t *testing.T) {
	t.Run("missing binary", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		cfg := Defaults()
		cfg.Mode = ModeNFT
		err := Apply(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "iptables-nft-save not found in PATH") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no NET_ADMIN", func(t *testing.T) {
		cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"=apply")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), ErrNoNetAdmin.Error()) {
			t.Errorf("unprivileged apply: %v: %q", err, out)
		}
	})
	t.Run("bad netns", func(t *testing.T) {
		cfg := Defaults()
		cfg.NetnsPath = "/run/netns/wt-does-not-exist"
		if err := Apply(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "wt-does-not-exist") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("invalid config", func(t *testing.T) {
		cfg := Defaults()
		cfg.OutgoingProxyPort = cfg.IncomingProxyPort
		if err := Apply(context.Background(), cfg); err == nil {
			t.Error("accepted")
		}
	})
	if !errors.Is(fmt.Errorf("x: %w", ErrNoNetAdmin), ErrNoNetAdmin) {
		t.Error("ErrNoNetAdmin does not wrap")
	}
}

// originalDst reads SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6) of an accepted conn.
func originalDst(c net.Conn) (netip.AddrPort, error) {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var ap netip.AddrPort
	var serr error
	is6 := c.LocalAddr().(*net.TCPAddr).IP.To4() == nil
	err = rc.Control(func(fd uintptr) {
		const soOriginalDst = 80 // SO_ORIGINAL_DST == IP6T_SO_ORIGINAL_DST
		if is6 {
			var info *unix.IPv6MTUInfo // sockaddr_in6 is its first 28 bytes
			info, serr = unix.GetsockoptIPv6MTUInfo(int(fd), unix.SOL_IPV6, soOriginalDst)
			if serr == nil {
				port := uint16(info.Addr.Port>>8) | uint16(info.Addr.Port<<8)
				ap = netip.AddrPortFrom(netip.AddrFrom16(info.Addr.Addr), port)
			}
			return
		}
		var m *unix.IPv6Mreq // sockaddr_in is its first 16 bytes
		m, serr = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, soOriginalDst)
		if serr == nil {
			b := m.Multiaddr
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]}), uint16(b[2])<<8|uint16(b[3]))
		}
	})
	if err != nil {
		return netip.AddrPort{}, err
	}
	return ap, serr
}

// serve accepts on ln and answers each connection with "<tag> <original destination>".
func serve(t *testing.T, ln net.Listener, tag string) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			od, err := originalDst(c)
			if err != nil {
				fmt.Fprintf(c, "%s none", tag)
			} else {
				fmt.Fprintf(c, "%s %s", tag, od)
			}
			c.Close()
		}
	}()
}

func listen(t *testing.T, h *testnet.Host, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, h.Name(), err)
	}
	return ln
}

// dialAs connects from host h as uid to addr and returns what the server said.
func dialAs(t *testing.T, h *testnet.Host, uid int, addr string) string {
	t.Helper()
	args := []string{os.Args[0]}
	if uid != 0 {
		args = append([]string{"setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups"}, args...)
	}
	cmd := h.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), helperEnv+"=dial", "WEFT_DIAL="+addr)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dial %s as uid %d from %s: %v", addr, uid, h.Name(), err)
	}
	return string(out)
}

func TestInterception(t *testing.T) {
	n := testnet.New(t)
	client, server, outside := n.AddHost(t, "client"), n.AddHost(t, "server"), n.AddHost(t, "outside")
	for _, h := range []*testnet.Host{client, server} {
		cfg := Defaults()
		cfg.NetnsPath, cfg.IPv6 = h.NetnsPath(), true
		cfg.OutboundPortsToIgnore = []PortRange{{9090, 9090}}
		if err := Apply(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			sip, lo, any := server.IP(), "127.0.0.1", "0.0.0.0"
			if v6 {
				sip, lo, any = server.IP6(), "[::1]", "[::]"
			}
			at := func(host string, port int) string { return fmt.Sprintf("%s:%d", host, port) }
			// client pod: outbound proxy on loopback.
			serve(t, listen(t, client, at(lo, 4140)), "outbound-proxy")
			// server pod: inbound proxy, the app on 8080 and 9090, the admin port.
			serve(t, listen(t, server, at(any, 4143)), "inbound-proxy")
			serve(t, listen(t, server, at(any, 8080)), "app")
			serve(t, listen(t, server, at(any, 9090)), "app9090")
			serve(t, listen(t, server, at(any, 4191)), "admin")
			dst := netip.AddrPortFrom(sip, 8080).String()

			// Ordinary uid in the client pod: redirected to the outbound proxy, original dst kept.
			if got := dialAs(t, client, 0, dst); got != "outbound-proxy "+dst {
				t.Errorf("app uid outbound: got %q", got)
			}
			if got := dialAs(t, client, 1000, dst); got != "outbound-proxy "+dst {
				t.Errorf("uid 1000 outbound: got %q", got)
			}
			// The proxy's uid goes to the real destination, whose inbound side redirects it to the
			// server's inbound proxy; SO_ORIGINAL_DST names the app port.
			if got := dialAs(t, client, DefaultProxyUID, dst); got != "inbound-proxy "+dst {
				t.Errorf("proxy uid outbound: got %q", got)
			}
			// Ignored outbound port: not redirected by the client (inbound on the server still is).
			d9090 := netip.AddrPortFrom(sip, 9090).String()
			if got := dialAs(t, client, 0, d9090); got != "inbound-proxy "+d9090 {
				t.Errorf("ignored outbound port: got %q", got)
			}
			// From outside the mesh: inbound 8080 lands on 4143, admin 4191 is not redirected.
			if got := dialAs(t, outside, 0, dst); got != "inbound-proxy "+dst {
				t.Errorf("inbound: got %q", got)
			}
			if got := dialAs(t, outside, 0, netip.AddrPortFrom(sip, 4191).String()); !strings.HasPrefix(got, "admin ") {
				t.Errorf("admin port: got %q", got)
			}
			// The inbound proxy (uid 2102) reaches the app on its own pod over loopback unredirected.
			if got := dialAs(t, server, DefaultProxyUID, at(lo, 8080)); !strings.HasPrefix(got, "app ") {
				t.Errorf("proxy to local app: got %q", got)
			}
			// Loopback traffic of the app is never redirected.
			if got := dialAs(t, client, 0, at(lo, 4140)); !strings.HasPrefix(got, "outbound-proxy ") {
				t.Errorf("loopback: got %q", got)
			}
		})
	}
}

func TestUDPNotRedirected(t *testing.T) {
	n := testnet.New(t)
	client, server := n.AddHost(t, "client"), n.AddHost(t, "server")
	cfg := Defaults()
	cfg.NetnsPath = client.NetnsPath()
	if err := Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	var pc net.PacketConn
	if err := server.Do(func() (err error) {
		pc, err = net.ListenPacket("udp", netip.AddrPortFrom(server.IP(), 5353).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := client.Do(func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(server.IP(), 5353).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("dns?"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	k, from, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:k]) != "dns?" || from.(*net.UDPAddr).IP.String() != client.IP().String() {
		t.Errorf("udp: %q from %v: %v", buf[:k], from, err)
	}
}
