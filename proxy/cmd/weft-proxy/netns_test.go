package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftmesh/weft/internal/testnet"
)

// buildProxy builds weft-proxy into a directory uid 2102 can read.
func buildProxy(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "weft-proxy-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "weft-proxy")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// meshHost installs the iptables rules with `weft-proxy init` and runs the
// proxy as uid 2102 inside h.
func meshHost(t *testing.T, bin string, h *testnet.Host) *lockedBuf {
	t.Helper()
	if out, err := h.Command(bin, "init", "--proxy-uid", "2102", "--ipv6").CombinedOutput(); err != nil {
		t.Fatalf("weft-proxy init in %s: %v\n%s", h.Name(), err, out)
	}
	cmd := h.Command("setpriv", "--reuid", "2102", "--regid", "2102", "--clear-groups", bin)
	cmd.Env = append(os.Environ(), "WEFT_PROXY_LOG_LEVEL=debug", "WEFT_PROXY_SHUTDOWN_GRACE_PERIOD=5s",
		"WEFT_PROXY_INBOUND_LISTEN_ADDR=0.0.0.0:4143,[::]:4143",
		"WEFT_PROXY_OUTBOUND_LISTEN_ADDR=127.0.0.1:4140,[::1]:4140")
	logs := &lockedBuf{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("proxy in %s exited with %v\n%s", h.Name(), err, logs)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Errorf("proxy in %s did not exit on SIGTERM", h.Name())
		}
	})
	for range 100 {
		if body, err := get(h, "127.0.0.1:4191", "/ready"); err == nil && strings.HasPrefix(body, "ready") {
			return logs
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("proxy in %s never ready\n%s", h.Name(), logs)
	return nil
}

// dialIn opens a TCP connection from inside h.
func dialIn(h *testnet.Host, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	})
	return c, err
}

// get does one HTTP/1.1 GET from inside h and returns the body.
func get(h *testnet.Host, addr, path string) (string, error) {
	c, err := dialIn(h, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), err
}

// TestMeshedHostsInNetns: a client netns and a server netns, both with
// weft-proxy init rules and a proxy running as uid 2102. HTTP/1 and opaque
// TCP from the client reach the server through both proxies, and both
// proxies account for them.
func TestMeshedHostsInNetns(t *testing.T) {
	bin := buildProxy(t)
	n := testnet.New(t)
	cli := n.AddHost(t, "cli")
	srv := n.AddHost(t, "srv")

	// Applications on the server host: HTTP on 8080, a TCP echo on 6379
	// (a default opaque port).
	var httpLn, echoLn net.Listener
	if err := srv.Do(func() (err error) {
		if httpLn, err = net.Listen("tcp", "0.0.0.0:8080"); err != nil {
			return err
		}
		echoLn, err = net.Listen("tcp", "0.0.0.0:6379")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { httpLn.Close(); echoLn.Close() })
	go http.Serve(httpLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s to %s", r.RemoteAddr[:strings.LastIndex(r.RemoteAddr, ":")], r.Host)
	}))
	go func() {
		for {
			c, err := echoLn.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()

	cliLogs := meshHost(t, bin, cli)
	srvLogs := meshHost(t, bin, srv)
	dump := func() string { return "client proxy:\n" + cliLogs.String() + "\nserver proxy:\n" + srvLogs.String() }

	target := srv.IP().String() + ":8080"
	for i := range 5 {
		body, err := get(cli, target, fmt.Sprintf("/r%d", i))
		if err != nil {
			t.Fatalf("request %d: %v\n%s", i, err, dump())
		}
		if !strings.HasPrefix(body, "hello from ") {
			t.Fatalf("body %q", body)
		}
	}

	// The same over IPv6: ip6tables REDIRECT and IP6T_SO_ORIGINAL_DST.
	target6 := netip.AddrPortFrom(srv.IP6(), 8080).String()
	for i := range 2 {
		if _, err := get(cli, target6, fmt.Sprintf("/v6/%d", i)); err != nil {
			t.Fatalf("IPv6 request %d: %v\n%s", i, err, dump())
		}
	}

	c, err := dialIn(cli, srv.IP().String()+":6379")
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "PING\r\n")
	c.(*net.TCPConn).CloseWrite()
	echoed, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(echoed) != "PING\r\n" {
		t.Fatalf("echo %q %v\n%s", echoed, err, dump())
	}

	cliMetrics, err := get(cli, "127.0.0.1:4191", "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	srvMetrics, err := get(srv, "127.0.0.1:4191", "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ who, metrics, want string }{
		{"client", cliMetrics, `request_total{direction="outbound",authority="` + target + `",target_addr="` + target + `",tls="false"} 5`},
		{"server", srvMetrics, `request_total{direction="inbound",authority="` + target + `",target_addr="` + target + `",tls="false"} 5`},
		{"client", cliMetrics, `request_total{direction="outbound",authority="` + target6 + `",target_addr="` + target6 + `",tls="false"} 2`},
		{"server", srvMetrics, `request_total{direction="inbound",authority="` + target6 + `",target_addr="` + target6 + `",tls="false"} 2`},
		{"client", cliMetrics, `weft_detect_total{direction="outbound",protocol="opaque",result="skipped"} 1`},
		{"server", srvMetrics, `weft_detect_total{direction="inbound",protocol="opaque",result="skipped"} 1`},
		{"client", cliMetrics, `tcp_read_bytes_total{direction="outbound",authority="` + srv.IP().String() + `:6379"`},
		{"server", srvMetrics, `tcp_write_bytes_total{direction="inbound",authority="` + srv.IP().String() + `:6379"`},
	}
	for _, c := range checks {
		if !strings.Contains(c.metrics, c.want) {
			t.Errorf("%s proxy metrics lack %s\n%s", c.who, c.want, c.metrics)
		}
	}
}
