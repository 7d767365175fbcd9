package profile

import (
	"sync"
	"time"
)

// Retry budget defaults (Linkerd's).
const (
	DefaultRetryRatio          = 0.2
	DefaultMinRetriesPerSecond = 10
	DefaultRetryTTL            = 10 * time.Second
)

// budgetSlices is how many slices the TTL window is cut into; tokens expire
// one slice at a time.
const budgetSlices = 10

// scale is the token value of one request (Finagle's ScaleFactor).
const scale = 1000

// Budget is a retry budget with Finagle's (and Linkerd's) semantics: every
// original request deposits one token, every retry withdraws 1/ratio tokens,
// tokens — deposits and withdrawals alike — expire after TTL, and a reserve
// of MinRetriesPerSecond × TTL retries is always there for clients that have
// just started or send little. So within any TTL window:
//
//	retries ≤ ratio × requests + minPerSecond × ttl
//
// It is safe for concurrent use and does not allocate.
type Budget struct {
	deposit, withdraw, reserve int64
	slice                      int64 // ns per slice
	clock                      func() int64

	mu      sync.Mutex
	slices  [budgetSlices]int64
	cur     int   // index of the current slice
	curAt   int64 // start of the current slice, ns
	balance int64 // sum of slices
}

// NewBudget returns a budget. ratio is clamped to [0, 1000] (0: only the
// reserve is ever available), ttl to [1 s, 60 s] (0 means 10 s). clock
// returns monotonic nanoseconds; nil uses the process clock.
func NewBudget(ratio float64, minPerSecond uint32, ttl time.Duration, clock func() int64) *Budget {
	if clock == nil {
		clock = monotonic
	}
	if ttl == 0 {
		ttl = DefaultRetryTTL
	}
	ttl = min(max(ttl, time.Second), time.Minute)
	ratio = min(max(ratio, 0), 1000)
	b := &Budget{clock: clock, slice: int64(ttl) / budgetSlices}
	if ratio == 0 {
		b.deposit, b.withdraw = 0, 1
	} else {
		b.deposit, b.withdraw = scale, int64(scale/ratio)
	}
	b.reserve = int64(minPerSecond) * int64(ttl/time.Second) * b.withdraw
	b.curAt = clock()
	return b
}

// Deposit records an original request (not a retry).
func (b *Budget) Deposit() {
	if b == nil || b.deposit == 0 {
		return
	}
	b.mu.Lock()
	b.advance(b.clock())
	b.slices[b.cur] += b.deposit
	b.balance += b.deposit
	b.mu.Unlock()
}

// Withdraw takes the tokens of one retry and reports whether there were
// enough; a nil budget never allows a retry.
func (b *Budget) Withdraw() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(b.clock())
	if b.balance+b.reserve < b.withdraw {
		return false
	}
	b.slices[b.cur] -= b.withdraw
	b.balance -= b.withdraw
	return true
}

// Available is how many retries the budget would allow now.
func (b *Budget) Available() int64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(b.clock())
	return max(0, (b.balance+b.reserve)/b.withdraw)
}

// advance expires the slices older than the TTL window.
func (b *Budget) advance(now int64) {
	n := (now - b.curAt) / b.slice
	if n <= 0 {
		return
	}
	if n > budgetSlices {
		n = budgetSlices
		b.curAt = now
	} else {
		b.curAt += n * b.slice
	}
	for ; n > 0; n-- {
		b.cur = (b.cur + 1) % budgetSlices
		b.balance -= b.slices[b.cur]
		b.slices[b.cur] = 0
	}
}

var processStart = time.Now()

func monotonic() int64 { return int64(time.Since(processStart)) }
