package metricsapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftmesh/weft/viz/window"
)

// flow is one label set of a proxy's exposition: ok successes and bad
// failures (all in the (5,10] ms latency bucket), cumulative.
type flow struct {
	dir       string // "inbound" or "outbound"
	authority string
	dst       string // outbound: the destination Deployment and Service
	route     string // set: route_* metrics (dst = authority) instead of HTTP
	ok, bad   int
}

const trustDomain = "spiffe://weft.local/ns/demo/sa/"

func exposition(flows []flow) string {
	var b strings.Builder
	for _, f := range flows {
		for _, c := range []struct {
			class string
			code  string
			n     int
		}{{"success", "200", f.ok}, {"failure", "500", f.bad}} {
			var l string
			switch {
			case f.route != "":
				l = fmt.Sprintf(`direction=%q,dst=%q,rt_route=%q,status_code=%q,classification=%q`, f.dir, f.authority, f.route, c.code, c.class)
				fmt.Fprintf(&b, "route_response_total{%s} %d\nroute_actual_response_total{%s} %d\n", l, c.n, l, c.n)
				continue
			case f.dir == "inbound":
				l = fmt.Sprintf(`direction="inbound",authority=%q,tls="true",client_id=%q,status_code=%q,classification=%q`, f.authority, trustDomain+"client", c.code, c.class)
			default:
				l = fmt.Sprintf(`direction="outbound",authority=%q,tls="true",server_id=%q,dst_namespace="demo",dst_service=%q,dst_deployment=%q,status_code=%q,classification=%q`,
					f.authority, trustDomain+f.dst, f.dst, f.dst, c.code, c.class)
			}
			fmt.Fprintf(&b, "response_total{%s} %d\n", l, c.n)
			fmt.Fprintf(&b, "response_latency_ms_bucket{%s,le=\"5\"} 0\nresponse_latency_ms_bucket{%s,le=\"10\"} %d\nresponse_latency_ms_bucket{%s,le=\"+Inf\"} %d\n", l, l, c.n, l, c.n)
		}
	}
	return b.String()
}

// demoPod is one pod of the fixture and its flows per tick.
type demoPod struct {
	name  string // Deployment; the pod is name-1
	flows func(tick int) []flow
}

// xssName is a workload and route name that would run script if rendered as HTML.
const xssName = `<img src=x onerror=document.title='pwned'>`

// demoServer returns a Server whose window holds the demo's traffic over
// ticks scrape rounds: traffic calls web, books (GET /fail fails half the
// time) and authors; web calls books and authors; plus a workload and a
// route named xssName.
func demoServer(t *testing.T, ticks int) *Server {
	t.Helper()
	s, err := New(Config{Client: fake.NewClientset(), Interval: 10 * time.Second, Span: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	books := "books.demo.svc.cluster.local:7000"
	pods := []demoPod{
		{"traffic", func(i int) []flow {
			return []flow{
				{dir: "outbound", authority: "web.demo.svc.cluster.local:8080", dst: "web", ok: 30 * i},
				{dir: "outbound", authority: books, dst: "books", ok: 35 * i, bad: 5 * i},
				{dir: "outbound", authority: "authors.demo.svc.cluster.local:7001", dst: "authors", ok: 20 * i},
				{dir: "outbound", authority: books, route: "GET /books", ok: 20 * i},
				{dir: "outbound", authority: books, route: "GET /fail", ok: 5 * i, bad: 5 * i},
				{dir: "outbound", authority: books, route: xssName, ok: i},
			}
		}},
		{"web", func(i int) []flow {
			return []flow{
				{dir: "inbound", authority: "web.demo.svc.cluster.local:8080", ok: 30 * i},
				{dir: "outbound", authority: books, dst: "books", ok: 30 * i},
				{dir: "outbound", authority: "authors.demo.svc.cluster.local:7001", dst: "authors", ok: 30 * i},
			}
		}},
		{"books", func(i int) []flow {
			return []flow{{dir: "inbound", authority: books, ok: 65 * i, bad: 5 * i}}
		}},
		{"authors", func(i int) []flow {
			return []flow{{dir: "inbound", authority: "authors.demo.svc.cluster.local:7001", ok: 50 * i}}
		}},
		{xssName, func(i int) []flow {
			return []flow{{dir: "inbound", authority: xssName, ok: i}}
		}},
	}
	var infos []window.PodInfo
	for _, p := range pods {
		infos = append(infos, window.PodInfo{Namespace: "demo", Name: p.name + "-1", Kind: "Deployment", Workload: p.name, Meshed: true})
	}
	s.win.SetPods(infos)
	now := time.Now()
	for i := range ticks {
		tick := s.win.Begin(now.Add(time.Duration(i) * 10 * time.Second))
		for j, p := range pods {
			if err := s.win.Ingest(tick, infos[j], strings.NewReader(exposition(p.flows(i)))); err != nil {
				t.Fatal(err)
			}
		}
	}
	return s
}
