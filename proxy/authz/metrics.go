package authz

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/weftmesh/weft/proxy/metrics"
)

// DefaultMaxSeries caps the label sets per family; decisions beyond it are
// counted under client_id="overflow".
const DefaultMaxSeries = 2000

// Metrics counts decisions in Linkerd's families:
// inbound_{http,tcp}_authz_{allow,deny}_total, and weft's
// inbound_{http,tcp}_authz_audit_total for requests allowed only by audit
// mode. Add it to the proxy's registry with
// registry.AddCollector(m.Families). A nil *Metrics records nothing.
type Metrics struct {
	mu     sync.RWMutex
	series map[metricKey]*atomic.Uint64
	max    int
}

type metricKey struct {
	tcp      bool
	outcome  uint8 // 0 allow, 1 deny, 2 audit
	labels   Labels
	clientID string
}

// NewMetrics returns empty counters.
func NewMetrics() *Metrics {
	return &Metrics{series: map[metricKey]*atomic.Uint64{}, max: DefaultMaxSeries}
}

func (m *Metrics) recordHTTP(d Decision, clientID string) { m.record(false, d, clientID) }
func (m *Metrics) recordTCP(d Decision, clientID string)  { m.record(true, d, clientID) }

func (m *Metrics) record(tcp bool, d Decision, clientID string) {
	if m == nil {
		return
	}
	k := metricKey{tcp: tcp, labels: d.Labels, clientID: clientID}
	if tcp {
		k.labels.RouteName = ""
	}
	switch {
	case !d.Allow:
		k.outcome = 1
	case d.Audited:
		// An audited request is allowed and also counted as audit.
		m.inc(k)
		k.outcome = 2
	}
	m.inc(k)
}

func (m *Metrics) inc(k metricKey) {
	m.mu.RLock()
	c := m.series[k]
	m.mu.RUnlock()
	if c == nil {
		m.mu.Lock()
		if c = m.series[k]; c == nil {
			if len(m.series) >= m.max {
				k.clientID = metrics.Overflow
			}
			if c = m.series[k]; c == nil {
				c = new(atomic.Uint64)
				m.series[k] = c
			}
		}
		m.mu.Unlock()
	}
	c.Add(1)
}

var familyNames = [2][3]string{
	{"inbound_http_authz_allow_total", "inbound_http_authz_deny_total", "inbound_http_authz_audit_total"},
	{"inbound_tcp_authz_allow_total", "inbound_tcp_authz_deny_total", "inbound_tcp_authz_audit_total"},
}

var familyHelp = [3]string{
	"The total number of inbound requests or connections that were authorized",
	"The total number of inbound requests or connections that were refused",
	"The total number of inbound requests or connections that deny would refuse but audit mode allowed",
}

// Families renders the counters for the proxy's metrics registry.
func (m *Metrics) Families() []metrics.Family {
	var fams [2][3]metrics.Family
	for t := range 2 {
		for o := range 3 {
			fams[t][o] = metrics.Family{Name: familyNames[t][o], Type: "counter", Help: familyHelp[o]}
		}
	}
	m.mu.RLock()
	for k, c := range m.series {
		t := 0
		if k.tcp {
			t = 1
		}
		f := &fams[t][k.outcome]
		f.Samples = append(f.Samples, metrics.Sample{Labels: k.render(), Value: float64(c.Load())})
	}
	m.mu.RUnlock()
	out := make([]metrics.Family, 0, 6)
	for t := range 2 {
		for o := range 3 {
			if len(fams[t][o].Samples) > 0 {
				sortSamples(fams[t][o].Samples)
				out = append(out, fams[t][o])
			}
		}
	}
	return out
}

// Count returns the counter of one label set (for tests and admin
// summaries); tcp selects the TCP families, outcome is "allow", "deny" or
// "audit".
func (m *Metrics) Count(tcp bool, outcome string, l Labels, clientID string) uint64 {
	o := map[string]uint8{"allow": 0, "deny": 1, "audit": 2}[outcome]
	m.mu.RLock()
	defer m.mu.RUnlock()
	if c := m.series[metricKey{tcp: tcp, outcome: o, labels: l, clientID: clientID}]; c != nil {
		return c.Load()
	}
	return 0
}

func (k metricKey) render() string {
	var b strings.Builder
	kv := func(n, v string) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n)
		b.WriteString("=")
		b.WriteString(strconv.Quote(v))
	}
	kv("srv_kind", k.labels.SrvKind)
	kv("srv_name", k.labels.SrvName)
	kv("authz_kind", k.labels.AuthzKind)
	kv("authz_name", k.labels.AuthzName)
	if !k.tcp {
		kv("route_name", k.labels.RouteName)
	}
	kv("client_id", k.clientID)
	return b.String()
}

func sortSamples(s []metrics.Sample) {
	slices.SortFunc(s, func(a, b metrics.Sample) int { return strings.Compare(a.Labels, b.Labels) })
}
