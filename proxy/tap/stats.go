package tap

import (
	"sync/atomic"

	"github.com/weftmesh/weft/proxy/metrics"
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

// Families renders the counters for the proxy's /metrics (a collector of
// the metrics registry).
func (s Stats) Families() []metrics.Family {
	c := func(name, help string, v uint64) metrics.Family {
		return metrics.Family{Name: name, Type: "counter", Help: help, Samples: []metrics.Sample{{Value: float64(v)}}}
	}
	return []metrics.Family{
		c("tap_opened_total", "Taps started.", s.Opened),
		c("tap_rejected_total", "Taps refused because too many ran.", s.Rejected),
		c("tap_refused_total", "Tap connections refused by the mTLS identity check (no, untrusted or unauthorized client certificate).", s.Refused),
		c("tap_events_dropped_total", "Tap events lost because a stream could not keep up.", s.Dropped),
		c("tap_rate_limited_total", "Exchanges not tapped because of a tap's rate limit.", s.Limited),
	}
}
