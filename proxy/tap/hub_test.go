package tap

import (
	"testing"
	"time"
	"unsafe"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/record"
)

// headers is a HeaderView over name/value pairs.
type headers [][2]string

func (h headers) Range(f func(name, value string) bool) {
	for _, kv := range h {
		if !f(kv[0], kv[1]) {
			return
		}
	}
}

// begin is Hub.Begin with the request spelled out.
func begin(h *Hub, dir record.Direction, method, scheme, authority, path string, hdr HeaderView, peer *record.Peer) pipeline.TapExchange {
	rec := &record.HTTP{Direction: dir, Method: method, Path: path, GRPCStatus: -1}
	if peer != nil {
		rec.Peer = *peer
	}
	return h.Begin(&pipeline.TapRequest{Rec: rec, Scheme: scheme, Authority: authority,
		Source: "198.18.0.9:40000", Headers: hdr})
}

var webPeer = &record.Peer{
	Authority: "web.demo.svc.cluster.local:80", TargetAddr: "198.18.0.7:8080", TLS: true,
	ClientID: "spiffe://cluster.local/ns/demo/sa/client", ServerID: "spiffe://cluster.local/ns/demo/sa/web",
	Labels: []record.Label{{Name: "dst_deployment", Value: "web"}, {Name: "dst_namespace", Value: "demo"}},
}

func TestFilterMatches(t *testing.T) {
	req := requestInfo{dir: record.Outbound, method: "GET", authority: "web.demo.svc.cluster.local:80", path: "/api/books/1",
		source: "198.18.0.9:40000", peer: webPeer}
	for _, tc := range []struct {
		name   string
		filter *tapv1.Filter
		want   bool
	}{
		{"nil matches all", nil, true},
		{"empty matches all", &tapv1.Filter{}, true},
		{"direction", &tapv1.Filter{Direction: "outbound"}, true},
		{"other direction", &tapv1.Filter{Direction: "inbound"}, false},
		{"method", &tapv1.Filter{Method: "GET"}, true},
		{"other method", &tapv1.Filter{Method: "POST"}, false},
		{"authority case-insensitive", &tapv1.Filter{Authority: "WEB.demo.svc.cluster.local:80"}, true},
		{"other authority", &tapv1.Filter{Authority: "books:80"}, false},
		{"path prefix", &tapv1.Filter{PathPrefix: "/api/"}, true},
		{"path prefix longer than path", &tapv1.Filter{PathPrefix: "/api/books/1/x"}, false},
		{"client id", &tapv1.Filter{ClientId: webPeer.ClientID}, true},
		{"other client id", &tapv1.Filter{ClientId: "spiffe://cluster.local/ns/demo/sa/x"}, false},
		{"server id", &tapv1.Filter{ServerId: webPeer.ServerID}, true},
		{"destination labels", &tapv1.Filter{DestinationLabels: map[string]string{"deployment": "web", "namespace": "demo"}}, true},
		{"one label differs", &tapv1.Filter{DestinationLabels: map[string]string{"deployment": "web", "namespace": "prod"}}, false},
		{"source ip", &tapv1.Filter{SourceIps: []string{"198.18.0.5", "198.18.0.9"}}, true},
		{"other source ip", &tapv1.Filter{SourceIps: []string{"198.18.0.5"}}, false},
		{"source ip, IPv4-mapped", &tapv1.Filter{SourceIps: []string{"::ffff:198.18.0.9"}}, true},
		{"all fields", &tapv1.Filter{Direction: "outbound", Method: "GET", PathPrefix: "/api", ServerId: webPeer.ServerID}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := compileFilter(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.matches(&req); got != tc.want {
				t.Fatalf("matches = %v, want %v", got, tc.want)
			}
		})
	}
	// A request that failed routing has an empty peer: identity and label
	// filters never match it, the others still do.
	for _, tc := range []struct {
		name   string
		peer   *record.Peer
		filter *tapv1.Filter
		want   bool
	}{
		{"no peer, client id", nil, &tapv1.Filter{ClientId: "x"}, false},
		{"empty peer, client id", &record.Peer{}, &tapv1.Filter{ClientId: "x"}, false},
		{"empty peer, server id", &record.Peer{}, &tapv1.Filter{ServerId: webPeer.ServerID}, false},
		{"empty peer, labels", &record.Peer{}, &tapv1.Filter{DestinationLabels: map[string]string{"deployment": "web"}}, false},
		{"empty peer, path", &record.Peer{}, &tapv1.Filter{PathPrefix: "/api"}, true},
		{"empty peer, source ip", &record.Peer{}, &tapv1.Filter{SourceIps: []string{"198.18.0.9"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req
			r.peer = tc.peer
			f, err := compileFilter(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.matches(&r); got != tc.want {
				t.Fatalf("matches = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFilterRejectsBadInput(t *testing.T) {
	for _, f := range []*tapv1.Filter{{Direction: "sideways"}, {PathPrefix: "api"}, {SourceIps: []string{"web-1"}}} {
		if _, err := compileFilter(f); err == nil {
			t.Errorf("compileFilter(%v) = nil error", f)
		}
	}
}

func TestRedaction(t *testing.T) {
	r := newRedactor([]string{"X-Api-Key", " "})
	got := r.headers(headers{
		{"authorization", "Bearer s3cret"}, {"Proxy-Authorization", "Basic x"}, {"Cookie", "a=b"},
		{"set-cookie", "c=d"}, {"x-api-key", "k"}, {"Accept", "text/plain"},
	})
	want := []string{Redacted, Redacted, Redacted, Redacted, Redacted, "text/plain"}
	if len(got) != len(want) {
		t.Fatalf("%d headers, want %d", len(got), len(want))
	}
	for i, h := range got {
		if h.Value != want[i] {
			t.Errorf("%s = %q, want %q", h.Name, h.Value, want[i])
		}
	}
}

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestRateLimitPerTap(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	h := NewHub(Config{Now: clk.now, Buffer: 1000})
	tp, err := h.Open(&tapv1.ObserveRequest{MaxRps: 30}) // 10 exchanges per second
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	admitted := func(n int) int {
		c := 0
		for range n {
			if x := begin(h, record.Inbound, "GET", "http", "a", "/", nil, webPeer); x != nil {
				c++
				x.Response(200, nil, time.Millisecond)
				x.End(&pipeline.TapEnd{GRPCStatus: -1, Bytes: 10, Duration: 2 * time.Millisecond, Reset: false})
			}
		}
		return c
	}
	if got := admitted(50); got != 10 {
		t.Fatalf("first second admitted %d exchanges, want 10 (30 events/s)", got)
	}
	clk.t = clk.t.Add(500 * time.Millisecond)
	if got := admitted(50); got != 5 {
		t.Fatalf("after 500ms admitted %d, want 5", got)
	}
	if got := len(tp.Events()); got != 45 {
		t.Fatalf("%d events queued, want 45 (15 exchanges × 3)", got)
	}
	if lost, limited := tp.TakeLost(), h.Stats().Limited; lost != 85*3 || limited != 85 {
		t.Fatalf("lost %d limited %d, want %d and 85", lost, limited, 85*3)
	}
}

func TestLimitConcurrencyAndDrops(t *testing.T) {
	h := NewHub(Config{MaxTaps: 2, Buffer: 4})
	if h.Active() {
		t.Fatal("active before any tap")
	}
	a, err := h.Open(&tapv1.ObserveRequest{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Open(&tapv1.ObserveRequest{Filter: &tapv1.Filter{Method: "POST"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Open(&tapv1.ObserveRequest{}); err != ErrTooManyTaps {
		t.Fatalf("third tap: err = %v, want ErrTooManyTaps", err)
	}
	for i := range 3 {
		x := begin(h, record.Outbound, "GET", "http", "a", "/", nil, webPeer)
		if (x == nil) != (i == 2) {
			t.Fatalf("exchange %d: tapped = %v", i, x != nil)
		}
		if x == nil {
			continue
		}
		x.Response(200, nil, 0)
		x.End(&pipeline.TapEnd{GRPCStatus: -1, Bytes: 0, Duration: 0, Reset: false})
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("tap with limit 2 not done after 2 exchanges")
	}
	// 2 exchanges × 3 events into a queue of 4: 2 dropped and counted.
	if got, lost, dropped := len(a.Events()), a.TakeLost(), h.Stats().Dropped; got != 4 || lost != 2 || dropped != 2 {
		t.Fatalf("queued %d lost %d dropped %d, want 4, 2, 2", got, lost, dropped)
	}
	if len(b.Events()) != 0 {
		t.Fatal("POST-only tap got GET events")
	}
	a.Close()
	a.Close()
	b.Close()
	if h.Active() {
		t.Fatal("active after every tap closed")
	}
}

// TestEventsOwnTheirStrings: an adapter's strings may alias its buffers
// (HTTP/1 hands in views of fasthttp's); an event keeps copies, so reusing
// the buffer after Begin and Response changes nothing already queued.
func TestEventsOwnTheirStrings(t *testing.T) {
	h := NewHub(Config{})
	tp, err := h.Open(&tapv1.ObserveRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	buf := []byte("GET/booksAcceptapplication/jsonweb:80")
	view := func(i, j int) string { return unsafe.String(&buf[i], j-i) }
	x := begin(h, record.Outbound, view(0, 3), "http", view(31, 37), view(3, 9), headers{{view(9, 15), view(15, 31)}}, webPeer)
	x.Response(200, headers{{view(9, 15), view(15, 31)}}, time.Millisecond)
	for i := range buf {
		buf[i] = 'X'
	}
	req, rsp := (<-tp.Events()).GetRequest(), (<-tp.Events()).GetResponse()
	if req.GetMethod() != "GET" || req.GetPath() != "/books" || req.GetAuthority() != "web:80" ||
		req.GetHeaders()[0].GetName() != "Accept" || req.GetHeaders()[0].GetValue() != "application/json" ||
		rsp.GetHeaders()[0].GetValue() != "application/json" {
		t.Fatalf("events changed with the adapter's buffer: %v / %v", req, rsp)
	}
}
