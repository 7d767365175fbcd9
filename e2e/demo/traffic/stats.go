package traffic

import (
	"errors"
	"slices"
	"sync"
	"time"
)

// window is how many recent latencies each target keeps for its percentiles.
const window = 4096

// TargetStats is one target's figures as served by /stats.
type TargetStats struct {
	Name string  `json:"name"`
	Rate float64 `json:"rate"`
	// Requests counts requests scheduled and finished (or dropped): Successes + Failures.
	Requests  uint64 `json:"requests"`
	Successes uint64 `json:"successes"`
	Failures  uint64 `json:"failures"`
	// Dropped counts failures that were never sent because MaxInFlight was reached.
	Dropped  uint64 `json:"dropped"`
	InFlight int64  `json:"inFlight"`
	// P50Ms and P99Ms are latency percentiles in milliseconds over the last sent requests
	// (successes and failures); zero before the first one finished.
	P50Ms     float64 `json:"p50Ms"`
	P99Ms     float64 `json:"p99Ms"`
	LastError string  `json:"lastError,omitempty"`
}

// SuccessRate is Successes/Requests, or 0 without requests.
func (s TargetStats) SuccessRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Successes) / float64(s.Requests)
}

type stats struct {
	mu   sync.Mutex
	cur  TargetStats
	lat  []time.Duration // ring of the last window latencies
	next int
}

func newStats(name string, rate float64) *stats {
	return &stats{cur: TargetStats{Name: name, Rate: rate}}
}

func (s *stats) begin() {
	s.mu.Lock()
	s.cur.InFlight++
	s.mu.Unlock()
}

func (s *stats) end(d time.Duration, err error) {
	s.mu.Lock()
	s.cur.InFlight--
	if len(s.lat) < window {
		s.lat = append(s.lat, d)
	} else {
		s.lat[s.next] = d
		s.next = (s.next + 1) % window
	}
	s.mu.Unlock()
	s.record(err)
}

func (s *stats) record(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur.Requests++
	if err == nil {
		s.cur.Successes++
		return
	}
	s.cur.Failures++
	if errors.Is(err, ErrDropped) {
		s.cur.Dropped++
	}
	s.cur.LastError = err.Error()
}

// reset zeroes the counters and latencies; requests in flight stay counted as in flight.
func (s *stats) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = TargetStats{Name: s.cur.Name, Rate: s.cur.Rate, InFlight: s.cur.InFlight}
	s.lat, s.next = s.lat[:0], 0
}

func (s *stats) snapshot() TargetStats {
	s.mu.Lock()
	out := s.cur
	lat := slices.Clone(s.lat)
	s.mu.Unlock()
	if len(lat) > 0 {
		slices.Sort(lat)
		out.P50Ms = ms(percentile(lat, 0.50))
		out.P99Ms = ms(percentile(lat, 0.99))
	}
	return out
}

// percentile returns the nearest-rank q-quantile of sorted (non-empty).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
