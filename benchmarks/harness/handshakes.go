package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/weftmesh/weft/internal/testnet"
	"github.com/weftmesh/weft/proxy/iptables"
)

// TLSHandshakes is one proxy's weft_tls_handshakes_total, or a difference of two readings.
type TLSHandshakes struct {
	OutboundFull    float64 `json:"outbound_full"`
	OutboundResumed float64 `json:"outbound_resumed"`
	InboundFull     float64 `json:"inbound_full"`
	InboundResumed  float64 `json:"inbound_resumed"`
}

// Sub is h minus earlier, counter by counter.
func (h TLSHandshakes) Sub(earlier TLSHandshakes) TLSHandshakes {
	return TLSHandshakes{
		OutboundFull:    h.OutboundFull - earlier.OutboundFull,
		OutboundResumed: h.OutboundResumed - earlier.OutboundResumed,
		InboundFull:     h.InboundFull - earlier.InboundFull,
		InboundResumed:  h.InboundResumed - earlier.InboundResumed,
	}
}

// Outbound is every outbound handshake, full or resumed.
func (h TLSHandshakes) Outbound() float64 { return h.OutboundFull + h.OutboundResumed }

// Inbound is every inbound handshake, full or resumed.
func (h TLSHandshakes) Inbound() float64 { return h.InboundFull + h.InboundResumed }

// HandshakeResult is a mesh peer's handshake count around one load: every connection between
// the two proxies is one outbound handshake on the client side and one inbound handshake on the
// server side.
type HandshakeResult struct {
	// Client and Server are each proxy's handshakes during the measured window: from the moment
	// the load generator released its first measured request until it finished.
	Client TLSHandshakes `json:"client"`
	Server TLSHandshakes `json:"server"`
	// Warmup is the client side's handshakes from before the load started until the measured
	// window (the pool being built).
	Warmup TLSHandshakes `json:"warmup"`
	// Requests is the number of requests the measured window scheduled.
	Requests int `json:"requests"`
}

// NewHandshakeResult computes the result from three readings of both proxies: before the load
// (c0), at the start of the measured window (c1, s1) and after it (c2, s2).
func NewHandshakeResult(c0, c1, s1, c2, s2 TLSHandshakes, requests int) HandshakeResult {
	return HandshakeResult{Client: c2.Sub(c1), Server: s2.Sub(s1), Warmup: c1.Sub(c0), Requests: requests}
}

// PerThousand is the steady-state handshakes per 1 000 requests: new proxy-to-proxy connections
// (the client side's outbound handshakes, each counted once) in the measured window.
func (h HandshakeResult) PerThousand() float64 {
	if h.Requests == 0 {
		return 0
	}
	return h.Client.Outbound() * 1000 / float64(h.Requests)
}

// ParseHandshakes reads weft_tls_handshakes_total from a Prometheus text exposition. A missing
// family is an error: the proxy does not have identity on.
func ParseHandshakes(r io.Reader) (TLSHandshakes, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return TLSHandshakes{}, fmt.Errorf("parse metrics: %w", err)
	}
	fam, ok := fams["weft_tls_handshakes_total"]
	if !ok {
		return TLSHandshakes{}, fmt.Errorf("no weft_tls_handshakes_total in the proxy's metrics")
	}
	var h TLSHandshakes
	for _, m := range fam.GetMetric() {
		var dir, resumed string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "direction":
				dir = l.GetValue()
			case "resumed":
				resumed = l.GetValue()
			}
		}
		v := m.GetCounter().GetValue()
		if m.GetCounter() == nil {
			v = m.GetUntyped().GetValue()
		}
		switch dir + "/" + resumed {
		case "outbound/false":
			h.OutboundFull += v
		case "outbound/true":
			h.OutboundResumed += v
		case "inbound/false":
			h.InboundFull += v
		case "inbound/true":
			h.InboundResumed += v
		default:
			return TLSHandshakes{}, fmt.Errorf("weft_tls_handshakes_total with unexpected labels direction=%q resumed=%q", dir, resumed)
		}
	}
	return h, nil
}

// adminGet fetches path from the weft proxy's admin port inside h.
func adminGet(ctx context.Context, h *testnet.Host, path string) (*http.Response, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", iptables.AdminPort, path), nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

// scrapeHandshakes reads weft_tls_handshakes_total of the weft proxy inside h.
func scrapeHandshakes(ctx context.Context, h *testnet.Host) (TLSHandshakes, error) {
	resp, err := adminGet(ctx, h, "/metrics")
	if err != nil {
		return TLSHandshakes{}, fmt.Errorf("scrape %s: %w", h.Name(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return TLSHandshakes{}, fmt.Errorf("scrape %s: status %d", h.Name(), resp.StatusCode)
	}
	hs, err := ParseHandshakes(resp.Body)
	if err != nil {
		return TLSHandshakes{}, fmt.Errorf("scrape %s: %w", h.Name(), err)
	}
	return hs, nil
}

// waitProxyReady polls the weft proxy's /ready inside h (with identity on it answers 503 until
// the first certificate).
func waitProxyReady(ctx context.Context, h *testnet.Host) error {
	c := &http.Client{Transport: &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true}, Timeout: 2 * time.Second}
	return waitHTTP200(ctx, c, fmt.Sprintf("http://127.0.0.1:%d/ready", iptables.AdminPort))
}

// handshakeReadings collects the three readings of a mesh point: the client proxy before the
// load, both proxies when the measured window starts, both after the load.
type handshakeReadings struct {
	c0     TLSHandshakes
	once   sync.Once
	done   chan struct{} // closed when the window reading is complete (or will never happen)
	c1, s1 TLSHandshakes
	err    error
}

func readHandshakesBefore(ctx context.Context, client *testnet.Host) (*handshakeReadings, error) {
	c0, err := scrapeHandshakes(ctx, client)
	if err != nil {
		return nil, err
	}
	return &handshakeReadings{c0: c0, done: make(chan struct{})}, nil
}

// atWindow reads both proxies in the background (it is called from the load generator's stderr
// and must not block it).
func (r *handshakeReadings) atWindow(ctx context.Context, client, server *testnet.Host) {
	r.once.Do(func() {
		go func() {
			defer close(r.done)
			if r.c1, r.err = scrapeHandshakes(ctx, client); r.err == nil {
				r.s1, r.err = scrapeHandshakes(ctx, server)
			}
		}()
	})
}

// after reads both proxies again and computes the result for requests measured requests.
func (r *handshakeReadings) after(ctx context.Context, client, server *testnet.Host, requests int) (HandshakeResult, error) {
	r.once.Do(func() {
		r.err = fmt.Errorf("the load generator never announced its measured window (%q)", MeasureMarker)
		close(r.done)
	})
	<-r.done
	if r.err != nil {
		return HandshakeResult{}, r.err
	}
	c2, err := scrapeHandshakes(ctx, client)
	if err != nil {
		return HandshakeResult{}, err
	}
	s2, err := scrapeHandshakes(ctx, server)
	if err != nil {
		return HandshakeResult{}, err
	}
	return NewHandshakeResult(r.c0, r.c1, r.s1, c2, s2, requests), nil
}

// markerWriter passes a child's stderr through to out and calls fn (once) when a line equal to
// marker appears. fn must not block.
type markerWriter struct {
	out    io.Writer
	marker string
	fn     func()
	line   []byte
	seen   bool
}

func (w *markerWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		switch {
		case b == '\n':
			if !w.seen && string(w.line) == w.marker {
				w.seen = true
				w.fn()
			}
			w.line = w.line[:0]
		case len(w.line) <= len(w.marker):
			w.line = append(w.line, b)
		}
	}
	_, _ = w.out.Write(p)
	return len(p), nil
}
