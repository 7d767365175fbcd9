package tap

import (
	"fmt"
	"io"
	"sync/atomic"
)

// Stats are a hub's and its server's counters since start.
type Stats struct {
	Opened   uint64 // taps started
	Rejected uint64 // taps refused by the concurrency cap
	Refused  uint64 // tap connections refused by mTLS (wrong or missing identity)
	Dropped  uint64 // events lost because a tap's queue was full
	Limited  uint64 // exchanges not tapped because of a tap's rate limit
}

type counters struct {
	opened, rejected, refused, dropped, limited atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{Opened: c.opened.Load(), Rejected: c.rejected.Load(), Refused: c.refused.Load(),
		Dropped: c.dropped.Load(), Limited: c.limited.Load()}
}

// WriteMetrics writes the counters in the Prometheus text format, for the
// proxy's /metrics.
func (s Stats) WriteMetrics(w io.Writer) error {
	_, err := fmt.Fprintf(w, `# HELP tap_opened_total Taps started.
# TYPE tap_opened_total counter
tap_opened_total %d
# HELP tap_rejected_total Taps refused because too many ran.
# TYPE tap_rejected_total counter
tap_rejected_total %d
# HELP tap_refused_total Tap connections refused by mTLS identity checks.
# TYPE tap_refused_total counter
tap_refused_total %d
# HELP tap_events_dropped_total Tap events lost because a stream could not keep up.
# TYPE tap_events_dropped_total counter
tap_events_dropped_total %d
# HELP tap_rate_limited_total Exchanges not tapped because of a tap's rate limit.
# TYPE tap_rate_limited_total counter
tap_rate_limited_total %d
`, s.Opened, s.Rejected, s.Refused, s.Dropped, s.Limited)
	return err
}
