package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/weftmesh/weft/proxy/record"
)

// Route metrics (Linkerd's rt_route family): route_request_total,
// route_response_total and route_response_latency_ms count requests as the
// client saw them (after retries); route_actual_request_total and
// route_actual_response_total count every attempt sent to an endpoint.

// MaxRoutes caps the distinct (direction, dst, rt_route) series; later
// ones are reported with rt_route="overflow".
const MaxRoutes = 1000

type routeKey struct {
	dir   record.Direction
	dst   string
	route string
}

type routeSeries struct {
	labels   string
	requests atomic.Uint64
	actual   atomic.Uint64

	mu      sync.RWMutex
	resps   map[routeRespKey]*respSeries // route_response_total / latency
	actuals map[routeRespKey]*respSeries // route_actual_response_total
}

type routeRespKey struct {
	status int
	failed bool
}

// ObserveRoute records one request to a profile route as the client saw it
// (h.Route must be set), classified by the route's response classes. It
// does not retain h.
func (r *Registry) ObserveRoute(h *record.HTTP, failed bool) {
	s := r.routeSeries(h.Direction, h.Peer.Authority, h.Route)
	s.requests.Add(1)
	rs := s.resp(&s.resps, routeRespKey{status: h.StatusCode, failed: failed})
	rs.count.Add(1)
	us := uint64(max(h.Latency.Microseconds(), 0))
	rs.sumUs.Add(us)
	rs.buckets[bucketOf(us)].Add(1)
}

// ObserveRouteAttempt records one attempt (the first or a retry) of a
// request to a profile route.
func (r *Registry) ObserveRouteAttempt(h *record.HTTP, failed bool) {
	s := r.routeSeries(h.Direction, h.Peer.Authority, h.Route)
	s.actual.Add(1)
	s.resp(&s.actuals, routeRespKey{status: h.StatusCode, failed: failed}).count.Add(1)
}

func (r *Registry) routeSeries(dir record.Direction, dst, route string) *routeSeries {
	k := routeKey{dir: dir & 1, dst: dst, route: route}
	r.mu.RLock()
	s := r.routes[k]
	r.mu.RUnlock()
	if s != nil {
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s = r.routes[k]; s != nil {
		return s
	}
	if len(r.routes) >= MaxRoutes {
		k.dst, k.route = Overflow, Overflow
		if s = r.routes[k]; s != nil {
			return s
		}
	} else {
		// Own copies: producers reuse buffers.
		k.dst = string(append([]byte(nil), dst...))
		k.route = string(append([]byte(nil), route...))
	}
	b := make([]byte, 0, 96)
	b = appendLabel(b, "direction", k.dir.String())
	b = append(b, ',')
	b = appendLabel(b, "dst", k.dst)
	b = append(b, ',')
	b = appendLabel(b, "rt_route", k.route)
	s = &routeSeries{labels: string(b), resps: map[routeRespKey]*respSeries{}, actuals: map[routeRespKey]*respSeries{}}
	r.routes[k] = s
	return s
}

func (s *routeSeries) resp(m *map[routeRespKey]*respSeries, k routeRespKey) *respSeries {
	s.mu.RLock()
	rs := (*m)[k]
	s.mu.RUnlock()
	if rs != nil {
		return rs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs = (*m)[k]; rs != nil {
		return rs
	}
	b := []byte(s.labels)
	b = append(b, `,status_code="`...)
	if k.status != 0 {
		b = strconv.AppendInt(b, int64(k.status), 10)
	}
	b = append(b, `",classification="`...)
	if k.failed {
		b = append(b, "failure"...)
	} else {
		b = append(b, "success"...)
	}
	b = append(b, '"')
	rs = &respSeries{labels: string(b)}
	(*m)[k] = rs
	return rs
}

// Family is a metric family rendered by a collector at scrape time.
type Family struct {
	Name, Type, Help string
	Samples          []Sample
}

// Sample is one series of a Family; Labels is rendered label text
// (`a="b",c="d"`), empty for none.
type Sample struct {
	Labels string
	Value  float64
}

// AddCollector registers f, called at every scrape; its families are
// rendered after the built-in ones. Call before serving.
func (r *Registry) AddCollector(f func() []Family) {
	r.mu.Lock()
	r.collectors = append(r.collectors, f)
	r.mu.Unlock()
}
