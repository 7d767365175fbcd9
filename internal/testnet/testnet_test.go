package testnet

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestHostsTalkOverTheBridge(t *testing.T) {
	n := New(t)
	if !DefaultPool.Contains(n.Prefix().Addr()) || n.Prefix().Bits() != 24 {
		t.Fatalf("prefix %s not a /24 of %s", n.Prefix(), DefaultPool)
	}
	a, b := n.AddHost(t, "a"), n.AddHost(t, "b")
	if a.IP() == b.IP() || !n.Prefix().Contains(a.IP()) || !n.Prefix6().Contains(b.IP6()) {
		t.Fatalf("bad addresses a=%s b=%s", a.IP(), b.IP6())
	}
	for _, addr := range []netip.Addr{b.IP(), b.IP6()} {
		var ln net.Listener
		if err := b.Do(func() (err error) {
			ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				fmt.Fprint(c, "hello from b")
				c.Close()
			}
		}()
		var got []byte
		if err := a.Do(func() error {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return err
			}
			defer c.Close()
			got, err = io.ReadAll(c)
			return err
		}); err != nil {
			t.Fatalf("dial %s from a: %v", ln.Addr(), err)
		}
		ln.Close()
		if string(got) != "hello from b" {
			t.Errorf("got %q", got)
		}
		// The root namespace does not see b's listener (sockets stayed in the netns).
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ln.Addr().(*net.TCPAddr).Port)); err == nil {
			c.Close()
		}
	}
	out, err := a.Command("ip", "-4", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), a.IP().String()+"/24") {
		t.Errorf("Command in netns: %v: %s", err, out)
	}
}

func TestConcurrentNetworksAreDistinct(t *testing.T) {
	const k = 4
	nets := make([]*Network, k)
	var wg sync.WaitGroup
	for i := range nets {
		wg.Go(func() { nets[i] = New(t) })
	}
	wg.Wait()
	seen := map[netip.Prefix]bool{}
	for _, n := range nets {
		if seen[n.Prefix()] {
			t.Errorf("prefix %s handed out twice", n.Prefix())
		}
		seen[n.Prefix()] = true
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	n, err := Create(DefaultPool)
	if err != nil {
		t.Fatal(err)
	}
	h, err := n.NewHost("x")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if linkExists(n.Bridge()) || linkExists(h.veth) {
		t.Error("bridge or veth still present")
	}
	if _, err := os.Stat(h.NetnsPath()); !os.IsNotExist(err) {
		t.Errorf("netns still present: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStaleLeftoversRemoved(t *testing.T) {
	dead := 4194000 // above typical pid ranges; verified unused below
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", dead)); err == nil {
		t.Fatalf("pid %d unexpectedly alive", dead)
	}
	ns, br := fmt.Sprintf("wt%dn1", dead), fmt.Sprintf("wt%db2", dead)
	if err := ipCmds([]string{"netns", "add", ns}, []string{"link", "add", br, "type", "bridge"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ip("netns", "del", ns); _ = ip("link", "del", br) })
	New(t)
	if linkExists(br) {
		t.Error("stale bridge not removed")
	}
	if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
		t.Error("stale netns not removed")
	}
}

func TestFreeSubnet(t *testing.T) {
	pool := netip.MustParsePrefix("198.18.128.0/22")
	used := []netip.Addr{netip.MustParseAddr("198.18.128.1"), netip.MustParseAddr("198.18.129.7"), netip.MustParseAddr("127.0.0.1")}
	got, err := freeSubnet(pool, used)
	if err != nil || got != netip.MustParsePrefix("198.18.130.0/24") {
		t.Errorf("freeSubnet = %v, %v", got, err)
	}
	used = append(used, netip.MustParseAddr("198.18.130.1"), netip.MustParseAddr("198.18.131.1"))
	if _, err := freeSubnet(pool, used); err == nil {
		t.Error("full pool accepted")
	}
}

func TestListenAndDialHelpers(t *testing.T) {
	n := New(t)
	a, b := n.AddHost(t, "a"), n.AddHost(t, "b")
	ln, err := b.Listen("tcp", netip.AddrPortFrom(b.IP(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.RemoteAddr)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{DialContext: a.DialContext}}
	for range 3 { // several goroutines/threads: every dial must originate in a
		resp, err := c.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ap, err := netip.ParseAddrPort(string(body)); err != nil || ap.Addr() != a.IP() {
			t.Errorf("remote addr seen by b = %q, want %s", body, a.IP())
		}
	}
	pc, err := b.ListenPacket("udp", netip.AddrPortFrom(b.IP6(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	pc.Close()
}
