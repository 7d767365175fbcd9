// Package top aggregates tap events into `weft viz top`'s table: one row per
// source, destination, method and path, with the count of completed
// requests, the best, worst and last latency, and the success rate.
package top

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/viz/tap"
)

// MaxPending bounds the requests waiting for their end; requests beyond it
// are not counted (a stream that loses ends cannot grow the table forever).
const MaxPending = 10_000

// Key is a row of the table.
type Key struct {
	Source, Destination, Method, Path string
}

// Row is a key's figures. Latency is the time to the response's first byte
// (the end's duration when there was no response).
type Row struct {
	Key
	Count, Successes  int
	Best, Worst, Last time.Duration
}

// Success is the fraction of the row's requests that succeeded.
func (r Row) Success() float64 {
	if r.Count == 0 {
		return 0
	}
	return float64(r.Successes) / float64(r.Count)
}

// DefaultRoute is the Path of requests no route matched (with Route set).
const DefaultRoute = "[DEFAULT]"

// Table aggregates events; it is safe for concurrent use.
type Table struct {
	// HideSources merges the rows of every source.
	HideSources bool
	// Route, when set, names the route of a request (its ServiceProfile
	// route), which then replaces the path in the key; "" is DefaultRoute.
	// It is called without the table's lock held.
	Route func(authority, method, path string) string

	mu      sync.Mutex
	pending map[string]*pending
	rows    map[Key]*Row
}

type pending struct {
	key     Key
	latency time.Duration
	status  int32
	hasRsp  bool
}

// Add folds one event in.
func (t *Table) Add(ev tap.Event) {
	var key Key
	if r := ev.Event.GetRequest(); r != nil {
		src, dst := tap.Peers(ev)
		key = Key{Source: src.Name(), Destination: dst.Name(), Method: r.GetMethod(), Path: r.GetPath()}
		if t.HideSources {
			key.Source = ""
		}
		if t.Route != nil {
			if key.Path = t.Route(r.GetAuthority(), r.GetMethod(), r.GetPath()); key.Path == "" {
				key.Path = DefaultRoute
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending == nil {
		t.pending, t.rows = map[string]*pending{}, map[Key]*Row{}
	}
	id := ev.Namespace + "/" + ev.Pod + "/" + strconv.FormatUint(ev.Event.GetId(), 10)
	switch k := ev.Event.GetKind().(type) {
	case *tapv1.Event_Request:
		if len(t.pending) >= MaxPending {
			return
		}
		t.pending[id] = &pending{key: key}
	case *tapv1.Event_Response:
		if p := t.pending[id]; p != nil {
			p.latency = time.Duration(k.Response.GetLatencyUs()) * time.Microsecond
			p.status, p.hasRsp = k.Response.GetStatus(), true
		}
	case *tapv1.Event_End:
		p := t.pending[id]
		if p == nil {
			return
		}
		delete(t.pending, id)
		if !p.hasRsp {
			p.latency = time.Duration(k.End.GetDurationUs()) * time.Microsecond
		}
		t.record(p, Succeeded(p.hasRsp, p.status, k.End))
	}
}

func (t *Table) record(p *pending, ok bool) {
	r := t.rows[p.key]
	if r == nil {
		r = &Row{Key: p.key, Best: p.latency, Worst: p.latency}
		t.rows[p.key] = r
	}
	r.Count++
	if ok {
		r.Successes++
	}
	r.Best, r.Worst, r.Last = min(r.Best, p.latency), max(r.Worst, p.latency), p.latency
}

// Succeeded classifies an exchange as the proxy's metrics do (Linkerd's
// classification): a response below 500, that the proxy neither failed nor
// reset, whose gRPC status is not a failure code.
func Succeeded(hasRsp bool, status int32, end *tapv1.ResponseEnd) bool {
	switch {
	case !hasRsp, status >= 500, end.GetErrorKind() != "", end.GetReset_():
		return false
	}
	g := end.GetGrpcStatus()
	return g <= 0 || int(g) >= len(grpcFailure) || !grpcFailure[g]
}

// grpcFailure: Unknown, DeadlineExceeded, PermissionDenied, Internal,
// Unavailable, DataLoss (as proxy/record classifies them).
var grpcFailure = [17]bool{2: true, 4: true, 7: true, 13: true, 14: true, 15: true}

// Rows returns the rows by count (highest first), then by key.
func (t *Table) Rows() []Row {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Row, 0, len(t.rows))
	for _, r := range t.rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Row) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Destination, b.Destination),
			cmp.Compare(a.Method, b.Method), cmp.Compare(a.Path, b.Path))
	})
	return out
}

// Columns choose the table's shape.
type Columns struct {
	// HideSources drops the Source column; Routes names the Path column
	// Route.
	HideSources, Routes bool
}

// Write renders rows as the top table; limit > 0 keeps the first limit rows.
func Write(w io.Writer, rows []Row, c Columns, limit int) error {
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	path := "Path"
	if c.Routes {
		path = "Route"
	}
	head := "Destination\tMethod\t" + path + "\tCount\tBest\tWorst\tLast\tSuccess\n"
	if !c.HideSources {
		head = "Source\t" + head
	}
	fmt.Fprint(tw, head)
	for _, r := range rows {
		if !c.HideSources {
			fmt.Fprintf(tw, "%s\t", r.Source)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%.2f%%\n", r.Destination, r.Method, r.Path, r.Count,
			Latency(r.Best), Latency(r.Worst), Latency(r.Last), 100*r.Success())
	}
	return tw.Flush()
}

// Latency renders d as Linkerd's top does: µs below 1 ms, ms below 1 s,
// else seconds.
func Latency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatInt(d.Microseconds(), 10) + "µs"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
}
