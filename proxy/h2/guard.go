package h2

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// errResetFlood is returned to the HTTP/2 server's reader once a client
// connection exceeded its reset budget; the server then tears it down.
var errResetFlood = errors.New("h2: client sent too many RST_STREAM frames")

const (
	frameHeaderLen = 9
	frameHeaders   = 0x1
	frameRSTStream = 0x3
)

// resetGuard wraps a client connection and watches the frames in both
// directions without copying them: on the read side it counts RST_STREAM
// frames (rapid reset, CVE-2023-44487) and remembers the highest client
// stream id; on the write side it only tracks frame boundaries so that a
// GOAWAY(ENHANCE_YOUR_CALM) can be inserted between two of the server's
// frames when the budget is exceeded, after which the connection is closed.
//
// x/net's server already bounds the handlers running per connection and
// closes a connection that queues more than 4×MaxConcurrentStreams handlers
// for reset streams; the guard adds the missing bound for floods whose
// handlers finish quickly.
type resetGuard struct {
	net.Conn
	max    int
	window time.Duration
	onCut  func(lastStreamID uint32)

	// Read side: only the server's frame-reader goroutine calls Read.
	prefaceLeft int
	rhdr        [frameHeaderLen]byte
	rhdrN       int
	rskip       int
	maxStream   uint32
	winStart    time.Time
	resets      int

	// Write side: frame-boundary tracking, under wmu.
	wmu   sync.Mutex
	whdr  [frameHeaderLen]byte
	whdrN int
	wskip int
	cut   bool
}

func newResetGuard(c net.Conn, max int, window time.Duration, onCut func(uint32)) *resetGuard {
	return &resetGuard{Conn: c, max: max, window: window, onCut: onCut, prefaceLeft: len(http2.ClientPreface)}
}

// Read reads from the client and accounts the frames read.
func (g *resetGuard) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if n > 0 && g.scanRead(p[:n]) {
		g.cutOff()
		return 0, errResetFlood
	}
	return n, err
}

// scanRead walks the frame headers in b; it reports whether the reset
// budget was exceeded.
func (g *resetGuard) scanRead(b []byte) bool {
	for len(b) > 0 {
		if g.prefaceLeft > 0 {
			k := min(len(b), g.prefaceLeft)
			g.prefaceLeft -= k
			b = b[k:]
			continue
		}
		if g.rskip > 0 {
			k := min(len(b), g.rskip)
			g.rskip -= k
			b = b[k:]
			continue
		}
		k := copy(g.rhdr[g.rhdrN:], b)
		g.rhdrN += k
		b = b[k:]
		if g.rhdrN < frameHeaderLen {
			return false
		}
		g.rhdrN = 0
		g.rskip = int(g.rhdr[0])<<16 | int(g.rhdr[1])<<8 | int(g.rhdr[2])
		sid := binary.BigEndian.Uint32(g.rhdr[5:]) & (1<<31 - 1)
		switch g.rhdr[3] {
		case frameHeaders:
			if sid > g.maxStream {
				g.maxStream = sid
			}
		case frameRSTStream:
			now := time.Now()
			if now.Sub(g.winStart) > g.window {
				g.winStart, g.resets = now, 0
			}
			g.resets++
			if g.resets > g.max {
				return true
			}
		}
	}
	return false
}

// Write writes the server's bytes and tracks frame boundaries.
func (g *resetGuard) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if g.cut {
		return 0, net.ErrClosed
	}
	n, err := g.Conn.Write(p)
	g.scanWrite(p[:n])
	return n, err
}

func (g *resetGuard) scanWrite(b []byte) {
	for len(b) > 0 {
		if g.wskip > 0 {
			k := min(len(b), g.wskip)
			g.wskip -= k
			b = b[k:]
			continue
		}
		k := copy(g.whdr[g.whdrN:], b)
		g.whdrN += k
		b = b[k:]
		if g.whdrN < frameHeaderLen {
			return
		}
		g.whdrN = 0
		g.wskip = int(g.whdr[0])<<16 | int(g.whdr[1])<<8 | int(g.whdr[2])
	}
}

// cutOff sends GOAWAY(ENHANCE_YOUR_CALM) when the write side is between two
// frames, then closes the connection. A write blocked on a peer that does
// not read is unblocked by a short write deadline first.
func (g *resetGuard) cutOff() {
	_ = g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if g.cut {
		return
	}
	g.cut = true
	if g.whdrN == 0 && g.wskip == 0 {
		var buf bytes.Buffer
		fr := http2.NewFramer(&buf, nil)
		_ = fr.WriteGoAway(g.maxStream, http2.ErrCodeEnhanceYourCalm, []byte("too many stream resets"))
		_, _ = g.Conn.Write(buf.Bytes())
	}
	if g.onCut != nil {
		g.onCut(g.maxStream)
	}
	_ = g.Conn.Close()
}

// connectionStater is what x/net's server looks for on a TLS connection.
type connectionStater interface {
	ConnectionState() tls.ConnectionState
}

// tlsResetGuard is a resetGuard over a TLS connection: it keeps the TLS
// state visible to the HTTP/2 server (ALPN, version and cipher checks).
type tlsResetGuard struct {
	*resetGuard
	cs connectionStater
}

func (g tlsResetGuard) ConnectionState() tls.ConnectionState { return g.cs.ConnectionState() }

// guardConn wraps c in a reset guard, keeping its TLS state when it has one.
func guardConn(c net.Conn, max int, window time.Duration, onCut func(uint32)) net.Conn {
	g := newResetGuard(c, max, window, onCut)
	if cs, ok := c.(connectionStater); ok {
		return tlsResetGuard{g, cs}
	}
	return g
}
