package window

import "encoding/binary"

// series holds one Key's points in a ring of at most the span's ticks, in
// dense columns of fixed-size fields; which columns a series has depends
// on its family (HTTP: requests, successes, buckets; Route: also the
// actual requests and successes; TCP: opened, open, bytes read and
// written). Buckets are (index, count) varint pairs in a fixed-width slot
// per point, zero-padded ((0, 0) is never a pair, so it ends the list);
// the width grows, for the whole series, when a point needs more.
type series struct {
	key Key
	// dead is set once the series left the window: holders of a pointer
	// (pod states) must look the Key up again.
	dead bool

	head, n int      // oldest point's slot, number of points
	ticks   []uint32 // per slot
	cnt     []uint32 // per slot, counterStride(family) values
	bytes   []uint64 // TCP only: read, written per slot
	bwidth  int      // bytes of one slot of bkt
	bkt     []byte   // HTTP and Route: bucket slots
}

// counterStride is how many uint32 counters a point of f has.
func counterStride(f Family) int {
	if f == Route {
		return 4
	}
	return 2
}

func (s *series) capacity() int { return len(s.ticks) }

func (s *series) slot(i int) int { return (s.head + i) % s.capacity() }

// add merges d into the point at d.Tick (the newest, if it is that tick) or
// appends a point; a full ring (maxPoints) overwrites its oldest, which is
// beyond the span by then (ticks only grow).
func (s *series) add(d *Point, maxPoints int) {
	if s.n > 0 {
		if j := s.slot(s.n - 1); int64(s.ticks[j]) == d.Tick {
			s.merge(j, d)
			return
		}
	}
	if s.n == s.capacity() && s.n < maxPoints {
		s.grow(min(max(8, 2*s.capacity()), maxPoints))
	}
	var j int
	if s.n < s.capacity() {
		j = s.slot(s.n)
		s.n++
	} else {
		j = s.head
		s.head = (s.head + 1) % s.capacity()
	}
	s.ticks[j] = uint32(d.Tick)
	s.setCounters(j, d)
	if s.key.Family != TCP {
		s.setBuckets(j, d.Buckets)
	}
}

func (s *series) setCounters(j int, d *Point) {
	st := counterStride(s.key.Family)
	c := s.cnt[j*st : j*st+st]
	switch s.key.Family {
	case TCP:
		c[0], c[1] = d.Opened, d.Open
		s.bytes[2*j], s.bytes[2*j+1] = d.Read, d.Written
	case Route:
		c[0], c[1], c[2], c[3] = d.Requests, d.Success, d.ActualRequests, d.ActualSuccess
	default:
		c[0], c[1] = d.Requests, d.Success
	}
}

// point returns slot j as a Point (Buckets aliases the slot).
func (s *series) point(j int, p *Point) {
	*p = Point{Tick: int64(s.ticks[j])}
	st := counterStride(s.key.Family)
	c := s.cnt[j*st : j*st+st]
	switch s.key.Family {
	case TCP:
		p.Opened, p.Open = c[0], c[1]
		p.Read, p.Written = s.bytes[2*j], s.bytes[2*j+1]
	case Route:
		p.Requests, p.Success, p.ActualRequests, p.ActualSuccess = c[0], c[1], c[2], c[3]
	default:
		p.Requests, p.Success = c[0], c[1]
	}
	if s.bwidth > 0 {
		p.Buckets = s.bkt[j*s.bwidth : (j+1)*s.bwidth]
	}
}

func (s *series) merge(j int, d *Point) {
	var cur Point
	s.point(j, &cur)
	cur.Requests += d.Requests
	cur.Success += d.Success
	cur.ActualRequests += d.ActualRequests
	cur.ActualSuccess += d.ActualSuccess
	cur.Opened += d.Opened
	cur.Open += d.Open
	cur.Read += d.Read
	cur.Written += d.Written
	s.setCounters(j, &cur)
	if len(d.Buckets) == 0 {
		return
	}
	var sum [NumBuckets]uint64
	eachBucket(cur.Buckets, func(i int, n uint64) { sum[i] += n })
	eachBucket(d.Buckets, func(i int, n uint64) { sum[i] += n })
	s.setBuckets(j, encodeBuckets(nil, &sum))
}

// encodeBuckets appends the non-zero counts of sum as varint pairs.
func encodeBuckets(b []byte, sum *[NumBuckets]uint64) []byte {
	for i, n := range sum {
		if n > 0 {
			b = binary.AppendUvarint(binary.AppendUvarint(b, uint64(i)), n)
		}
	}
	return b
}

func (s *series) setBuckets(j int, enc []byte) {
	if len(enc) > s.bwidth {
		s.widen(len(enc))
	}
	if s.bwidth == 0 {
		return
	}
	slot := s.bkt[j*s.bwidth : (j+1)*s.bwidth]
	clear(slot[copy(slot, enc):])
}

// widen re-lays the bucket slots at width w.
func (s *series) widen(w int) {
	nb := make([]byte, s.capacity()*w)
	for j := range s.capacity() {
		copy(nb[j*w:], s.bkt[j*s.bwidth:(j+1)*s.bwidth])
	}
	s.bkt, s.bwidth = nb, w
}

// grow re-lays the ring in order at capacity c.
func (s *series) grow(c int) {
	st := counterStride(s.key.Family)
	ticks, cnt := make([]uint32, c), make([]uint32, c*st)
	var bytes []uint64
	if s.key.Family == TCP {
		bytes = make([]uint64, 2*c)
	}
	var bkt []byte
	if s.bwidth > 0 {
		bkt = make([]byte, c*s.bwidth)
	}
	for i := range s.n {
		j := s.slot(i)
		ticks[i] = s.ticks[j]
		copy(cnt[i*st:], s.cnt[j*st:j*st+st])
		if bytes != nil {
			copy(bytes[2*i:], s.bytes[2*j:2*j+2])
		}
		if bkt != nil {
			copy(bkt[i*s.bwidth:], s.bkt[j*s.bwidth:(j+1)*s.bwidth])
		}
	}
	s.ticks, s.cnt, s.bytes, s.bkt, s.head = ticks, cnt, bytes, bkt, 0
}

// trim drops the points at or before tick oldest.
func (s *series) trim(oldest int64) {
	for s.n > 0 && int64(s.ticks[s.head]) <= oldest {
		s.head = (s.head + 1) % s.capacity()
		s.n--
	}
}

// each calls f with every point in [first, last], oldest first; p is
// reused between calls.
func (s *series) each(first, last int64, f func(p *Point)) {
	var p Point
	for i := range s.n {
		j := s.slot(i)
		if t := int64(s.ticks[j]); t < first || t > last {
			continue
		}
		s.point(j, &p)
		f(&p)
	}
}
