package watcher

import (
	"maps"
	"net/netip"
	"time"
)

// portState is the published address set of one service port.
type portState struct {
	version uint64
	snap    AddressSet // immutable once published
	// last is the change from version-1 to version.
	last      Change
	changedAt time.Time
	subs      map[*Subscription]struct{}
}

func newPortState(snap AddressSet) *portState {
	return &portState{version: 1, snap: snap, subs: map[*Subscription]struct{}{}}
}

// replace publishes next if it differs from the current snapshot and signals
// subscribers; it reports whether anything changed.
func (ps *portState) replace(next AddressSet, now time.Time) bool {
	ch := Diff(ps.snap, next)
	if ch.Empty() {
		return false
	}
	ps.version++
	ps.snap = next
	ps.last = ch
	ps.changedAt = now
	for sub := range ps.subs {
		select {
		case sub.C <- struct{}{}:
		default: // already signalled; it will read the latest snapshot
		}
	}
	return true
}

// Change is the difference between two address sets.
type Change struct {
	Added   []Address
	Removed []netip.AddrPort
	// ExistsChanged is true when the service appeared or disappeared.
	ExistsChanged bool
	// Set is the resulting snapshot.
	Set AddressSet
	// At is when the change was published (for lag metrics).
	At time.Time
}

// Empty reports whether the change changes nothing.
func (c Change) Empty() bool {
	return len(c.Added) == 0 && len(c.Removed) == 0 && !c.ExistsChanged
}

// Diff computes the change from prev to next. An address whose metadata
// changed (e.g. its pod became meshed) counts as added again.
func Diff(prev, next AddressSet) Change {
	ch := Change{Set: next, ExistsChanged: prev.Exists != next.Exists}
	for k, a := range next.Addresses {
		if old, ok := prev.Addresses[k]; !ok || !sameAddress(old, a) {
			ch.Added = append(ch.Added, a)
		}
	}
	for k := range prev.Addresses {
		if _, ok := next.Addresses[k]; !ok {
			ch.Removed = append(ch.Removed, k)
		}
	}
	return ch
}

func sameAddress(a, b Address) bool {
	if a.Zone != b.Zone || a.Hostname != b.Hostname || a.Terminating != b.Terminating || (a.Pod == nil) != (b.Pod == nil) {
		return false
	}
	if a.Pod == nil {
		return true
	}
	return a.Pod.Meshed == b.Pod.Meshed && a.Pod.ServiceAccount == b.Pod.ServiceAccount &&
		a.Pod.Name == b.Pod.Name && a.Pod.OwnerName == b.Pod.OwnerName && maps.Equal(a.Pod.OpaquePorts, b.Pod.OpaquePorts)
}

// Subscription follows one service port. C is signalled (never blocking the
// publisher) whenever the set may have changed; Next then returns what changed
// since the last call. Signals coalesce, so one may find nothing new (ok
// false) when an earlier Next already returned the latest state.
type Subscription struct {
	w    *Watcher
	svc  *service
	port uint32
	ps   *portState
	C    chan struct{}
	// sentVersion and sent are what this subscriber has seen.
	sentVersion uint64
	sent        AddressSet
}

// Next returns the change since the previous call (the whole set on the first
// call) and whether there is any.
func (s *Subscription) Next() (Change, bool) {
	s.w.mu.Lock()
	version, snap, last, at := s.ps.version, s.ps.snap, s.ps.last, s.ps.changedAt
	s.w.mu.Unlock()
	if version == s.sentVersion {
		return Change{}, false
	}
	var ch Change
	if s.sentVersion != 0 && version == s.sentVersion+1 {
		ch = last // consecutive: reuse the change computed once for everyone
	} else {
		ch = Diff(s.sent, snap)
		ch.ExistsChanged = ch.ExistsChanged || s.sentVersion == 0
	}
	ch.At = at
	s.sentVersion, s.sent = version, snap
	return ch, true
}

// Close ends the subscription.
func (s *Subscription) Close() { s.w.unsubscribe(s) }
