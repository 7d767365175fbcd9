// Package tcp forwards opaque byte streams: a bidirectional copy with correct
// half-close (a FIN from one side becomes CloseWrite on the other) that uses
// splice(2) when both sides are plain TCP connections.
package tcp

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/weftmesh/weft/proxy/detect"
)

// Counter receives byte counts; *metrics.TCPSeries implements it.
type Counter interface {
	AddRead(n int64)    // bytes from the client to the upstream
	AddWritten(n int64) // bytes from the upstream to the client
}

// Result summarises a finished forwarding.
type Result struct {
	Read, Written int64 // client→upstream and upstream→client bytes
	Err           error // the first error other than a clean close
}

// Forward copies between client and upstream until both directions are done,
// then closes both. A *detect.Conn client first has its peeked bytes written
// to upstream, so the rest of the stream can be spliced from the raw conn.
// Counts go to c (may be nil) as each direction finishes.
func Forward(client, upstream net.Conn, c Counter) Result {
	var res Result
	if dc, ok := client.(*detect.Conn); ok {
		if p := dc.Take(); len(p) > 0 {
			n, err := upstream.Write(p)
			res.Read += int64(n)
			if c != nil {
				c.AddRead(int64(n))
			}
			if err != nil {
				client.Close()
				upstream.Close()
				res.Err = err
				return res
			}
		}
		client = dc.Unwrap()
	}
	var wg sync.WaitGroup
	var upErr error
	var upN int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		upN, upErr = pipe(upstream, client)
		if c != nil {
			c.AddRead(upN)
		}
	}()
	downN, downErr := pipe(client, upstream)
	if c != nil {
		c.AddWritten(downN)
	}
	wg.Wait()
	client.Close()
	upstream.Close()
	res.Read += upN
	res.Written = downN
	res.Err = errors.Join(upErr, downErr)
	return res
}

// pipe copies src to dst, then half-closes: dst stops being written and src
// stops being read. On an error both are closed so the other direction ends.
func pipe(dst, src net.Conn) (int64, error) {
	n, err := io.Copy(dst, src) // *net.TCPConn → *net.TCPConn splices
	if err != nil && !benign(err) {
		dst.Close()
		src.Close()
		return n, err
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cerr := cw.CloseWrite(); cerr != nil && !benign(cerr) {
			return n, cerr
		}
	} else {
		dst.Close()
	}
	if cr, ok := src.(interface{ CloseRead() error }); ok {
		cr.CloseRead()
	}
	return n, nil
}

// benign reports errors that mean "the other side is gone" after a normal
// close sequence.
func benign(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ENOTCONN) || errors.Is(err, io.EOF)
}
