package detect

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		in    string
		want  Protocol
		final bool
	}{
		{"", Opaque, false},
		{"GET / HTTP/1.1\r\n", HTTP1, true},
		{"GET / HTTP/1.0\n", HTTP1, true},
		{"POST /upload?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1, true},
		{"GET", HTTP1, false},
		{"GET /a", HTTP1, false},
		{"GET /a HTTP/1.", HTTP1, false},
		{"GET /a HTTP/1.1\r", HTTP1, false},
		{"GET /a HTTP/2.0\r\n", Opaque, true},
		{"GET  / HTTP/1.1\r\n", Opaque, true},
		{"G\x00T / HTTP/1.1\r\n", Opaque, true},
		{"GET /a HTTP/1.1x", Opaque, true},
		{" GET / HTTP/1.1\r\n", Opaque, true},
		{"AVERYLONGMETHODNAMETHATISNOTREAL / HTTP/1.1\r\n", Opaque, true},
		{Preface, HTTP2, true},
		{Preface + "\x00\x00\x00\x04", HTTP2, true},
		{"PRI * HTTP/2", HTTP2, false},
		{"PRI * HTTP/1.1\r\n", HTTP1, true},
		{"\x16\x03\x01\x02\x00\x01", TLS, true},
		{"\x16\x03", TLS, false},
		{"\x16\x09\x01", Opaque, true},
		{"SSH-2.0-OpenSSH_9.6\r\n", Opaque, true},
		{"*1\r\n$4\r\nPING\r\n", Opaque, true},
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", Opaque, true},
	}
	for _, tt := range tests {
		p, final := Classify([]byte(tt.in))
		if p != tt.want || final != tt.final {
			t.Errorf("Classify(%q) = %v,%v want %v,%v", tt.in, p, final, tt.want, tt.final)
		}
	}
}

// pipeConn gives a real TCP pair on loopback.
func pipeConn(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name     string
		writes   []string
		closeAft bool
		want     Protocol
		timedOut bool
	}{
		{name: "http1 in one write", writes: []string{"GET / HTTP/1.1\r\nHost: x\r\n\r\n"}, want: HTTP1},
		{name: "http1 split", writes: []string{"GE", "T /x HT", "TP/1.1\r\n"}, want: HTTP1},
		{name: "h2 split", writes: []string{"PRI * HT", "TP/2.0\r\n\r\nSM\r\n\r\n"}, want: HTTP2},
		{name: "tls", writes: []string{"\x16\x03\x01\x00\x05hello"}, want: TLS},
		{name: "opaque", writes: []string{"\x00\x01binary"}, want: Opaque},
		{name: "silent client times out", writes: nil, want: Opaque, timedOut: true},
		{name: "partial then silence", writes: []string{"GET /"}, want: Opaque, timedOut: true},
		{name: "partial then close", writes: []string{"GET /"}, closeAft: true, want: Opaque},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := pipeConn(t)
			var all string
			go func() {
				for _, w := range tt.writes {
					c.Write([]byte(w))
					time.Sleep(5 * time.Millisecond)
				}
				if tt.closeAft {
					c.(*net.TCPConn).CloseWrite()
				}
			}()
			for _, w := range tt.writes {
				all += w
			}
			r, err := Detect(s, 200*time.Millisecond, make([]byte, BufferSize))
			if err != nil {
				t.Fatal(err)
			}
			if r.Protocol != tt.want || r.TimedOut != tt.timedOut {
				t.Fatalf("got %v timedOut=%v, want %v timedOut=%v", r.Protocol, r.TimedOut, tt.want, tt.timedOut)
			}
			// The replaying conn yields exactly what the client sent.
			if !tt.timedOut || len(tt.writes) > 0 {
				c.(*net.TCPConn).CloseWrite()
				got, _ := io.ReadAll(NewConn(s, r.Peeked, nil))
				if string(got) != all {
					t.Fatalf("replayed %q, want %q", got, all)
				}
			}
		})
	}
}

func TestDetectEOF(t *testing.T) {
	c, s := pipeConn(t)
	c.Close()
	if _, err := Detect(s, time.Second, make([]byte, BufferSize)); err == nil {
		t.Fatal("want an error for a client that closed without sending")
	}
}

func TestConnTakeAndDone(t *testing.T) {
	c, s := pipeConn(t)
	released := 0
	cc := NewConn(s, []byte("abc"), func() { released++ })
	if got := cc.Take(); !bytes.Equal(got, []byte("abc")) || released != 1 {
		t.Fatalf("Take = %q released=%d", got, released)
	}
	c.Write([]byte("z"))
	b := make([]byte, 1)
	if _, err := io.ReadFull(cc, b); err != nil || b[0] != 'z' || released != 1 {
		t.Fatalf("read %q %v released=%d", b, err, released)
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"GET / HTTP/1.1\r\n", Preface, "\x16\x03\x01", "PRI", "", "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, final := Classify(b)
		// Monotonic: a final answer never changes when more bytes arrive.
		if final {
			p2, final2 := Classify(append(append([]byte(nil), b...), "more\r\n"...))
			if p2 != p || !final2 {
				t.Fatalf("final %v for %q changed to %v,%v", p, b, p2, final2)
			}
		}
		// Every prefix of a final HTTP/1 line is a non-final HTTP1 or HTTP2 prefix.
		if p == HTTP1 && final && len(b) > 1 {
			pp, pf := Classify(b[:1])
			if pf && pp == Opaque {
				t.Fatalf("prefix of %q classified opaque", b)
			}
		}
	})
}

func BenchmarkClassifyHTTP1(b *testing.B) {
	in := []byte("GET /api/v1/items?id=42 HTTP/1.1\r\nHost: web.default.svc.cluster.local\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if p, _ := Classify(in); p != HTTP1 {
			b.Fatal(p)
		}
	}
}

func BenchmarkClassifyHTTP2(b *testing.B) {
	in := []byte(Preface + "\x00\x00\x12\x04\x00\x00\x00\x00\x00")
	b.ReportAllocs()
	for b.Loop() {
		if p, _ := Classify(in); p != HTTP2 {
			b.Fatal(p)
		}
	}
}

func BenchmarkDetectConn(b *testing.B) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	c, _ := net.Dial("tcp", ln.Addr().String())
	s, _ := ln.Accept()
	defer c.Close()
	defer s.Close()
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	buf := make([]byte, BufferSize)
	b.ReportAllocs()
	for b.Loop() {
		c.Write(req)
		r, err := Detect(s, time.Second, buf)
		if err != nil || r.Protocol != HTTP1 {
			b.Fatal(r.Protocol, err)
		}
	}
}
