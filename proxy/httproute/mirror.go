package httproute

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// MirrorRequest is a self-contained copy of a request for a mirror: the
// adapter copies headers and the (already buffered, size-limited) body so the
// original can be reused and answered independently.
type MirrorRequest struct {
	Target   MirrorTarget
	Method   string
	Host     string
	Path     string
	RawQuery string
	Headers  []Header
	Body     []byte
}

// SendFunc sends a mirror copy and discards its answer.
type SendFunc func(ctx context.Context, r *MirrorRequest) error

// MirrorConfig configures a Mirror.
type MirrorConfig struct {
	Send    SendFunc
	Queue   int           // copies waiting for a worker; more are dropped (default 64)
	Workers int           // concurrent sends (default 4)
	Timeout time.Duration // per send (default 10s)
}

// MirrorStats are the dispatcher's counters.
type MirrorStats struct {
	Sent, Failed, Dropped uint64
}

// Mirror is a bounded dispatcher for mirror copies: Offer never blocks; when
// the queue is full (the mirror is slow) the copy is dropped and counted.
type Mirror struct {
	cfg                   MirrorConfig
	q                     chan *MirrorRequest
	sent, failed, dropped atomic.Uint64
	ctx                   context.Context
	cancel                context.CancelFunc
	wg                    sync.WaitGroup
	closeOnce             sync.Once
}

// NewMirror starts the workers; Close stops them.
func NewMirror(cfg MirrorConfig) (*Mirror, error) {
	if cfg.Send == nil {
		return nil, fmt.Errorf("mirror dispatcher needs a send function")
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 64
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	m := &Mirror{cfg: cfg, q: make(chan *MirrorRequest, cfg.Queue)}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	for range cfg.Workers {
		m.wg.Add(1)
		go m.work()
	}
	return m, nil
}

// Offer queues a copy without waiting; false means it was dropped.
func (m *Mirror) Offer(r *MirrorRequest) bool {
	if m.ctx.Err() != nil {
		m.dropped.Add(1)
		return false
	}
	select {
	case m.q <- r:
		return true
	default:
		m.dropped.Add(1)
		return false
	}
}

func (m *Mirror) work() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case r := <-m.q:
			ctx, cancel := context.WithTimeout(m.ctx, m.cfg.Timeout)
			if err := m.cfg.Send(ctx, r); err != nil {
				m.failed.Add(1)
			} else {
				m.sent.Add(1)
			}
			cancel()
		}
	}
}

// Stats returns the counters (for weft's metrics: mirror sent/failed/dropped).
func (m *Mirror) Stats() MirrorStats {
	return MirrorStats{Sent: m.sent.Load(), Failed: m.failed.Load(), Dropped: m.dropped.Load()}
}

// Close cancels in-flight sends and waits for the workers; queued copies are
// dropped.
func (m *Mirror) Close() {
	m.closeOnce.Do(func() {
		m.cancel()
		m.wg.Wait()
		for {
			select {
			case <-m.q:
				m.dropped.Add(1)
			default:
				return
			}
		}
	})
}
