package metrics

import (
	"bufio"
	"io"
	"slices"
	"strconv"

	"github.com/weftmesh/weft/proxy/detect"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
)

// ContentType is the exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteTo renders every metric in the Prometheus text format, families in a
// fixed order and series sorted by labels.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	b := bufio.NewWriterSize(cw, 32<<10)
	r.mu.RLock()
	https := make([]*httpSeries, 0, len(r.http))
	for _, s := range r.http {
		https = append(https, s)
	}
	tcps := make([]*TCPSeries, 0, len(r.tcp))
	for _, s := range r.tcp {
		tcps = append(tcps, s)
	}
	routes := make([]*routeSeries, 0, len(r.routes))
	for _, s := range r.routes {
		routes = append(routes, s)
	}
	collectors := slices.Clone(r.collectors)
	r.mu.RUnlock()
	slices.SortFunc(routes, func(a, b *routeSeries) int { return cmpString(a.labels, b.labels) })
	slices.SortFunc(https, func(a, b *httpSeries) int { return cmpString(a.labels, b.labels) })
	slices.SortFunc(tcps, func(a, b *TCPSeries) int { return cmpString(a.labels, b.labels) })

	var resps []*respSeries
	for _, s := range https {
		s.mu.RLock()
		for _, rs := range s.responses {
			resps = append(resps, rs)
		}
		s.mu.RUnlock()
	}
	slices.SortFunc(resps, func(a, b *respSeries) int { return cmpString(a.labels, b.labels) })

	header(b, "request_total", "counter", "Total count of HTTP requests.")
	for _, s := range https {
		sample(b, "request_total", s.labels, s.requests.Load())
	}
	header(b, "response_total", "counter", "Total count of HTTP responses.")
	for _, rs := range resps {
		sample(b, "response_total", rs.labels, rs.count.Load())
	}
	header(b, "response_latency_ms", "histogram", "Elapsed times between a request's headers being received and its response headers being sent, in milliseconds.")
	writeHistograms(b, "response_latency_ms", resps)
	r.writeRoutes(b, routes)

	header(b, "tcp_open_total", "counter", "Total count of opened connections.")
	for _, s := range tcps {
		sample(b, "tcp_open_total", s.labels, s.opened.Load())
	}
	header(b, "tcp_open_connections", "gauge", "Number of currently open connections.")
	for _, s := range tcps {
		closed := s.closedOK.Load() + s.closedError.Load()
		sample(b, "tcp_open_connections", s.labels, s.opened.Load()-min(closed, s.opened.Load()))
	}
	header(b, "tcp_read_bytes_total", "counter", "Total count of bytes read from peers.")
	for _, s := range tcps {
		sample(b, "tcp_read_bytes_total", s.labels, s.read.Load())
	}
	header(b, "tcp_write_bytes_total", "counter", "Total count of bytes written to peers.")
	for _, s := range tcps {
		sample(b, "tcp_write_bytes_total", s.labels, s.written.Load())
	}
	header(b, "tcp_close_total", "counter", "Total count of closed connections.")
	for _, s := range tcps {
		sample(b, "tcp_close_total", s.labels+`,classification="success"`, s.closedOK.Load())
		sample(b, "tcp_close_total", s.labels+`,classification="failure"`, s.closedError.Load())
	}

	header(b, "weft_detect_total", "counter", "Total count of protocol detections by outcome.")
	for d := range numDirections {
		for p := range numDetectProtocols {
			for res := range numDetectResults {
				n := r.detect[d][p][res].Load()
				if n == 0 {
					continue
				}
				l := `direction="` + record.Direction(d).String() + `",protocol="` + detect.Protocol(p).String() +
					`",result="` + detectResultNames[res] + `"`
				sample(b, "weft_detect_total", l, n)
			}
		}
	}
	header(b, "weft_proxy_errors_total", "counter", "Total count of errors the proxy answered or counted, by kind.")
	for d := range numDirections {
		for k := range numKinds {
			n := r.errors[d][k].Load()
			if n == 0 {
				continue
			}
			l := `direction="` + record.Direction(d).String() + `",kind="` + proxyerr.Kind(k).String() + `"`
			sample(b, "weft_proxy_errors_total", l, n)
		}
	}
	header(b, "weft_proxy_connect_retries_total", "counter",
		"Total count of requests sent to another endpoint because the connection failed before any byte was written.")
	for d := range numDirections {
		sample(b, "weft_proxy_connect_retries_total", `direction="`+record.Direction(d).String()+`"`, r.connectRetries[d].Load())
	}
	for _, c := range collectors {
		for _, f := range c() {
			header(b, f.Name, f.Type, f.Help)
			for _, smp := range f.Samples {
				b.WriteString(f.Name)
				if smp.Labels != "" {
					b.WriteString("{" + smp.Labels + "}")
				}
				b.WriteString(" " + strconv.FormatFloat(smp.Value, 'f', -1, 64) + "\n")
			}
		}
	}
	err := b.Flush()
	return cw.n, err
}

// writeHistograms renders the latency histograms of rss under name.
func writeHistograms(b *bufio.Writer, name string, rss []*respSeries) {
	for _, rs := range rss {
		var cum uint64
		for i := range rs.buckets {
			cum += rs.buckets[i].Load()
			le := "+Inf"
			if i < latencyBucketsCount {
				le = strconv.FormatUint(LatencyBucketsMs[i], 10)
			}
			b.WriteString(name + "_bucket{")
			b.WriteString(rs.labels)
			b.WriteString(`,le="`)
			b.WriteString(le)
			b.WriteString("\"} ")
			b.WriteString(strconv.FormatUint(cum, 10))
			b.WriteByte('\n')
		}
		b.WriteString(name + "_sum{" + rs.labels + "} ")
		b.WriteString(strconv.FormatFloat(float64(rs.sumUs.Load())/1000, 'f', -1, 64))
		b.WriteByte('\n')
		sample(b, name+"_count", rs.labels, cum)
	}
}

// writeRoutes renders the rt_route families.
func (r *Registry) writeRoutes(b *bufio.Writer, routes []*routeSeries) {
	if len(routes) == 0 {
		return
	}
	var resps, actuals []*respSeries
	for _, s := range routes {
		s.mu.RLock()
		for _, rs := range s.resps {
			resps = append(resps, rs)
		}
		for _, rs := range s.actuals {
			actuals = append(actuals, rs)
		}
		s.mu.RUnlock()
	}
	slices.SortFunc(resps, func(a, b *respSeries) int { return cmpString(a.labels, b.labels) })
	slices.SortFunc(actuals, func(a, b *respSeries) int { return cmpString(a.labels, b.labels) })
	header(b, "route_request_total", "counter", "Total count of HTTP requests to a profile route.")
	for _, s := range routes {
		sample(b, "route_request_total", s.labels, s.requests.Load())
	}
	header(b, "route_response_total", "counter", "Total count of HTTP responses to requests to a profile route, classified by the route's response classes.")
	for _, rs := range resps {
		sample(b, "route_response_total", rs.labels, rs.count.Load())
	}
	header(b, "route_response_latency_ms", "histogram", "Elapsed times between a route request's headers being received and its response headers being sent, in milliseconds.")
	writeHistograms(b, "route_response_latency_ms", resps)
	header(b, "route_actual_request_total", "counter", "Total count of attempts (first tries and retries) sent for profile route requests.")
	for _, s := range routes {
		sample(b, "route_actual_request_total", s.labels, s.actual.Load())
	}
	header(b, "route_actual_response_total", "counter", "Total count of attempt outcomes for profile route requests.")
	for _, rs := range actuals {
		sample(b, "route_actual_response_total", rs.labels, rs.count.Load())
	}
}

func header(b *bufio.Writer, name, typ, help string) {
	b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

func sample(b *bufio.Writer, name, labels string, v uint64) {
	b.WriteString(name)
	if labels != "" {
		b.WriteByte('{')
		b.WriteString(labels)
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(v, 10))
	b.WriteByte('\n')
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
