package kubelet

import "time"

// backoff is kubelet's container restart back-off: the first restart is immediate, then the delay
// starts at base and doubles up to max. A container that ran for longer than twice max without
// failing starts over.
type backoff struct {
	base, max time.Duration
	cur       time.Duration // delay before the next restart; 0 means restart at once
}

// next returns the delay before restarting a container that ran for ran, and advances.
func (b *backoff) next(ran time.Duration) time.Duration {
	if ran > 2*b.max {
		b.cur = 0
	}
	d := b.cur
	switch {
	case b.cur == 0:
		b.cur = b.base
	default:
		b.cur *= 2
	}
	if b.cur > b.max {
		b.cur = b.max
	}
	return d
}
