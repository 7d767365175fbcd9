package healthcheck

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Outcome is one check's line in the output; its JSON form is the stable
// schema documented in docs/checks.md.
type Outcome struct {
	ID          string `json:"id"`
	Category    string `json:"category"`
	Description string `json:"description"`
	Result      Result `json:"result"`
	Message     string `json:"message"`
	Hint        string `json:"hint,omitempty"`
}

// Options tune a run.
type Options struct {
	// Wait bounds how long a pending check is retried (--wait).
	Wait time.Duration
	// Poll is the pause between retries; 0 means 2 s.
	Poll time.Duration
	// Progress, when not nil (a terminal), receives a progress line while
	// a check waits.
	Progress io.Writer
}

// Run executes checks in order against e. A Fatal check's failure stops the
// run: the checks after it are not run (and not reported).
func Run(ctx context.Context, e *Env, checks []Check, opts Options) []Outcome {
	if opts.Poll <= 0 {
		opts.Poll = 2 * time.Second
	}
	out := make([]Outcome, 0, len(checks))
	for _, c := range checks {
		f := runOne(ctx, e, c, opts)
		out = append(out, Outcome{
			ID: c.ID, Category: c.Category.Name, Description: c.Description,
			Result: f.Result, Message: f.Message, Hint: f.Hint,
		})
		if c.Fatal && f.Result == Failure {
			break
		}
	}
	return out
}

func runOne(ctx context.Context, e *Env, c Check, opts Options) Finding {
	deadline := time.Now().Add(opts.Wait)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			e.Refresh()
		}
		f := c.Run(ctx, e)
		if !f.Pending {
			clearProgress(opts.Progress, attempt)
			return f
		}
		if !time.Now().Add(opts.Poll).Before(deadline) || ctx.Err() != nil {
			clearProgress(opts.Progress, attempt)
			what := c.WaitFor
			if what == "" {
				what = c.Description
			}
			f.Message = fmt.Sprintf("timed out after %s waiting for %s; last seen: %s", opts.Wait, what, f.Message)
			f.Pending = false
			return f
		}
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "\r\033[K%s %s: waiting (%s)", spinner[attempt%len(spinner)], c.Description, f.Message)
		}
		select {
		case <-ctx.Done():
		case <-time.After(opts.Poll):
		}
	}
}

var spinner = []string{"|", "/", "-", "\\"}

func clearProgress(w io.Writer, attempts int) {
	if w != nil && attempts > 0 {
		fmt.Fprint(w, "\r\033[K")
	}
}

// Failed reports whether outcomes fail the run: any failure, or with
// strict any warning.
func Failed(outcomes []Outcome, strict bool) bool {
	for _, o := range outcomes {
		if o.Result == Failure || (strict && o.Result == Warning) {
			return true
		}
	}
	return false
}
