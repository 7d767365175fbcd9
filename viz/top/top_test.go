package top

import (
	"strings"
	"testing"
	"time"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/viz/tap"
)

// exchange is one request as the web pod's proxy reports it.
type exchange struct {
	pod          string
	id           uint64
	inbound      bool
	method, path string
	status       int32 // 0: no response (the proxy failed it)
	latencyUs    int64
	grpc         int32
	errKind      string
}

func (x exchange) events() []tap.Event {
	base := func() *tapv1.Event {
		e := &tapv1.Event{Id: x.id, Direction: "outbound", ClientId: "spiffe://cluster.local/ns/demo/sa/web",
			ServerId: "spiffe://cluster.local/ns/demo/sa/books", DestinationLabels: map[string]string{"deployment": "books", "namespace": "demo"}}
		if x.inbound {
			e.Direction, e.ClientId, e.ServerId, e.DestinationLabels = "inbound", "spiffe://cluster.local/ns/demo/sa/traffic", "spiffe://cluster.local/ns/demo/sa/web", nil
		}
		return e
	}
	wrap := func(e *tapv1.Event) tap.Event {
		return tap.Event{Namespace: "demo", Pod: x.pod, Workload: "deploy/web", Event: e}
	}
	req := base()
	req.Kind = &tapv1.Event_Request{Request: &tapv1.RequestInit{Method: x.method, Path: x.path}}
	out := []tap.Event{wrap(req)}
	if x.status != 0 {
		rsp := base()
		rsp.Kind = &tapv1.Event_Response{Response: &tapv1.ResponseInit{Status: x.status, LatencyUs: x.latencyUs}}
		out = append(out, wrap(rsp))
	}
	end := base()
	end.Kind = &tapv1.Event_End{End: &tapv1.ResponseEnd{GrpcStatus: x.grpc, DurationUs: x.latencyUs + 7, ErrorKind: x.errKind}}
	return append(out, wrap(end))
}

func TestTable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		xs    []exchange
		hide  bool
		route func(authority, method, path string) string
		want  []Row
		extra func(*Table) // events beyond the exchanges
	}{
		{
			name: "counts, latencies and success per route",
			xs: []exchange{
				{pod: "web-1", id: 1, method: "GET", path: "/fail", status: 500, latencyUs: 900, grpc: -1},
				{pod: "web-1", id: 2, method: "GET", path: "/fail", status: 200, latencyUs: 300, grpc: -1},
				{pod: "web-1", id: 3, method: "GET", path: "/books", status: 200, latencyUs: 2500, grpc: -1},
				{pod: "web-1", id: 4, method: "GET", path: "/fail", status: 200, latencyUs: 1500, grpc: -1},
			},
			want: []Row{
				{Key: Key{"deploy/web", "deploy/books", "GET", "/fail"}, Count: 3, Successes: 2, Best: 300 * time.Microsecond, Worst: 1500 * time.Microsecond, Last: 1500 * time.Microsecond},
				{Key: Key{"deploy/web", "deploy/books", "GET", "/books"}, Count: 1, Successes: 1, Best: 2500 * time.Microsecond, Worst: 2500 * time.Microsecond, Last: 2500 * time.Microsecond},
			},
		},
		{
			name: "inbound source from the client identity; same id on two pods are two requests",
			xs: []exchange{
				{pod: "web-1", id: 1, inbound: true, method: "GET", path: "/", status: 200, latencyUs: 100, grpc: -1},
				{pod: "web-2", id: 1, inbound: true, method: "GET", path: "/", status: 200, latencyUs: 200, grpc: -1},
			},
			want: []Row{{Key: Key{"sa/traffic", "deploy/web", "GET", "/"}, Count: 2, Successes: 2, Best: 100 * time.Microsecond, Worst: 200 * time.Microsecond, Last: 200 * time.Microsecond}},
		},
		{
			name: "gRPC failure codes, proxy errors and missing responses fail; NotFound does not",
			xs: []exchange{
				{pod: "web-1", id: 1, method: "POST", path: "/a.A/Get", status: 200, latencyUs: 10, grpc: 14},
				{pod: "web-1", id: 2, method: "POST", path: "/a.A/Get", status: 200, latencyUs: 10, grpc: 5},
				{pod: "web-1", id: 3, method: "POST", path: "/a.A/Get", status: 200, latencyUs: 10, grpc: 0, errKind: "reset"},
				{pod: "web-1", id: 4, method: "POST", path: "/a.A/Get", latencyUs: 40, grpc: -1, errKind: "connect"},
			},
			want: []Row{{Key: Key{"deploy/web", "deploy/books", "POST", "/a.A/Get"}, Count: 4, Successes: 1, Best: 10 * time.Microsecond, Worst: 47 * time.Microsecond, Last: 47 * time.Microsecond}},
		},
		{
			name: "hide sources merges rows",
			hide: true,
			xs: []exchange{
				{pod: "web-1", id: 1, inbound: true, method: "GET", path: "/", status: 200, latencyUs: 100, grpc: -1},
				{pod: "web-1", id: 2, method: "GET", path: "/", status: 200, latencyUs: 100, grpc: -1},
			},
			want: []Row{
				{Key: Key{"", "deploy/books", "GET", "/"}, Count: 1, Successes: 1, Best: 100 * time.Microsecond, Worst: 100 * time.Microsecond, Last: 100 * time.Microsecond},
				{Key: Key{"", "deploy/web", "GET", "/"}, Count: 1, Successes: 1, Best: 100 * time.Microsecond, Worst: 100 * time.Microsecond, Last: 100 * time.Microsecond},
			},
		},
		{
			name: "routes replace paths; unmatched requests are [DEFAULT]",
			route: func(_, method, path string) string {
				if strings.HasPrefix(path, "/books/") && method == "GET" {
					return "GET /books/{id}"
				}
				return ""
			},
			xs: []exchange{
				{pod: "web-1", id: 1, method: "GET", path: "/books/1", status: 200, latencyUs: 100, grpc: -1},
				{pod: "web-1", id: 2, method: "GET", path: "/books/2", status: 500, latencyUs: 200, grpc: -1},
				{pod: "web-1", id: 3, method: "GET", path: "/authors", status: 200, latencyUs: 300, grpc: -1},
			},
			want: []Row{
				{Key: Key{"deploy/web", "deploy/books", "GET", "GET /books/{id}"}, Count: 2, Successes: 1, Best: 100 * time.Microsecond, Worst: 200 * time.Microsecond, Last: 200 * time.Microsecond},
				{Key: Key{"deploy/web", "deploy/books", "GET", DefaultRoute}, Count: 1, Successes: 1, Best: 300 * time.Microsecond, Worst: 300 * time.Microsecond, Last: 300 * time.Microsecond},
			},
		},
		{
			name: "ends and responses of unseen requests are ignored",
			extra: func(tb *Table) {
				for _, ev := range (exchange{pod: "web-1", id: 9, method: "GET", path: "/x", status: 200, grpc: -1}).events()[1:] {
					tb.Add(ev)
				}
			},
			want: []Row{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := &Table{HideSources: tc.hide, Route: tc.route}
			for _, x := range tc.xs {
				for _, ev := range x.events() {
					tb.Add(ev)
				}
			}
			if tc.extra != nil {
				tc.extra(tb)
			}
			got := tb.Rows()
			if len(got) != len(tc.want) {
				t.Fatalf("rows = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("row %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestTablePendingBound(t *testing.T) {
	tb := &Table{}
	for i := range MaxPending + 10 {
		tb.Add((exchange{pod: "web-1", id: uint64(i), method: "GET", path: "/"}).events()[0])
	}
	if n := len(tb.pending); n != MaxPending {
		t.Fatalf("%d pending requests, want the bound %d", n, MaxPending)
	}
}

func TestWrite(t *testing.T) {
	rows := []Row{{Key: Key{"deploy/traffic", "deploy/books", "GET", "/fail"}, Count: 10, Successes: 5, Best: 800 * time.Microsecond, Worst: 1200 * time.Millisecond, Last: 3 * time.Millisecond}}
	var b strings.Builder
	if err := Write(&b, rows, Columns{}, 0); err != nil {
		t.Fatal(err)
	}
	want := "Source          Destination   Method  Path   Count  Best   Worst  Last  Success\n" +
		"deploy/traffic  deploy/books  GET     /fail  10     800µs  1.2s   3ms   50.00%\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	_ = Write(&b, rows, Columns{HideSources: true, Routes: true}, 0)
	if strings.Contains(b.String(), "Source") || !strings.Contains(b.String(), "Route") || !strings.Contains(b.String(), "deploy/books") {
		t.Errorf("hidden sources, routes:\n%s", b.String())
	}
}
