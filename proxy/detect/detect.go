package detect

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// BufferSize is the size of the detection buffer: the most bytes one
// detection reads before deciding.
const BufferSize = 4096

// Result is the outcome of one detection.
type Result struct {
	Protocol Protocol
	// TimedOut is true when the client sent nothing decisive within the
	// timeout; Protocol is then Opaque.
	TimedOut bool
	// Peeked holds the bytes read, to be replayed to the next layer.
	Peeked []byte
}

// Detect reads from c into buf (at least a few dozen bytes long; BufferSize
// is right) until Classify is final, buf is full, the timeout passes or the
// client closes. The read deadline is cleared before returning. A client that
// closes before sending anything yields io.EOF.
func Detect(c net.Conn, timeout time.Duration, buf []byte) (Result, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return Result{}, fmt.Errorf("detect: %w", err)
	}
	n := 0
	var r Result
	for {
		m, err := c.Read(buf[n:])
		n += m
		p, final := Classify(buf[:n])
		if final {
			r = Result{Protocol: p, Peeked: buf[:n]}
			break
		}
		if n == len(buf) {
			if p != HTTP1 {
				p = Opaque
			}
			r = Result{Protocol: p, Peeked: buf[:n]}
			break
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				r = Result{Protocol: Opaque, TimedOut: true, Peeked: buf[:n]}
				break
			}
			if errors.Is(err, io.EOF) && n > 0 {
				r = Result{Protocol: Opaque, Peeked: buf[:n]}
				break
			}
			return Result{}, fmt.Errorf("detect: %w", err)
		}
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return Result{}, fmt.Errorf("detect: %w", err)
	}
	return r, nil
}

// Conn replays Peeked before reading from the underlying connection.
type Conn struct {
	net.Conn
	peeked []byte
	done   func() // called once the peeked bytes are consumed; may be nil
}

// NewConn returns a Conn replaying peeked, then reading from c. done, when
// not nil, runs once after peeked is consumed (it may recycle the buffer); a
// Conn closed before that leaves the buffer to the garbage collector.
func NewConn(c net.Conn, peeked []byte, done func()) *Conn {
	cc := &Conn{Conn: c, peeked: peeked, done: done}
	if len(peeked) == 0 {
		cc.release()
	}
	return cc
}

// Read implements io.Reader.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(p, c.peeked)
		c.peeked = c.peeked[n:]
		if len(c.peeked) == 0 {
			c.release()
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// Peeked returns the bytes not yet replayed.
func (c *Conn) Peeked() []byte { return c.peeked }

// Unwrap returns the underlying connection. Whoever reads from it directly
// must first consume Peeked (see Take).
func (c *Conn) Unwrap() net.Conn { return c.Conn }

// Take returns the unreplayed bytes, copied, and marks them consumed, for a
// layer that reads the underlying conn directly (splice).
func (c *Conn) Take() []byte {
	b := append([]byte(nil), c.peeked...)
	c.peeked = nil
	c.release()
	return b
}

func (c *Conn) release() {
	if c.done != nil {
		d := c.done
		c.done = nil
		d()
	}
}
