// Package metrics records the proxy's traffic in Linkerd-compatible
// Prometheus metrics and renders them in the text exposition format.
//
// Recording is allocation-free once a label set has been seen: series are
// looked up by a comparable key under a read lock and updated with atomics;
// a new series is created (and its label text rendered once) under the write
// lock. client_golang's With(labels) builds a label map and hashes it on
// every call, which allocates on the hot path; see docs/proxy.md.
package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/weftmesh/weft/proxy/detect"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
)

// Overflow is the label value that replaces authorities and target addresses
// beyond the cap.
const Overflow = "overflow"

// Defaults for the cardinality caps (per direction).
const (
	DefaultMaxAuthorities = 100
	DefaultMaxTargetAddrs = 1000
	numDirections         = 2
	numDetectProtocols    = 4
	numDetectResults      = 3
	numKinds              = int(proxyerr.Overloaded) + 1
	latencyBucketsCount   = 25
)

// LatencyBucketsMs are Linkerd's response_latency_ms bucket bounds.
var LatencyBucketsMs = [latencyBucketsCount]uint64{1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
	1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000}

// DetectResult says how a detection ended.
type DetectResult uint8

// Detection results.
const (
	Detected DetectResult = iota // the first bytes decided the protocol
	Timeout                      // nothing decisive before the timeout: TCP
	Skipped                      // an opaque port: no detection
)

var detectResultNames = [numDetectResults]string{"detected", "timeout", "skipped"}

// Registry holds every series. The zero value is not usable; call New.
type Registry struct {
	maxAuthorities, maxTargets int

	mu          sync.RWMutex
	http        map[seriesKey]*httpSeries
	tcp         map[seriesKey]*TCPSeries
	authorities [numDirections]map[string]struct{}
	targets     [numDirections]map[string]struct{}

	detect [numDirections][numDetectProtocols][numDetectResults]atomic.Uint64
	errors [numDirections][numKinds]atomic.Uint64
	// connectRetries counts record.HTTP.ConnectRetries.
	connectRetries [numDirections]atomic.Uint64

	routes     map[routeKey]*routeSeries
	collectors []func() []Family
}

// New returns an empty registry with the default caps.
func New() *Registry {
	r := &Registry{
		maxAuthorities: DefaultMaxAuthorities,
		maxTargets:     DefaultMaxTargetAddrs,
		http:           map[seriesKey]*httpSeries{},
		tcp:            map[seriesKey]*TCPSeries{},
		routes:         map[routeKey]*routeSeries{},
	}
	for d := range numDirections {
		r.authorities[d] = map[string]struct{}{}
		r.targets[d] = map[string]struct{}{}
	}
	return r
}

// SetCaps changes the per-direction cardinality caps; call before use.
func (r *Registry) SetCaps(maxAuthorities, maxTargetAddrs int) {
	r.maxAuthorities, r.maxTargets = maxAuthorities, maxTargetAddrs
}

type seriesKey struct {
	dir        record.Direction
	authority  string
	targetAddr string
	tls        bool
	// clientID and serverID are SPIFFE IDs from verified handshakes; their
	// cardinality is that of the mesh's ServiceAccounts.
	clientID, serverID string
}

// key returns the series key for a peer, applying the caps. It must be
// called with r.mu held (read or write); capped reports whether a new value
// would have to be admitted (write lock needed).
func (r *Registry) key(dir record.Direction, p *record.Peer, admit bool) (k seriesKey, ok bool) {
	k = seriesKey{dir: dir & 1, authority: p.Authority, targetAddr: p.TargetAddr, tls: p.TLS, clientID: p.ClientID, serverID: p.ServerID}
	if !r.admit(r.authorities[k.dir], &k.authority, r.maxAuthorities, admit) {
		return k, false
	}
	if !r.admit(r.targets[k.dir], &k.targetAddr, r.maxTargets, admit) {
		return k, false
	}
	return k, true
}

func (r *Registry) admit(set map[string]struct{}, v *string, limit int, admit bool) bool {
	if _, ok := set[*v]; ok {
		return true
	}
	if len(set) >= limit {
		*v = Overflow
		return true
	}
	if !admit {
		return false
	}
	s := string(append([]byte(nil), *v...)) // own a copy: producers reuse buffers
	set[s] = struct{}{}
	*v = s
	return true
}

// ObserveDetect counts one detection outcome.
func (r *Registry) ObserveDetect(dir record.Direction, p detect.Protocol, res DetectResult) {
	r.detect[dir&1][p&3][res%numDetectResults].Add(1)
}

// ObserveError counts one proxy error.
func (r *Registry) ObserveError(dir record.Direction, k proxyerr.Kind) {
	if int(k) >= numKinds {
		k = proxyerr.Unknown
	}
	r.errors[dir&1][k].Add(1)
}
