package profile

import (
	"errors"
	"io"
	"sync"
)

// replayBufs holds MaxReplayBody-capacity buffers.
var replayBufs = sync.Pool{New: func() any { b := make([]byte, 0, MaxReplayBody); return &b }}

var (
	errStale    = errors.New("request body: attempt superseded by a retry")
	errReleased = errors.New("request body: released")
	errLost     = errors.New("request body: replay lost bytes past the buffer")
)

// Replay records a request body as the first attempt reads it, up to
// MaxReplayBody bytes, so a retry can send it again. Each attempt reads
// through its own Body(); Rewind starts a new attempt from the first byte and
// makes the previous attempt's reader fail, so a transport still reading the
// old attempt can never interleave with the new one. Bytes past the buffer
// are streamed but not kept, and then Rewind reports false.
//
// Release returns the buffer to its pool; call it once the request is done.
// The source is never closed by Replay.
type Replay struct {
	srcMu sync.Mutex // serialises reads of src
	src   io.Reader

	mu       sync.Mutex
	buf      *[]byte // pooled; nil until the first byte or after Release
	gen      int
	overflow bool // bytes were read that the buffer could not keep
	lost     bool // a superseded attempt read bytes that could not be kept
	eof      error
	released bool
	att      [MaxRetries + 1]attempt
}

// attempt is one attempt's reader over the replay.
type attempt struct {
	r   *Replay
	gen int
	pos int
}

// NewReplay wraps src, the request body.
func NewReplay(src io.Reader) *Replay {
	r := &Replay{src: src}
	r.att[0] = attempt{r: r}
	return r
}

// Body is the reader for the current attempt. Its Close does nothing (the
// transports close request bodies; the source belongs to the caller).
func (r *Replay) Body() io.ReadCloser {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &r.att[r.gen]
}

// Rewind starts a new attempt from the first byte. It reports false (and
// the request must not be retried) when the body outgrew the buffer, after
// MaxRetries rewinds, or after Release.
func (r *Replay) Rewind() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overflow || r.lost || r.released || r.gen+1 >= len(r.att) {
		return false
	}
	r.gen++
	r.att[r.gen] = attempt{r: r, gen: r.gen}
	return true
}

// Replayable reports whether Rewind would succeed (as far as the body goes).
func (r *Replay) Replayable() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.overflow && !r.lost && !r.released && r.gen+1 < len(r.att)
}

// Buffered is the number of bytes kept for replay.
func (r *Replay) Buffered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buf == nil {
		return 0
	}
	return len(*r.buf)
}

// Release returns the buffer to the pool; readers fail afterwards.
func (r *Replay) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.released {
		return
	}
	r.released = true
	if r.buf != nil {
		*r.buf = (*r.buf)[:0]
		replayBufs.Put(r.buf)
		r.buf = nil
	}
}

// fromBuf serves a read from the buffer; ok false means the attempt is at
// the buffer's end. Called with r.mu held.
func (a *attempt) fromBuf(p []byte) (n int, err error, ok bool) {
	r := a.r
	switch {
	case r.released:
		return 0, errReleased, true
	case a.gen != r.gen:
		return 0, errStale, true
	}
	if r.buf != nil && a.pos < len(*r.buf) {
		n = copy(p, (*r.buf)[a.pos:])
		a.pos += n
		return n, nil, true
	}
	if r.eof != nil && (r.buf == nil || a.pos >= len(*r.buf)) && !r.overflow {
		return 0, r.eof, true
	}
	if r.lost {
		return 0, errLost, true
	}
	return 0, nil, false
}

func (a *attempt) Read(p []byte) (int, error) {
	r := a.r
	r.mu.Lock()
	n, err, ok := a.fromBuf(p)
	r.mu.Unlock()
	if ok {
		return n, err
	}
	r.srcMu.Lock()
	defer r.srcMu.Unlock()
	r.mu.Lock()
	// Another attempt may have read (and kept) bytes while we waited.
	if n, err, ok := a.fromBuf(p); ok {
		r.mu.Unlock()
		return n, err
	}
	if r.overflow && r.eof != nil {
		r.mu.Unlock()
		return 0, r.eof
	}
	r.mu.Unlock()

	n, err = r.src.Read(p)

	r.mu.Lock()
	defer r.mu.Unlock()
	if n > 0 && !r.released {
		if !r.overflow && (r.buf == nil || len(*r.buf)+n <= MaxReplayBody) {
			if r.buf == nil {
				r.buf = replayBufs.Get().(*[]byte)
			}
			*r.buf = append(*r.buf, p[:n]...)
		} else {
			r.overflow = true
		}
	}
	if err != nil {
		r.eof = err
	}
	switch {
	case r.released:
		return 0, errReleased
	case a.gen != r.gen:
		if r.overflow {
			r.lost = true
		}
		return 0, errStale
	}
	a.pos += n
	return n, err
}

// Close implements io.Closer; it does nothing.
func (a *attempt) Close() error { return nil }
