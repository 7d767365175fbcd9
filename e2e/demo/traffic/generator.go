// Package traffic is the demo's open-loop load generator: each target's requests are scheduled by
// the clock at a fixed rate, independent of how long earlier requests take, so a slow or failing
// backend shows up as latency and errors instead of silently lowering the offered load.
package traffic

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Call performs one request against a target; a nil error is a success.
type Call func(ctx context.Context) error

// Target is one stream of requests.
type Target struct {
	// Name labels the target in the stats, e.g. "web GET /".
	Name string
	// Rate is the offered load in requests per second; must be > 0 (leave disabled targets out).
	Rate float64
	// Call performs one request.
	Call Call
}

// Config configures a Generator.
type Config struct {
	// Targets are driven concurrently, each at its own rate. At least one is required.
	Targets []Target
	// Duration bounds the run; zero means until the context passed to Run is done.
	Duration time.Duration
	// Timeout bounds each request; zero means 5s.
	Timeout time.Duration
	// MaxInFlight bounds the requests in flight per target; a request scheduled while that many
	// are outstanding is not sent and counts as a failure ("dropped"). Zero means 100.
	MaxInFlight int
}

// MaxRate bounds a target's Rate: this is a demo generator, not a benchmark tool.
const MaxRate = 1000

// ErrDropped is the error recorded for a request not sent because MaxInFlight was reached.
var ErrDropped = errors.New("dropped: too many requests in flight")

// Generator drives the targets and keeps their stats.
type Generator struct {
	cfg   Config
	stats []*stats
}

// New validates cfg and returns a generator.
func New(cfg Config) (*Generator, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("no targets: enable at least one with a rate above zero")
	}
	if cfg.Duration < 0 {
		return nil, fmt.Errorf("duration %v: must not be negative", cfg.Duration)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 100
	}
	g := &Generator{cfg: cfg}
	for _, t := range cfg.Targets {
		if t.Name == "" || t.Call == nil {
			return nil, fmt.Errorf("target %q: name and call are required", t.Name)
		}
		if !(t.Rate > 0 && t.Rate <= MaxRate) {
			return nil, fmt.Errorf("target %q: rate %v: want 0 < rate <= %d per second", t.Name, t.Rate, MaxRate)
		}
		g.stats = append(g.stats, newStats(t.Name, t.Rate))
	}
	return g, nil
}

// Run drives every target until Duration has passed or ctx is done, then waits for the requests
// in flight (each bounded by Timeout). It returns ctx's error only if ctx ended the run.
func (g *Generator) Run(ctx context.Context) error {
	start := time.Now()
	var end time.Time
	if g.cfg.Duration > 0 {
		end = start.Add(g.cfg.Duration)
	}
	var wg sync.WaitGroup
	for i, t := range g.cfg.Targets {
		wg.Go(func() { g.drive(ctx, t, g.stats[i], start, end) })
	}
	wg.Wait()
	if g.cfg.Duration == 0 || time.Now().Before(end) {
		return ctx.Err()
	}
	return nil
}

// drive sends request i at start + i/rate (open loop) until end (zero: until ctx is done).
func (g *Generator) drive(ctx context.Context, t Target, st *stats, start, end time.Time) {
	var inflight sync.WaitGroup
	defer inflight.Wait()
	sem := make(chan struct{}, g.cfg.MaxInFlight)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := 0; ; i++ {
		at := start.Add(time.Duration(float64(i) * float64(time.Second) / t.Rate))
		if !end.IsZero() && !at.Before(end) {
			return
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			st.record(ErrDropped)
			continue
		}
		st.begin()
		inflight.Go(func() {
			defer func() { <-sem }()
			// A request already sent finishes even when the run is cancelled (SIGTERM): the
			// stats then show what the backends did, not an artefact of stopping.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.Timeout)
			defer cancel()
			began := time.Now()
			err := t.Call(rctx)
			st.end(time.Since(began), err)
		})
	}
}

// Snapshot returns the stats of every target, in Config.Targets order.
func (g *Generator) Snapshot() []TargetStats {
	out := make([]TargetStats, len(g.stats))
	for i, s := range g.stats {
		out[i] = s.snapshot()
	}
	return out
}

// Reset zeroes every target's figures, e.g. once the backends are ready, so that the stats
// describe a steady window rather than start-up.
func (g *Generator) Reset() {
	for _, s := range g.stats {
		s.reset()
	}
}
