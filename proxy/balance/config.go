package balance

import (
	"time"
)

// Defaults (Linkerd's where it has one).
const (
	DefaultRTT              = 30 * time.Millisecond
	DefaultDecay            = 10 * time.Second
	DefaultFailureThreshold = 7
	DefaultBackoffMin       = time.Second
	DefaultBackoffMax       = 60 * time.Second
	DefaultFailurePenalty   = time.Second
)

// Config tunes a Balancer. The zero value uses the defaults above.
type Config struct {
	// DefaultRTT is a new endpoint's RTT estimate; 0 means 30 ms.
	DefaultRTT time.Duration
	// Decay is the EWMA time constant τ; 0 means 10 s.
	Decay time.Duration
	// FailureThreshold is the number of consecutive failures that ejects an
	// endpoint; 0 means 7, a negative value disables failure accrual.
	FailureThreshold int
	// BackoffMin and BackoffMax bound an ejection's duration, which doubles
	// for every failed probe; 0 means 1 s and 60 s. Half of it again is added
	// as random jitter.
	BackoffMin, BackoffMax time.Duration
	// FailurePenalty is the RTT sample a failed request records when its own
	// RTT was lower, so an endpoint that fails fast does not look cheap;
	// 0 means 1 s, a negative value disables the penalty.
	FailurePenalty time.Duration
	// Clock returns monotonic nanoseconds; nil means the process clock.
	// Tests drive time with it.
	Clock func() int64
}

var processStart = time.Now()

func monotonic() int64 { return int64(time.Since(processStart)) }

func (c Config) withDefaults() Config {
	if c.DefaultRTT <= 0 {
		c.DefaultRTT = DefaultRTT
	}
	if c.Decay <= 0 {
		c.Decay = DefaultDecay
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.FailurePenalty == 0 {
		c.FailurePenalty = DefaultFailurePenalty
	}
	if c.Clock == nil {
		c.Clock = monotonic
	}
	return c
}
