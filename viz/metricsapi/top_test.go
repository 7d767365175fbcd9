package metricsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/viz/tap"
	"github.com/weftmesh/weft/viz/web/chromium"
)

// served is one request books' proxy served (inbound, from traffic).
type served struct {
	id        uint64
	method    string
	path      string
	status    int32
	latencyUs int64
}

// events are the request, response and end events of x.
func (x served) events() []tap.Event {
	ev := func(kind any) tap.Event {
		e := &tapv1.Event{Id: x.id, Direction: "inbound", ClientId: "spiffe://weft.local/ns/demo/sa/traffic",
			ServerId: "spiffe://weft.local/ns/demo/sa/books", SourceAddr: "198.18.0.7:40000", TargetAddr: "198.18.0.9:7000"}
		switch k := kind.(type) {
		case *tapv1.RequestInit:
			e.Kind = &tapv1.Event_Request{Request: k}
		case *tapv1.ResponseInit:
			e.Kind = &tapv1.Event_Response{Response: k}
		case *tapv1.ResponseEnd:
			e.Kind = &tapv1.Event_End{End: k}
		}
		return tap.Event{Namespace: "demo", Pod: "books-1", Workload: "deploy/books", SourceNamespace: "demo", SourceWorkload: "deploy/traffic", Event: e}
	}
	return []tap.Event{
		ev(&tapv1.RequestInit{Method: x.method, Path: x.path, Authority: "books.demo.svc.cluster.local:7000"}),
		ev(&tapv1.ResponseInit{Status: x.status, LatencyUs: x.latencyUs}),
		ev(&tapv1.ResponseEnd{GrpcStatus: -1, DurationUs: x.latencyUs + 5}),
	}
}

// booksTraffic is what traffic sends books in the demo: GET /fail fails
// every other request.
var booksTraffic = []served{
	{1, "GET", "/fail", 500, 900}, {2, "GET", "/fail", 200, 1200}, {3, "GET", "/books", 200, 2500},
	{4, "GET", "/fail", 500, 800}, {5, "GET", "/fail", 200, 1500}, {6, "GET", "/books", 200, 3100},
	{7, "GET", xssName, 200, 400},
}

// fakeTapper records its calls and plays events; block makes it wait for
// ctx's end (or release) after the events, as a tap of quiet pods does.
type fakeTapper struct {
	events  []tap.Event
	err     error
	block   bool
	release chan struct{}
	entered chan struct{}

	mu    sync.Mutex
	calls []fakeCall
}

type fakeCall struct {
	target   tap.Target
	limit    int
	reqLimit uint32
	deadline time.Duration
}

func (f *fakeTapper) Tap(ctx context.Context, t tap.Target, req *tapv1.ObserveRequest, limit int, emit func(tap.Event) error) error {
	dl, _ := ctx.Deadline()
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{t, limit, req.GetLimit(), time.Until(dl)})
	f.mu.Unlock()
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.err != nil {
		return f.err
	}
	for _, ev := range f.events {
		if err := emit(ev); err != nil {
			return err
		}
	}
	if f.block {
		select {
		case <-ctx.Done():
		case <-f.release:
		}
	}
	return nil
}

func (f *fakeTapper) lastCall() fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return fakeCall{}
	}
	return f.calls[len(f.calls)-1]
}

func topServer(t *testing.T, tp Tapper, concurrency int) *httptest.Server {
	t.Helper()
	cfg := Config{Client: fake.NewClientset(), TopConcurrency: concurrency}
	if tp != nil {
		cfg.Tap = tp
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func allEvents() []tap.Event {
	var out []tap.Event
	for _, x := range booksTraffic {
		out = append(out, x.events()...)
	}
	return out
}

func get(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestTopStatus(t *testing.T) {
	t.Parallel()
	notReady := fmt.Errorf("tap is not ready: obtaining the component's certificate from the identity service")
	notFound := fmt.Errorf("%w: deployments/books in namespace demo has no running meshed pods to tap", tap.ErrNotFound)
	for _, tc := range []struct {
		name   string
		tapper Tapper
		method string
		query  string
		status int
		reason string
		body   string
	}{
		{"no resource", &fakeTapper{}, "GET", "", 400, ReasonBadRequest, "missing resource"},
		{"resource without name", &fakeTapper{}, "GET", "resource=deploy&namespace=demo", 400, ReasonBadRequest, "resource: resource \"deploy\""},
		{"unknown type", &fakeTapper{}, "GET", "resource=cm/x&namespace=demo", 400, ReasonBadRequest, "resource:"},
		{"no namespace", &fakeTapper{}, "GET", "resource=deploy/books", 400, ReasonBadRequest, "missing namespace"},
		{"duration above cap", &fakeTapper{}, "GET", "resource=deploy/books&namespace=demo&duration=11s", 400, ReasonBadRequest, `duration "11s": want a duration in (0, 10s]`},
		{"duration zero", &fakeTapper{}, "GET", "resource=deploy/books&namespace=demo&duration=0s", 400, ReasonBadRequest, "duration"},
		{"duration not one", &fakeTapper{}, "GET", "resource=deploy/books&namespace=demo&duration=soon", 400, ReasonBadRequest, "duration"},
		{"max above cap", &fakeTapper{}, "GET", "resource=deploy/books&namespace=demo&max=1001", 400, ReasonBadRequest, `max "1001": want a number of requests from 1 to 1000`},
		{"max zero", &fakeTapper{}, "GET", "resource=deploy/books&namespace=demo&max=0", 400, ReasonBadRequest, "max"},
		{"max not a number", &fakeTapper{}, "GET", "resource=deploy/books&namespace=demo&max=lots", 400, ReasonBadRequest, "max"},
		{"tap disabled", nil, "GET", "resource=deploy/books&namespace=demo", 503, ReasonTapDisabled, "tap is not enabled"},
		{"tap not ready", &fakeTapper{err: notReady}, "GET", "resource=deploy/books&namespace=demo", 503, ReasonTapNotReady, "tap is not ready: obtaining"},
		{"no meshed pods", &fakeTapper{err: notFound}, "GET", "resource=deploy/books&namespace=demo", 404, ReasonNotFound, "no running meshed pods"},
		{"post", &fakeTapper{}, "POST", "resource=deploy/books&namespace=demo", 405, "", ""},
		{"ok", &fakeTapper{events: allEvents()}, "GET", "resource=deploy/books&namespace=demo", 200, "", `"rows":[`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := topServer(t, tc.tapper, 0)
			code, hd, body := get(t, tc.method, srv.URL+TopPath+"?"+tc.query)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, body)
			}
			text := body
			if tc.reason != "" {
				var e topError
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Reason != tc.reason || e.Error == "" {
					t.Errorf("error body %s: want reason %s (%v)", body, tc.reason, err)
				}
				text = e.Error
			}
			if !strings.Contains(text, tc.body) {
				t.Errorf("answer lacks %q: %s", tc.body, body)
			}
			if hd.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(hd.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("security headers missing: %v", hd)
			}
			if tc.method != "GET" {
				return
			}
			if hd.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", hd.Get("Content-Type"))
			}
		})
	}
}

// TestTopAnswer: the rows are viz/top's aggregation of the events, with
// the shape the page reads; names that are HTML stay JSON strings.
func TestTopAnswer(t *testing.T) {
	t.Parallel()
	ft := &fakeTapper{events: allEvents()}
	srv := topServer(t, ft, 0)
	code, _, body := get(t, "GET", srv.URL+TopPath+"?resource=deploy/books&namespace=demo")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if strings.Contains(body, "<img") {
		t.Errorf("an HTML name is in the JSON unescaped: %s", body)
	}
	var got Top
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := Top{Namespace: "demo", Resource: "deployments", Name: "books", Duration: "5s", Max: DefaultTopMax, Events: 21, Requests: 7, Complete: true,
		Rows: []TopRow{
			{"deploy/traffic", "deploy/books", "GET", "/fail", 4, 2, 0.5, 800, 1500, 1500, [3]string{"800µs", "1ms", "1ms"}},
			{"deploy/traffic", "deploy/books", "GET", "/books", 2, 2, 1, 2500, 3100, 3100, [3]string{"2ms", "3ms", "3ms"}},
			{"deploy/traffic", "deploy/books", "GET", xssName, 1, 1, 1, 400, 400, 400, [3]string{"400µs", "400µs", "400µs"}},
		}}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("answer\n%+v\nwant\n%+v", got, want)
	}
	c := ft.lastCall()
	if c.target != (tap.Target{Namespace: "demo", Resource: "deployments", Name: "books"}) || c.limit != DefaultTopMax || c.reqLimit != DefaultTopMax {
		t.Errorf("tapped %+v, want deployments/books in demo with limit %d", c, DefaultTopMax)
	}
	if c.deadline <= DefaultTopDuration-time.Second || c.deadline > DefaultTopDuration {
		t.Errorf("tap deadline in %s, want about %s", c.deadline, DefaultTopDuration)
	}
	// The caps the caller chose reach the tap.
	_, _, body = get(t, "GET", srv.URL+TopPath+"?resource=po/books-1&namespace=demo&duration=2s&max=3")
	if c := ft.lastCall(); c.limit != 3 || c.reqLimit != 3 || c.deadline > 2*time.Second || c.target.Resource != "pods" {
		t.Errorf("duration=2s&max=3: tapped %+v (%s)", c, body)
	}
}

// TestTopBounds: a tap of quiet pods ends at its duration with what it
// saw; beyond TopConcurrency taps at once the answer is 429.
func TestTopBounds(t *testing.T) {
	t.Parallel()
	quiet := &fakeTapper{block: true, events: booksTraffic[0].events()}
	srv := topServer(t, quiet, 0)
	start := time.Now()
	code, _, body := get(t, "GET", srv.URL+TopPath+"?resource=deploy/books&namespace=demo&duration=200ms")
	took := time.Since(start)
	var got Top
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 {
		t.Fatalf("status %d: %s (%v)", code, body, err)
	}
	if took < 200*time.Millisecond || took > 2*time.Second || got.Complete || got.Requests != 1 {
		t.Errorf("quiet tap: %s, complete %v, %d requests; want about 200ms, incomplete, 1", took, got.Complete, got.Requests)
	}
	t.Logf("a 200ms tap of quiet pods answered in %s", took.Round(time.Millisecond))

	busy := &fakeTapper{block: true, release: make(chan struct{}), entered: make(chan struct{}, 4)}
	srv = topServer(t, busy, 2)
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			code, _, _ := get(t, "GET", srv.URL+TopPath+"?resource=deploy/books&namespace=demo&duration=10s")
			codes <- code
		})
	}
	for range 2 {
		select {
		case <-busy.entered:
		case <-time.After(5 * time.Second):
			t.Fatal("two taps did not start")
		}
	}
	code, _, body = get(t, "GET", srv.URL+TopPath+"?resource=deploy/web&namespace=demo")
	var e topError
	_ = json.Unmarshal([]byte(body), &e)
	if code != http.StatusTooManyRequests || e.Reason != ReasonBusy || !strings.Contains(e.Error, "2 live top requests are already running") {
		t.Errorf("third tap: %d %s, want 429 Busy", code, body)
	}
	close(busy.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("a running tap answered %d", c)
		}
	}
	// The slots are free again.
	if code, _, body := get(t, "GET", srv.URL+TopPath+"?resource=deploy/web&namespace=demo&duration=50ms"); code != 200 {
		t.Errorf("after the taps ended: %d %s", code, body)
	}
}

// TestLiveTopInChromium: books' workload page runs a live top on open and
// renders its rows, GET /fail marked failing and an HTML path as text;
// without tap the panel says so and keeps the command.
func TestLiveTopInChromium(t *testing.T) {
	if _, err := chromium.Find(); errors.Is(err, chromium.ErrNotInstalled) {
		t.Skip(err)
	}
	t.Parallel()
	s := demoServer(t, 4)
	s.cfg.Tap = &fakeTapper{events: allEvents()}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	off := httptest.NewServer(demoServer(t, 4).Handler())
	defer off.Close()
	dump := func(base string) string {
		dom, err := chromium.DumpDOM(t.Context(), base+"/#/ns/demo/deploy/books", chromium.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return dom
	}
	dom := dump(srv.URL)
	for _, want := range []string{
		`<section id="live" data-resource="deploy/books" data-state="ok"><h2>Live top (5 s)</h2>`,
		`<tr data-source="deploy/traffic" data-method="GET" data-path="/fail" data-success="0.5000" class="top-row health-fail failing"><td class="name">deploy/traffic</td><td class="name">deploy/books</td><td>GET</td><td class="name">/fail<span class="badge fail">failing</span></td><td class="num">4</td><td class="num">800µs</td><td class="num">1ms</td><td class="num">1ms</td><td class="num success fail" data-success="0.5000">50.00%</td></tr>`,
		`data-path="/books" data-success="1.0000" class="top-row health-ok">`,
		`<td class="name">&lt;img src=x onerror=document.title='pwned'&gt;</td>`,
		`7 requests in 5s`,
		`weft viz top deploy/books -n demo`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("books' page lacks %s", want)
		}
	}
	if strings.Contains(dom, `<img src="x"`) || strings.Contains(dom, "<title>pwned") {
		t.Error("a tapped path became markup")
	}
	if t.Failed() {
		t.Logf("books' page:\n%s", dom)
	}
	dom = dump(off.URL)
	for _, want := range []string{`<section id="live" data-resource="deploy/books" data-state="TapDisabled">`, `class="empty live-unavailable">tap is not enabled`, `weft viz top deploy/books -n demo`} {
		if !strings.Contains(dom, want) {
			t.Errorf("books' page without tap lacks %s:\n%s", want, dom)
		}
	}
}
