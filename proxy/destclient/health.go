package destclient

import (
	"sync/atomic"

	"github.com/weftmesh/weft/proxy/metrics"
)

// health counts the destination streams that are failing right now — one
// that ended in an error and has not delivered a message since — and every
// stream failure. `weft check --proxy` warns while any is failing.
type health struct {
	failing atomic.Int64
	errors  atomic.Uint64
}

// streamHealth is one stream's part in health.
type streamHealth struct {
	h       *health
	failing bool
}

// failed records a stream that ended in an error.
func (s *streamHealth) failed() {
	s.h.errors.Add(1)
	if !s.failing {
		s.failing = true
		s.h.failing.Add(1)
	}
}

// delivered records a message received: the stream works again.
func (s *streamHealth) delivered() {
	if s.failing {
		s.failing = false
		s.h.failing.Add(-1)
	}
}

// Families renders the discovery health metrics at scrape time.
func (c *Client) Families() []metrics.Family {
	return []metrics.Family{
		{Name: "weft_discovery_streams_failing", Type: "gauge",
			Help:    "Destination streams (endpoints and profiles) that ended in an error and have not delivered since.",
			Samples: []metrics.Sample{{Value: float64(c.health.failing.Load())}}},
		{Name: "weft_discovery_stream_errors_total", Type: "counter",
			Help:    "Total count of destination streams that ended in an error (each is retried with back-off).",
			Samples: []metrics.Sample{{Value: float64(c.health.errors.Load())}}},
	}
}
