package profile

import (
	"math/rand/v2"
	"time"

	"github.com/weftmesh/weft/proxy/proxyerr"
)

// Retry limits.
const (
	// MaxReplayBody is the largest request body buffered for replay; a
	// larger (or unknown-length, once past it) body is not retried.
	MaxReplayBody = 64 << 10
	// MaxRetries caps the retries of one request whatever the budget says.
	MaxRetries = 10
	// BackoffBase and BackoffMax bound the jittered exponential back-off
	// before a retry: the n-th retry waits a random duration in
	// [d/2, d) with d = min(BackoffBase·2^(n−1), BackoffMax).
	BackoffBase = 25 * time.Millisecond
	BackoffMax  = time.Second
)

func randUint32N(n uint32) uint32 { return rand.Uint32N(n) }

// Retry is one request's retry state: Begin it when the request starts (it
// deposits into the budget), ask Next after every failed attempt. The zero
// value never retries. It is a value type meant to live on the stack or in
// per-connection scratch; it does not allocate.
type Retry struct {
	route   *Route
	budget  *Budget
	method  string
	retries int
}

// Begin starts the retry state of a request to route (nil: no route) of p
// (nil: no profile). The budget gets this request's deposit.
func (p *Profile) Begin(route *Route, method string) Retry {
	if p == nil {
		return Retry{method: method}
	}
	p.Budget.Deposit()
	return Retry{route: route, budget: p.Budget, method: method}
}

// Retries is the number of retries granted so far.
func (r *Retry) Retries() int { return r.retries }

// MayRetry reports whether any retry of this request is possible at all,
// so a layer can decide up front to buffer the body for replay: true for a
// retryable route or an idempotent method (connect failures).
func (r *Retry) MayRetry() bool {
	return r.budget != nil && (r.route != nil && r.route.Retryable || Idempotent(r.method))
}

// Outcome is what an attempt ended with.
type Outcome struct {
	// Failed is the response's classification (Route.Failed) or true for a
	// proxy error.
	Failed bool
	// Err is the proxy error of an attempt without a response (nil when a
	// response arrived); its kind decides whether a retry is safe.
	Err error
	// Replayable is false when the request body could not be replayed
	// (larger than MaxReplayBody, or the replay buffer refused to rewind).
	Replayable bool
	// Remaining is the time left before the route timeout; 0 means no
	// timeout.
	Remaining time.Duration
}

// Next decides whether to retry after an attempt and how long to wait
// first. A retry needs: a failed attempt; a replayable body; the route
// marked isRetryable — or a connect failure (the request never reached the
// application) of an idempotent method; no timeout or cancellation; fewer
// than MaxRetries retries; the wait to fit in the remaining time; and a token
// from the budget, withdrawn last.
func (r *Retry) Next(o Outcome) (wait time.Duration, ok bool) {
	if !o.Failed || !o.Replayable || r.budget == nil || r.retries >= MaxRetries {
		return 0, false
	}
	eligible := r.route != nil && r.route.Retryable
	if o.Err != nil {
		switch proxyerr.KindOf(o.Err) {
		case proxyerr.Timeout, proxyerr.Canceled, proxyerr.BadRequest, proxyerr.HeaderTooLarge, proxyerr.NoEndpoints:
			return 0, false
		case proxyerr.Connect:
			eligible = eligible || Idempotent(r.method)
		}
	}
	if !eligible {
		return 0, false
	}
	wait = Backoff(r.retries + 1)
	if o.Remaining > 0 && wait >= o.Remaining {
		return 0, false
	}
	if !r.budget.Withdraw() {
		return 0, false
	}
	r.retries++
	return wait, true
}

// Backoff is the jittered wait before retry number n (1-based).
func Backoff(n int) time.Duration {
	d := BackoffBase
	for i := 1; i < n && d < BackoffMax; i++ {
		d *= 2
	}
	d = min(d, BackoffMax)
	return d/2 + rand.N(d/2)
}

// Idempotent reports whether method is idempotent (RFC 9110 §9.2.2).
func Idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}
