package metrics

import (
	"sync/atomic"

	"github.com/weftmesh/weft/proxy/record"
)

// TCPSeries counts the connections to one peer. Get one with OpenTCP.
type TCPSeries struct {
	labels                string
	opened                atomic.Uint64
	closedOK, closedError atomic.Uint64
	read, written         atomic.Uint64
}

// OpenTCP counts a new connection to p and returns its series, on which the
// caller reports bytes and the close.
func (r *Registry) OpenTCP(dir record.Direction, p *record.Peer) *TCPSeries {
	r.mu.RLock()
	k, ok := r.key(dir, p, false)
	var s *TCPSeries
	if ok {
		s = r.tcp[k]
	}
	r.mu.RUnlock()
	if s == nil {
		r.mu.Lock()
		k, _ = r.key(dir, p, true)
		if s = r.tcp[k]; s == nil {
			s = &TCPSeries{labels: peerLabels(k, p)}
			r.tcp[k] = s
		}
		r.mu.Unlock()
	}
	s.opened.Add(1)
	return s
}

// AddRead counts bytes read from the client (sent to the peer).
func (s *TCPSeries) AddRead(n int64) { s.read.Add(uint64(max(n, 0))) }

// AddWritten counts bytes written to the client (received from the peer).
func (s *TCPSeries) AddWritten(n int64) { s.written.Add(uint64(max(n, 0))) }

// Close counts the connection's end; failed when it ended with an error.
func (s *TCPSeries) Close(failed bool) {
	if failed {
		s.closedError.Add(1)
	} else {
		s.closedOK.Add(1)
	}
}
