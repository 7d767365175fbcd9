package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
)

type httpSeries struct {
	labels   string // rendered: direction="..",authority="..",...
	requests atomic.Uint64

	mu        sync.RWMutex
	responses map[respKey]*respSeries
}

type respKey struct {
	status int
	failed bool
	err    proxyerr.Kind
	hasErr bool
}

type respSeries struct {
	labels  string // the parent's labels plus status_code, classification, error
	count   atomic.Uint64
	buckets [latencyBucketsCount + 1]atomic.Uint64 // non-cumulative; last is +Inf
	sumUs   atomic.Uint64
}

// ObserveHTTP records one finished exchange. It implements the h2 Observer
// and is what the HTTP/1 layer calls. It does not retain h.
func (r *Registry) ObserveHTTP(h *record.HTTP) {
	s := r.httpSeries(h.Direction, &h.Peer)
	s.requests.Add(1)
	rk := respKey{status: h.StatusCode, failed: h.Failed(), err: h.ErrKind, hasErr: h.Err != nil}
	if rk.hasErr {
		r.ObserveError(h.Direction, h.ErrKind)
	}
	if h.ConnectRetries > 0 {
		r.connectRetries[h.Direction&1].Add(uint64(h.ConnectRetries))
	}
	s.mu.RLock()
	rs := s.responses[rk]
	s.mu.RUnlock()
	if rs == nil {
		rs = s.newResponse(rk)
	}
	rs.count.Add(1)
	us := uint64(max(h.Latency.Microseconds(), 0))
	rs.sumUs.Add(us)
	rs.buckets[bucketOf(us)].Add(1)
}

func bucketOf(us uint64) int {
	for i, b := range LatencyBucketsMs {
		if us <= b*1000 {
			return i
		}
	}
	return latencyBucketsCount
}

func (r *Registry) httpSeries(dir record.Direction, p *record.Peer) *httpSeries {
	r.mu.RLock()
	k, ok := r.key(dir, p, false)
	var s *httpSeries
	if ok {
		s = r.http[k]
	}
	r.mu.RUnlock()
	if s != nil {
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k, _ = r.key(dir, p, true)
	if s = r.http[k]; s == nil {
		s = &httpSeries{labels: peerLabels(k, p), responses: map[respKey]*respSeries{}}
		r.http[k] = s
	}
	return s
}

func (s *httpSeries) newResponse(k respKey) *respSeries {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs := s.responses[k]; rs != nil {
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
	b = append(b, `",error="`...)
	if k.hasErr {
		b = append(b, k.err.String()...)
	}
	b = append(b, '"')
	rs := &respSeries{labels: string(b)}
	s.responses[k] = rs
	return rs
}

// peerLabels renders the common labels of a series.
func peerLabels(k seriesKey, p *record.Peer) string {
	b := make([]byte, 0, 128)
	b = appendLabel(b, "direction", k.dir.String())
	b = append(b, ',')
	b = appendLabel(b, "authority", k.authority)
	b = append(b, ',')
	b = appendLabel(b, "target_addr", k.targetAddr)
	b = append(b, ',')
	b = appendLabel(b, "tls", strconv.FormatBool(k.tls))
	if k.authority != Overflow && k.targetAddr != Overflow {
		if k.clientID != "" {
			b = append(b, ',')
			b = appendLabel(b, "client_id", k.clientID)
		}
		if k.serverID != "" {
			b = append(b, ',')
			b = appendLabel(b, "server_id", k.serverID)
		}
		for _, l := range p.Labels {
			b = append(b, ',')
			b = appendLabel(b, l.Name, l.Value)
		}
	}
	return string(b)
}

func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, `="`...)
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
