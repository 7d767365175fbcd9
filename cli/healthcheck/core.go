// Package healthcheck holds the checks `weft check` runs: before install
// (--pre), on the control plane (default) and on the data plane (--proxy).
//
// Every check is one Check value in the registry; a category file (pre.go,
// controlplane.go, identity.go …) registers its checks from init. Adding a
// check is therefore a one-file change: write the Check, Register it, and
// give it a section in docs/checks.md. Checks read the cluster only through
// Env, which lists each kind once per round, so a run costs a fixed number of
// API calls however many pods the cluster holds.
package healthcheck

import (
	"context"
	"sort"
	"sync"
)

// Result is the outcome of one check.
type Result string

// The three results, as written in JSON output.
const (
	OK      Result = "ok"
	Warning Result = "warning"
	Failure Result = "failure"
)

// Mode selects which checks a run executes; a Check's Modes is a set.
type Mode int

// The modes of `weft check`.
const (
	// Pre runs before install (--pre).
	Pre Mode = 1 << iota
	// ControlPlane is the default, after install.
	ControlPlane
	// DataPlane checks meshed proxies (--proxy).
	DataPlane
	// Always runs in every mode.
	Always = Pre | ControlPlane | DataPlane
)

// Category groups checks in the output; Order sorts categories.
type Category struct {
	Name  string
	Order int
}

// Finding is what a check's Run returns.
type Finding struct {
	Result  Result
	Message string
	// Hint is the fix: an exact command where one exists.
	Hint string
	// Pending asks the runner to retry until the wait deadline; Message
	// then says what was last seen.
	Pending bool
}

// Check is one entry of the registry.
type Check struct {
	// ID is stable: JSON output and the docs/checks.md anchor use it.
	ID       string
	Category Category
	Modes    Mode
	// Description is the line printed for the check, e.g. "identity is ready".
	Description string
	// WaitFor names what a pending check waits for, in the timeout message.
	WaitFor string
	// Fatal stops the run after a failure (nothing later can work).
	Fatal bool
	Run   func(ctx context.Context, e *Env) Finding
}

var (
	regMu    sync.Mutex
	registry []Check
)

// Register adds checks to the registry; category files call it from init.
func Register(cs ...Check) {
	regMu.Lock()
	defer regMu.Unlock()
	registry = append(registry, cs...)
}

// Checks returns the registered checks of mode in run order: by category
// order, then by registration order.
func Checks(mode Mode) []Check {
	regMu.Lock()
	defer regMu.Unlock()
	var out []Check
	for _, c := range registry {
		if c.Modes&mode != 0 {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Category.Order < out[j].Category.Order })
	return out
}

func ok(msg string) Finding { return Finding{Result: OK, Message: msg} }

func warn(msg, hint string) Finding { return Finding{Result: Warning, Message: msg, Hint: hint} }

func fail(msg, hint string) Finding { return Finding{Result: Failure, Message: msg, Hint: hint} }

func pending(msg, hint string) Finding {
	return Finding{Result: Failure, Message: msg, Hint: hint, Pending: true}
}

// errFinding turns an API error into a failure.
func errFinding(err error, hint string) Finding { return fail(err.Error(), hint) }
