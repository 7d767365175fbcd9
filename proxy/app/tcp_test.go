package app

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/config"
)

// bannerServer greets every connection, then echoes lines.
func bannerServer(t *testing.T, banner string) string {
	t.Helper()
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, banner)
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestServerSpeaksFirstOnOpaquePort(t *testing.T) {
	addr := bannerServer(t, "220 smtp ready\r\n")
	port, _ := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	h := newHarness(t, func(c *config.Config) {
		c.OutboundOpaquePorts = []uint16{uint16(port)}
		// A detection delay would show up as a wait of this long.
		c.DetectTimeout = time.Second
	})
	h.to(addr)
	c, err := net.Dial("tcp", h.outbound())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The banner must come without the proxy waiting for detection: well
	// before the 1s detection timeout (generous bound: 900ms).
	c.SetReadDeadline(time.Now().Add(900 * time.Millisecond))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "220 smtp ready\r\n" {
		t.Fatalf("banner %q %v", line, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "EHLO x\r\n")
	if line, err = br.ReadString('\n'); line != "EHLO x\r\n" {
		t.Fatalf("echo %q %v", line, err)
	}
	c.Close()
	waitFor(t, func() bool { // counts are final once the connection closed
		return strings.Contains(scrape(t, h), `tcp_open_connections{direction="outbound",authority="`+addr+`",target_addr="`+addr+`",tls="false"} 0`)
	})
	out := scrape(t, h)
	for _, want := range []string{
		`weft_detect_total{direction="outbound",protocol="opaque",result="skipped"} 1`,
		`tcp_open_total{direction="outbound",authority="` + addr + `",target_addr="` + addr + `",tls="false"} 1`,
		`tcp_read_bytes_total{direction="outbound",authority="` + addr + `",target_addr="` + addr + `",tls="false"} 8`,
		`tcp_write_bytes_total{direction="outbound",authority="` + addr + `",target_addr="` + addr + `",tls="false"} 24`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s\n%s", want, out)
		}
	}
}

func TestDetectionTimeoutFallsBackToTCP(t *testing.T) {
	addr := bannerServer(t, "+OK hello\r\n")
	h := newHarness(t, nil) // port not declared opaque
	h.to(addr)
	c, err := net.Dial("tcp", h.outbound())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || line != "+OK hello\r\n" {
		t.Fatalf("banner after detection timeout: %q %v", line, err)
	}
	if !strings.Contains(scrape(t, h), `weft_detect_total{direction="outbound",protocol="opaque",result="timeout"} 1`) {
		t.Error("timeout not counted")
	}
}

func TestOpaqueAndTLSBytesForwarded(t *testing.T) {
	addr := bannerServer(t, "")
	h := newHarness(t, nil)
	h.to(addr)
	for _, first := range [][]byte{
		{0x16, 0x03, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o'}, // TLS ClientHello-ish
		[]byte("\x00\x01 binary protocol\n"),
	} {
		c, err := net.Dial("tcp", h.outbound())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(first)
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, first) {
			t.Fatalf("echo %q %v, want %q", got, err, first)
		}
	}
	out := scrape(t, h)
	for _, want := range []string{`protocol="tls",result="detected"} 1`, `protocol="opaque",result="detected"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("condition not met within 10s")
}

// TestSelfConnectionRefused: a connection whose original destination is the
// proxy's own listener (not redirected) is closed instead of looping.
func TestSelfConnectionRefused(t *testing.T) {
	h := newHarness(t, nil)
	h.to(h.outbound())
	c, err := net.Dial("tcp", h.outbound())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	// The proxy closes without reading: unread request bytes may turn the
	// close into a reset. Either way nothing is answered.
	if b, err := io.ReadAll(c); (err != nil && !errors.Is(err, syscall.ECONNRESET)) || len(b) != 0 {
		t.Fatalf("got %q %v, want a close", b, err)
	}
	if !strings.Contains(scrape(t, h), `weft_proxy_errors_total{direction="outbound",kind="bad_request"} 1`) {
		t.Error("not counted")
	}
}
