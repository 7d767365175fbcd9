package window

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/weftmesh/weft/proxy/metrics"
)

// NumBuckets is the number of latency buckets, +Inf included.
const NumBuckets = len(metrics.LatencyBucketsMs) + 1

// Bounds are the latency buckets' upper bounds in ms (the proxy's
// response_latency_ms buckets); the last is +Inf.
var Bounds = func() [NumBuckets]float64 {
	var b [NumBuckets]float64
	for i, v := range metrics.LatencyBucketsMs {
		b[i] = float64(v)
	}
	b[NumBuckets-1] = math.Inf(1)
	return b
}()

// bucketIndex maps an upper bound to the first of Bounds at or above it.
func bucketIndex(le float64) int {
	for i, b := range Bounds {
		if le <= b {
			return i
		}
	}
	return NumBuckets - 1
}

// maxLine bounds one exposition line.
const maxLine = 1 << 20

// counters are one pod's cumulative counters for one Key, summed over the
// label values the Key does not keep (status codes, target addresses).
type counters struct {
	req, ok, areq, aok, opened, read, written, open float64
}

// podEntry is one Key of one pod: its counters at this and the previous
// scrape, and the series they feed (cached; looked up again once dead).
type podEntry struct {
	key               Key
	workload, rollup  *series
	cur, prev         counters
	hist              *[2][NumBuckets]float64 // cur, prev; HTTP and Route only
	curSeen, prevSeen bool
}

// podState is what the window keeps of a pod between scrapes.
type podState struct {
	index    map[string]int32 // sample signature → entries
	entries  []podEntry
	baseline bool // a first scrape was taken
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Begin starts a new tick (one scrape round) at now and trims points that
// fell out of the span. It returns the tick to pass to Ingest.
func (w *Window) Begin(now time.Time) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.tick < 0 {
		w.start = now
	}
	w.tick++
	oldest := w.tick - w.ticks()
	for k, s := range w.series {
		s.trim(oldest)
		if s.n == 0 {
			s.dead = true
			delete(w.series, k)
		}
	}
	return w.tick
}

// Ingest adds one pod's scrape, taken at tick, to the window. The body is
// read before the window is locked; it is then parsed line by line
// straight into the pod's counters (no metric families are built).
func (w *Window) Ingest(tick int64, pod PodInfo, r io.Reader) error {
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return fmt.Errorf("read metrics of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	id := pod.Namespace + "/" + pod.Name
	ps := w.prev[id]
	if ps == nil {
		ps = &podState{index: map[string]int32{}}
	}
	if err := w.parseInto(ps, pod, buf.Bytes()); err != nil {
		w.forget(ps)
		return fmt.Errorf("parse metrics of %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	w.prev[id] = ps
	if !ps.baseline {
		ps.baseline = true
		w.forget(ps)
		return nil
	}
	reset := false
	for i := range ps.entries {
		if e := &ps.entries[i]; e.curSeen && e.prevSeen && wentBack(e) {
			reset = true
			break
		}
	}
	for i := range ps.entries {
		e := &ps.entries[i]
		if !e.curSeen {
			continue
		}
		d := w.diff(e, e.prevSeen && !reset)
		d.Tick = tick
		if empty(&d) {
			continue
		}
		w.addTo(&e.workload, e.key, &d)
		if e.key.Family != Route {
			w.addTo(&e.rollup, Key{Family: e.key.Family, Namespace: e.key.Namespace, Kind: e.key.Kind, Name: e.key.Name, Pod: w.intern([]byte(pod.Name)), Dir: e.key.Dir}, &d)
		}
	}
	w.forget(ps)
	return nil
}

// forget makes this scrape the previous one.
func (w *Window) forget(ps *podState) {
	for i := range ps.entries {
		e := &ps.entries[i]
		e.prev, e.prevSeen, e.cur, e.curSeen = e.cur, e.curSeen, counters{}, false
		if e.hist != nil {
			e.hist[1], e.hist[0] = e.hist[0], [NumBuckets]float64{}
		}
	}
}

// parseInto adds every kept sample of body to the pod's current counters.
func (w *Window) parseInto(ps *podState, pod PodInfo, body []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(w.lineBuf[:0], maxLine)
	p := &w.parser
	var lastSig, lastSeries []byte
	last := int32(-1)
	below, sawInf := 0.0, false
	for sc.Scan() {
		ok, err := p.line(sc.Bytes())
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		s := &p.s
		if last < 0 || !bytes.Equal(s.sig, lastSig) {
			last = w.entry(ps, pod, s)
			lastSig = append(lastSig[:0], s.sig...)
		}
		e := &ps.entries[last]
		e.curSeen = true
		c := &e.cur
		switch s.metric {
		case mResponse, mRouteResponse:
			c.req += s.value
			if s.success {
				c.ok += s.value
			}
		case mRouteActual:
			c.areq += s.value
			if s.success {
				c.aok += s.value
			}
		case mLatencyBucket, mRouteBucket:
			// Buckets are cumulative within one exposition series, whose
			// lines are consecutive.
			if !bytes.Equal(s.series, lastSeries) {
				lastSeries, below, sawInf = append(lastSeries[:0], s.series...), 0, false
			}
			e.hist[0][bucketIndex(s.le)] += s.value - below
			below, sawInf = s.value, sawInf || math.IsInf(s.le, 1)
		case mLatencyCount, mRouteCount:
			if bytes.Equal(s.series, lastSeries) && !sawInf {
				e.hist[0][NumBuckets-1] += s.value - below
				sawInf = true
			}
		case mTCPOpened:
			c.opened += s.value
		case mTCPOpen:
			c.open += s.value
		case mTCPRead:
			c.read += s.value
		case mTCPWritten:
			c.written += s.value
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	return nil
}

// entry returns the index of s's Key among the pod's entries, adding it.
func (w *Window) entry(ps *podState, pod PodInfo, s *sample) int32 {
	if i, ok := ps.index[string(s.sig)]; ok {
		return i
	}
	i := int32(len(ps.entries))
	e := podEntry{key: w.keyOf(s, pod)}
	if e.key.Family != TCP {
		e.hist = new([2][NumBuckets]float64)
	}
	ps.entries = append(ps.entries, e)
	ps.index[string(s.sig)] = i
	return i
}

func (w *Window) keyOf(s *sample, pod PodInfo) Key {
	l := &s.labels
	k := Key{Family: s.metric.family(), Namespace: w.intern([]byte(pod.Namespace)), Kind: w.intern([]byte(pod.Kind)), Name: w.intern([]byte(pod.Workload)),
		Dir: w.intern(l[lDirection]), Authority: w.intern(l[lAuthority]), TLS: string(l[lTLS]) == "true",
		ClientID: w.intern(l[lClientID]), ServerID: w.intern(l[lServerID]), DstNamespace: w.intern(l[lDstNamespace]),
		DstService: w.intern(l[lDstService]), Route: w.intern(l[lRoute])}
	for _, d := range dstKinds {
		if len(l[d.l]) > 0 {
			k.DstKind, k.DstName = d.kind, w.intern(l[d.l])
			break
		}
	}
	return k
}

// addTo adds d to k's series through the cached pointer *cache.
func (w *Window) addTo(cache **series, k Key, d *Point) {
	s := *cache
	if s == nil || s.dead {
		if s = w.series[k]; s == nil {
			if len(w.series) >= w.cfg.MaxSeries {
				w.dropped++
				return
			}
			s = &series{key: k}
			w.series[k] = s
		}
		*cache = s
	}
	s.add(d, int(w.ticks()))
}

func wentBack(e *podEntry) bool {
	c, p := &e.cur, &e.prev
	if c.req < p.req || c.ok < p.ok || c.areq < p.areq || c.aok < p.aok || c.opened < p.opened || c.read < p.read || c.written < p.written {
		return true
	}
	if e.hist != nil {
		for i := range e.hist[0] {
			if e.hist[0][i] < e.hist[1][i] {
				return true
			}
		}
	}
	return false
}

func sat32(v float64) uint32 { return uint32(min(max(v, 0), math.MaxUint32)) }
func sat64(v float64) uint64 { return uint64(min(max(v, 0), math.MaxUint64/2)) }

// diff is e's delta since the previous scrape (since zero without one, or
// after a reset). Its Buckets alias the window's scratch space.
func (w *Window) diff(e *podEntry, withPrev bool) Point {
	c, p := &e.cur, &counters{}
	if withPrev {
		p = &e.prev
	}
	d := Point{
		Requests: sat32(c.req - p.req), Success: sat32(c.ok - p.ok),
		ActualRequests: sat32(c.areq - p.areq), ActualSuccess: sat32(c.aok - p.aok),
		Opened: sat32(c.opened - p.opened), Open: sat32(c.open),
		Read: sat64(c.read - p.read), Written: sat64(c.written - p.written),
	}
	if e.hist != nil {
		var sum [NumBuckets]uint64
		for i, n := range e.hist[0] {
			if withPrev {
				n -= e.hist[1][i]
			}
			sum[i] = uint64(sat32(n))
		}
		w.bscratch = encodeBuckets(w.bscratch[:0], &sum)
		d.Buckets = w.bscratch
	}
	return d
}

func empty(d *Point) bool {
	return d.Requests == 0 && d.ActualRequests == 0 && d.Opened == 0 && d.Open == 0 && d.Read == 0 && d.Written == 0 && len(d.Buckets) == 0
}

// eachBucket calls f for every (index, count) pair of encoded buckets; a
// (0, 0) pair (slot padding) ends them.
func eachBucket(b []byte, f func(i int, n uint64)) {
	for len(b) > 0 {
		i, n1 := binary.Uvarint(b)
		if n1 <= 0 {
			return
		}
		c, n2 := binary.Uvarint(b[n1:])
		if n2 <= 0 || (i == 0 && c == 0) {
			return
		}
		if i < uint64(NumBuckets) {
			f(int(i), c)
		}
		b = b[n1+n2:]
	}
}
