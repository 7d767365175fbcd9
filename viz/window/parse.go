package window

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

// metric is what a sample line of the proxy's exposition feeds.
type metric uint8

const (
	mNone metric = iota
	mResponse
	mLatencyBucket
	mLatencyCount
	mRouteResponse
	mRouteActual
	mRouteBucket
	mRouteCount
	mTCPOpened
	mTCPOpen
	mTCPRead
	mTCPWritten
)

var metricNames = map[string]metric{
	"response_total":                   mResponse,
	"response_latency_ms_bucket":       mLatencyBucket,
	"response_latency_ms_count":        mLatencyCount,
	"route_response_total":             mRouteResponse,
	"route_actual_response_total":      mRouteActual,
	"route_response_latency_ms_bucket": mRouteBucket,
	"route_response_latency_ms_count":  mRouteCount,
	"tcp_open_total":                   mTCPOpened,
	"tcp_open_connections":             mTCPOpen,
	"tcp_read_bytes_total":             mTCPRead,
	"tcp_write_bytes_total":            mTCPWritten,
}

func (m metric) family() Family {
	switch {
	case m >= mTCPOpened:
		return TCP
	case m >= mRouteResponse:
		return Route
	}
	return HTTP
}

// keyLabel numbers the labels that are part of a Key.
type keyLabel uint8

const (
	lDirection keyLabel = iota
	lAuthority
	lTLS
	lClientID
	lServerID
	lDstNamespace
	lDstService
	lRoute
	lDstPod
	lDstDeployment
	lDstStatefulSet
	lDstDaemonSet
	lDstJob
	lDstReplicaSet
	numKeyLabels
)

var keyLabels = map[string]keyLabel{
	"direction": lDirection, "authority": lAuthority, "dst": lAuthority, "tls": lTLS,
	"client_id": lClientID, "server_id": lServerID, "dst_namespace": lDstNamespace,
	"dst_service": lDstService, "rt_route": lRoute, "dst_pod": lDstPod,
	"dst_deployment": lDstDeployment, "dst_statefulset": lDstStatefulSet, "dst_daemonset": lDstDaemonSet,
	"dst_job": lDstJob, "dst_replicaset": lDstReplicaSet,
}

// dstKinds are the dst_* workload labels in precedence order (a workload
// over a ReplicaSet over a pod).
var dstKinds = [...]struct {
	l    keyLabel
	kind string
}{
	{lDstDeployment, "Deployment"}, {lDstStatefulSet, "StatefulSet"}, {lDstDaemonSet, "DaemonSet"},
	{lDstJob, "Job"}, {lDstReplicaSet, "ReplicaSet"}, {lDstPod, "Pod"},
}

// sample is one parsed line. Its byte slices alias the line or the
// parser's scratch space and are valid until the next line.
type sample struct {
	metric  metric
	value   float64
	success bool    // classification="success"
	le      float64 // bucket bound (+Inf when absent)
	// sig identifies the Key: the family and the key labels' values.
	sig []byte
	// series identifies the exposition series but for le (a histogram's
	// buckets share it).
	series []byte
	labels [numKeyLabels][]byte
}

// parser reads the Prometheus text format line by line, without building
// metric families: lines of other metrics are skipped after their name.
type parser struct {
	s       sample
	scratch []byte
}

// line parses one line into p.s; ok is false for comments, blank lines
// and metrics the window does not keep.
func (p *parser) line(line []byte) (ok bool, err error) {
	if len(line) == 0 || line[0] == '#' {
		return false, nil
	}
	end := bytes.IndexAny(line, "{ ")
	if end < 0 {
		return false, fmt.Errorf("sample %q has no value", line)
	}
	m := metricNames[string(line[:end])]
	if m == mNone {
		return false, nil
	}
	s := &p.s
	*s = sample{metric: m, sig: append(s.sig[:0], byte(m.family())), series: append(s.series[:0], byte(m.family())), le: math.Inf(1)}
	p.scratch = p.scratch[:0]
	rest := line[end:]
	if rest[0] == '{' {
		if rest, err = p.labels(rest[1:]); err != nil {
			return false, err
		}
	}
	rest = bytes.TrimLeft(rest, " ")
	if i := bytes.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i] // a timestamp follows
	}
	if s.value, err = parseValue(rest); err != nil {
		return false, fmt.Errorf("sample %q: %w", line, err)
	}
	return true, nil
}

// labels parses `name="value",…}` and returns what follows the brace.
func (p *parser) labels(b []byte) ([]byte, error) {
	s := &p.s
	for {
		b = bytes.TrimLeft(b, " ,")
		if len(b) == 0 {
			return nil, fmt.Errorf("unterminated label set")
		}
		if b[0] == '}' {
			return b[1:], nil
		}
		eq := bytes.IndexByte(b, '=')
		if eq < 0 || eq+1 >= len(b) || b[eq+1] != '"' {
			return nil, fmt.Errorf("malformed label near %q", b)
		}
		name := b[:eq]
		val, n, err := p.quoted(b[eq+2:])
		if err != nil {
			return nil, err
		}
		b = b[eq+2+n:]
		switch string(name) {
		case "le":
			if s.le, err = parseValue(val); err != nil {
				return nil, fmt.Errorf("le %q: %w", val, err)
			}
			continue
		case "classification":
			s.success = string(val) == "success"
		}
		s.series = append(append(append(append(s.series, name...), '='), val...), 0)
		if l, ok := keyLabels[string(name)]; ok {
			s.labels[l] = val
			s.sig = append(append(append(s.sig, byte(l)), val...), 0)
		}
	}
}

// quoted reads a label value up to its closing quote, unescaping into
// scratch only when it holds escapes; n is the bytes consumed.
func (p *parser) quoted(b []byte) (val []byte, n int, err error) {
	i := bytes.IndexByte(b, '"')
	if i < 0 {
		return nil, 0, fmt.Errorf("unterminated label value")
	}
	if bytes.IndexByte(b[:i], '\\') < 0 {
		return b[:i], i + 1, nil
	}
	start := len(p.scratch)
	for j := 0; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return p.scratch[start:], j + 1, nil
		case c == '\\' && j+1 < len(b):
			j++
			switch b[j] {
			case 'n':
				p.scratch = append(p.scratch, '\n')
			default:
				p.scratch = append(p.scratch, b[j])
			}
		default:
			p.scratch = append(p.scratch, c)
		}
	}
	return nil, 0, fmt.Errorf("unterminated label value")
}

// parseValue reads a sample value: plain integers without allocating,
// anything else (floats, exponents, +Inf, NaN) with strconv.
func parseValue(b []byte) (float64, error) {
	if len(b) > 0 && len(b) < 16 {
		v := 0.0
		digits := true
		for _, c := range b {
			if c < '0' || c > '9' {
				digits = false
				break
			}
			v = v*10 + float64(c-'0')
		}
		if digits {
			return v, nil
		}
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return 0, fmt.Errorf("value %q is not a number", b)
	}
	return v, nil
}
