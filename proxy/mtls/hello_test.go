package mtls_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/detect"
	"github.com/weftmesh/weft/proxy/mtls"
)

// clientHello captures the first flight of a real Go TLS client.
func clientHello(t testing.TB, protos []string) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go tls.Client(a, &tls.Config{InsecureSkipVerify: true, NextProtos: protos, ServerName: "books.demo"}).Handshake()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

func TestOffersWeft(t *testing.T) {
	weftHello := clientHello(t, []string{mtls.ALPN})
	for _, tc := range []struct {
		name           string
		b              []byte
		weft, complete bool
	}{
		{"weft", weftHello, true, true},
		{"weft among others", clientHello(t, []string{"h2", mtls.ALPN}), true, true},
		{"app h2", clientHello(t, []string{"h2", "http/1.1"}), false, true},
		{"no alpn", clientHello(t, nil), false, true},
		{"prefix of weft", weftHello[:len(weftHello)/2], false, false},
		{"record header only", weftHello[:5], false, false},
		{"http", []byte("GET / HTTP/1.1\r\n\r\n"), false, true},
		{"alert record", []byte{0x15, 3, 3, 0, 2, 2, 40}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			weft, complete := mtls.OffersWeft(tc.b)
			if weft != tc.weft || complete != tc.complete {
				t.Fatalf("weft=%v complete=%v, want %v %v", weft, complete, tc.weft, tc.complete)
			}
		})
	}
}

// A ClientHello split across several TLS records and TCP reads is reassembled.
func TestSniffFragmentedHello(t *testing.T) {
	h := clientHello(t, []string{"h2", mtls.ALPN})
	body := h[5:]
	var frag []byte
	for i := 0; i < len(body); i += 50 {
		j := min(i+50, len(body))
		frag = append(frag, 0x16, 3, 1, byte((j-i)>>8), byte(j-i))
		frag = append(frag, body[i:j]...)
	}
	a, b := net.Pipe()
	defer b.Close()
	go func() {
		for i := 0; i < len(frag); i += 7 {
			a.Write(frag[i:min(i+7, len(frag))])
		}
		a.Write([]byte("after"))
		a.Close()
	}()
	rc, weft, err := mtls.Sniff(b, 5*time.Second)
	if err != nil || !weft {
		t.Fatalf("weft=%v err=%v", weft, err)
	}
	all, _ := io.ReadAll(rc)
	if !bytes.Equal(all, append(frag, "after"...)) {
		t.Fatal("replay lost or reordered bytes")
	}
}

// Sniff on a detect.Conn: bytes peeked by detection are part of the hello.
func TestSniffAfterDetect(t *testing.T) {
	h := clientHello(t, []string{mtls.ALPN})
	a, b := net.Pipe()
	defer b.Close()
	go func() { a.Write(h); a.Write([]byte("z")); a.Close() }()
	buf := make([]byte, detect.BufferSize)
	res, err := detect.Detect(b, time.Second, buf)
	if err != nil || res.Protocol != detect.TLS {
		t.Fatalf("detect %v %v", res.Protocol, err)
	}
	rc, weft, err := mtls.Sniff(detect.NewConn(b, res.Peeked, nil), time.Second)
	if err != nil || !weft {
		t.Fatalf("weft=%v err=%v", weft, err)
	}
	all, _ := io.ReadAll(rc)
	if !bytes.Equal(all, append(h, 'z')) {
		t.Fatalf("replayed %d bytes, want %d", len(all), len(h)+1)
	}
}

func TestSniffErrors(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	go func() { a.Write([]byte{0x16, 3, 1}); a.Close() }()
	if _, _, err := mtls.Sniff(b, time.Second); err == nil {
		t.Fatal("truncated hello: no error")
	}
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	go c.Write([]byte{0x16, 3, 1, 0, 100})
	if _, _, err := mtls.Sniff(d, 50*time.Millisecond); err == nil {
		t.Fatal("stalled hello: no error")
	}
}

func FuzzOffersWeft(f *testing.F) {
	f.Add(clientHello(f, []string{mtls.ALPN}))
	f.Add(clientHello(f, []string{"h2", "http/1.1"}))
	f.Add(clientHello(f, nil))
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		weft, complete := mtls.OffersWeft(b)
		if weft && !complete {
			t.Fatal("weft without a complete hello")
		}
		if weft && !bytes.Contains(b, []byte(mtls.ALPN)) {
			t.Fatalf("weft without the ALPN bytes: %x", b)
		}
		// Sniff agrees and replays every byte.
		c := &memConn{r: bytes.NewReader(b)}
		rc, sw, err := mtls.Sniff(c, time.Second)
		if err != nil {
			if complete {
				t.Fatalf("sniff failed on a complete input: %v", err)
			}
			return
		}
		if sw != weft {
			t.Fatalf("sniff %v, OffersWeft %v", sw, weft)
		}
		all, _ := io.ReadAll(rc)
		if !bytes.Equal(all, b) {
			t.Fatal("replay differs")
		}
	})
}

// memConn is a net.Conn reading from r, for fuzzing without goroutines.
type memConn struct {
	net.Conn
	r io.Reader
}

func (c *memConn) Read(p []byte) (int, error)      { return c.r.Read(p) }
func (c *memConn) SetReadDeadline(time.Time) error { return nil }
func (c *memConn) Close() error                    { return nil }
