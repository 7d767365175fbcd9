package tcp

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/weftmesh/weft/proxy/detect"
)

type counter struct{ r, w atomic.Int64 }

func (c *counter) AddRead(n int64)    { c.r.Add(n) }
func (c *counter) AddWritten(n int64) { c.w.Add(n) }

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if b, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestForwardHalfClose: the client sends a request and half-closes; the
// server reads to EOF, then answers and closes. The answer must still arrive
// (half-close propagated, not a full close), peeked bytes first.
func TestForwardHalfClose(t *testing.T) {
	client, proxyIn := pair(t)
	proxyOut, server := pair(t)
	var c counter
	done := make(chan Result, 1)
	go func() { done <- Forward(detect.NewConn(proxyIn, []byte("hello "), nil), proxyOut, &c) }()

	payload := bytes.Repeat([]byte("x"), 1<<20)
	go func() {
		client.Write(payload)
		client.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(payload)+6 || string(got[:6]) != "hello " {
		t.Fatalf("server got %d bytes starting %q", len(got), got[:min(len(got), 6)])
	}
	server.Write([]byte("bye"))
	server.Close()
	reply, err := io.ReadAll(client)
	if err != nil || string(reply) != "bye" {
		t.Fatalf("client got %q, %v", reply, err)
	}
	res := <-done
	if res.Err != nil || res.Read != int64(len(payload)+6) || res.Written != 3 {
		t.Fatalf("result %+v", res)
	}
	if c.r.Load() != res.Read || c.w.Load() != 3 {
		t.Fatalf("counted %d/%d", c.r.Load(), c.w.Load())
	}
}

// TestForwardServerSpeaksFirst: the upstream writes before the client says
// anything.
func TestForwardServerSpeaksFirst(t *testing.T) {
	client, proxyIn := pair(t)
	proxyOut, server := pair(t)
	go Forward(proxyIn, proxyOut, nil)
	server.Write([]byte("220 ready\r\n"))
	buf := make([]byte, 11)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "220 ready\r\n" {
		t.Fatalf("%q %v", buf, err)
	}
	client.Close()
	if _, err := io.ReadAll(server); err != nil {
		t.Fatalf("server should see EOF: %v", err)
	}
}
