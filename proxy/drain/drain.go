// Package drain coordinates a graceful shutdown: it tracks the proxy's open
// client connections, flips to draining once, and says when the proxy is
// drained (no connections for a quiet period) or forces the rest closed.
package drain

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Tracker tracks open connections. The zero value is not usable; use New.
type Tracker struct {
	draining atomic.Bool
	started  chan struct{}
	once     sync.Once

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	lastBusy time.Time // when the count last dropped to zero
	changed  chan struct{}
}

// New returns a Tracker that is not draining.
func New() *Tracker {
	return &Tracker{started: make(chan struct{}), conns: map[net.Conn]struct{}{}, changed: make(chan struct{})}
}

// Add tracks c until Done(c).
func (t *Tracker) Add(c net.Conn) {
	t.mu.Lock()
	t.conns[c] = struct{}{}
	t.mu.Unlock()
}

// Done stops tracking c.
func (t *Tracker) Done(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	if len(t.conns) == 0 {
		t.lastBusy = time.Now()
		close(t.changed)
		t.changed = make(chan struct{})
	}
	t.mu.Unlock()
}

// Len is the number of open connections.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// Start begins draining; only the first call has an effect.
func (t *Tracker) Start() {
	t.once.Do(func() {
		t.mu.Lock()
		if len(t.conns) == 0 {
			t.lastBusy = time.Now()
		}
		t.mu.Unlock()
		t.draining.Store(true)
		close(t.started)
	})
}

// Draining reports whether Start was called.
func (t *Tracker) Draining() bool { return t.draining.Load() }

// Started is closed when draining starts.
func (t *Tracker) Started() <-chan struct{} { return t.started }

// Wait returns nil once there have been no open connections for quiet
// (new connections keep being served meanwhile), or ctx's error when it
// ends first. Call after Start.
func (t *Tracker) Wait(ctx context.Context, quiet time.Duration) error {
	for {
		t.mu.Lock()
		n, since, ch := len(t.conns), time.Since(t.lastBusy), t.changed
		t.mu.Unlock()
		if n == 0 && since >= quiet {
			return nil
		}
		wait := time.Hour
		if n == 0 {
			wait = quiet - since
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-ch:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// CloseAll closes every tracked connection (the deadline passed).
func (t *Tracker) CloseAll() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	for c := range t.conns {
		c.Close()
	}
	return len(t.conns)
}
