package httproute

import (
	"reflect"
	"testing"
	"time"
)

func strp(s string) *string { return &s }

func TestHeaderModifier(t *testing.T) {
	h := MapHeaders{"keep": {"1"}, "x-set": {"old", "older"}, "x-add": {"a"}, "x-remove": {"gone"}}
	(&HeaderModifier{
		Set:    []Header{{"X-Set", "new"}, {"X-Fresh", "f"}},
		Add:    []Header{{"X-Add", "b"}},
		Remove: []string{"X-Remove", "absent"},
	}).Apply(h)
	want := MapHeaders{"keep": {"1"}, "x-set": {"new"}, "x-fresh": {"f"}, "x-add": {"a", "b"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %v, want %v", h, want)
	}
}

// TestReplacePrefix is the specification's ReplacePrefixMatch table.
func TestReplacePrefix(t *testing.T) {
	for _, c := range []struct{ prefix, repl, path, want string }{
		{"/foo", "/xyz", "/foo/bar", "/xyz/bar"},
		{"/foo", "/xyz/", "/foo/bar", "/xyz/bar"},
		{"/foo/", "/xyz", "/foo/bar", "/xyz/bar"},
		{"/foo/", "/xyz/", "/foo/bar", "/xyz/bar"},
		{"/foo", "/xyz", "/foo", "/xyz"},
		{"/foo", "/xyz/", "/foo", "/xyz/"},
		{"/foo", "/xyz", "/foo/", "/xyz/"},
		{"/foo", "", "/foo/bar", "/bar"},
		{"/foo/", "", "/foo/bar", "/bar"},
		{"/foo", "/", "/foo/bar", "/bar"},
		{"/foo", "/", "/foo", "/"},
		{"/foo", "/", "/foo/", "/"},
		{"/foo", "", "/foo", "/"},
		{"/", "/api", "/books", "/api/books"},
	} {
		if got := replacePrefix(c.path, c.prefix, c.repl); got != c.want {
			t.Errorf("prefix %q -> %q on %q: got %q, want %q", c.prefix, c.repl, c.path, got, c.want)
		}
	}
}

func rewriteTable(t *testing.T, f FilterSpec, m MatchSpec) *Table {
	t.Helper()
	tab, err := Compile([]RouteSpec{route("r", t0, RuleSpec{Matches: []MatchSpec{m}, Filters: []FilterSpec{f}, Backends: []BackendSpec{backend("web", 1)}})}, Options{Rand: seeded(2)})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestURLRewrite(t *testing.T) {
	prefix := MatchSpec{PathKind: PathPrefix, Path: "/v1"}
	for _, c := range []struct {
		name     string
		rw       RewriteSpec
		path     string
		wantPath string
		wantHost string
	}{
		{"prefix", RewriteSpec{Path: &PathModifier{PrefixMatch: strp("/v2")}}, "/v1/books", "/v2/books", "web.demo.svc.cluster.local"},
		{"full path", RewriteSpec{Path: &PathModifier{FullPath: strp("/static")}}, "/v1/books", "/static", "web.demo.svc.cluster.local"},
		{"host only", RewriteSpec{Hostname: "books.example"}, "/v1/x", "/v1/x", "books.example"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := req("GET", c.path, "a=1")
			d, ok := rewriteTable(t, FilterSpec{Type: FilterRewrite, Rewrite: &c.rw}, prefix).Route(r)
			if !ok || d.Backend.Name != "web" || d.Status != 0 {
				t.Fatalf("decision %+v ok=%v", d, ok)
			}
			if r.Path != c.wantPath || r.Host != c.wantHost || !r.Rewritten || r.RawQuery != "a=1" {
				t.Fatalf("request after rewrite: path %q host %q rewritten %v query %q", r.Path, r.Host, r.Rewritten, r.RawQuery)
			}
		})
	}
}

func TestRedirect(t *testing.T) {
	m := MatchSpec{PathKind: PathPrefix, Path: "/old"}
	for _, c := range []struct {
		name string
		rs   RedirectSpec
		want Redirect
	}{
		{"defaults to 302 same place", RedirectSpec{}, Redirect{302, "http://web.demo.svc.cluster.local/old/x?q=1"}},
		{"scheme change drops the port", RedirectSpec{Scheme: "https", StatusCode: 301}, Redirect{301, "https://web.demo.svc.cluster.local/old/x?q=1"}},
		{"host port and prefix", RedirectSpec{Hostname: "new.example", Port: 8080, Path: &PathModifier{PrefixMatch: strp("/new")}}, Redirect{302, "http://new.example:8080/new/x?q=1"}},
		{"full path", RedirectSpec{Path: &PathModifier{FullPath: strp("/")}}, Redirect{302, "http://web.demo.svc.cluster.local/?q=1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, ok := rewriteTable(t, FilterSpec{Type: FilterRedirect, Redirect: &c.rs}, m).Route(req("GET", "/old/x", "q=1"))
			if !ok || d.Redirect == nil || *d.Redirect != c.want {
				t.Fatalf("got %+v, want %+v", d.Redirect, c.want)
			}
		})
	}
}

func TestRequestAndResponseHeaderFilters(t *testing.T) {
	rh := &HeaderModifier{Set: []Header{{"x-route", "canary"}}}
	resp := &HeaderModifier{Add: []Header{{"x-served-by", "weft"}}}
	tab, err := Compile([]RouteSpec{route("r", t0, RuleSpec{
		Filters:  []FilterSpec{{Type: FilterRequestHeader, RequestHeader: rh}, {Type: FilterResponseHeader, ResponseHeader: resp}},
		Backends: []BackendSpec{backend("web", 1)},
	})}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := req("GET", "/", "")
	d, _ := tab.Route(r)
	if v, _ := r.Header.Get("X-Route"); v != "canary" {
		t.Fatalf("request header x-route = %q", v)
	}
	out := MapHeaders{}
	d.ResponseHeaders.Apply(out)
	if v, _ := out.Get("x-served-by"); v != "weft" {
		t.Fatalf("response header x-served-by = %q", v)
	}
}

func TestInvalidBackendGets500(t *testing.T) {
	bad := backend("missing", 1)
	bad.Invalid = true
	for _, bs := range [][]BackendSpec{{bad}, nil, {backend("zero", 0)}} {
		tab, err := Compile([]RouteSpec{route("r", t0, RuleSpec{Backends: bs})}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := tab.Route(req("GET", "/", "")); d.Status != 500 {
			t.Errorf("backends %+v: status %d, want 500", bs, d.Status)
		}
	}
}

func TestWeightedDistribution(t *testing.T) {
	tab, err := Compile([]RouteSpec{route("split", t0, RuleSpec{Backends: []BackendSpec{backend("v1", 90), backend("v2", 10), backend("off", 0)}})}, Options{Rand: seeded(3)})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	counts := map[string]int{}
	for range n {
		d, _ := tab.Route(req("GET", "/", ""))
		counts[d.Backend.Name]++
	}
	if counts["off"] != 0 {
		t.Fatalf("weight-0 backend got %d", counts["off"])
	}
	if share := float64(counts["v2"]) / n; share < 0.08 || share > 0.12 {
		t.Fatalf("v2 share %.3f (counts %v), want 0.10 ± 0.02", share, counts)
	}
}

func TestFaultDistribution(t *testing.T) {
	code := 14
	for _, c := range []struct {
		name  string
		f     FaultSpec
		grpc  bool
		abort float64
		delay float64
	}{
		{"abort 20% with 503", FaultSpec{AbortPercent: 20, HTTPStatus: 503}, false, 0.20, 0},
		{"delay 50%", FaultSpec{DelayPercent: 50, FixedDelay: time.Second}, false, 0, 0.50},
		{"grpc unavailable 30%", FaultSpec{AbortPercent: 30, GRPCCode: &code}, true, 0.30, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			tab, err := Compile([]RouteSpec{route("f", t0, RuleSpec{Filters: []FilterSpec{{Type: FilterFault, Fault: &c.f}}, Backends: []BackendSpec{backend("web", 1)}})}, Options{Rand: seeded(4)})
			if err != nil {
				t.Fatal(err)
			}
			const n = 10000
			aborts, delays := 0, 0
			for range n {
				d, _ := tab.Route(req("GET", "/", ""))
				if d.Abort != nil {
					aborts++
					if c.grpc && (!d.Abort.GRPC || d.Abort.GRPCCode != 14 || d.Abort.HTTPStatus != 200) || !c.grpc && d.Abort.HTTPStatus != 503 {
						t.Fatalf("abort %+v", d.Abort)
					}
				}
				if d.Delay > 0 {
					delays++
				}
			}
			if a := float64(aborts) / n; a < c.abort-0.03 || a > c.abort+0.03 {
				t.Errorf("abort share %.3f, want %.2f ± 0.03", a, c.abort)
			}
			if dl := float64(delays) / n; dl < c.delay-0.03 || dl > c.delay+0.03 {
				t.Errorf("delay share %.3f, want %.2f ± 0.03", dl, c.delay)
			}
		})
	}
}

func TestMirrorShare(t *testing.T) {
	pct := 25
	for _, c := range []struct {
		name string
		m    MirrorSpec
		want float64
	}{
		{"all", MirrorSpec{Backend: backend("shadow", 1)}, 1},
		{"percent", MirrorSpec{Backend: backend("shadow", 1), Percent: &pct}, 0.25},
		{"fraction", MirrorSpec{Backend: backend("shadow", 1), Numerator: 1, Denominator: 8}, 0.125},
	} {
		t.Run(c.name, func(t *testing.T) {
			tab, err := Compile([]RouteSpec{route("m", t0, RuleSpec{Filters: []FilterSpec{{Type: FilterMirror, Mirror: &c.m}}, Backends: []BackendSpec{backend("web", 1)}})}, Options{Rand: seeded(5)})
			if err != nil {
				t.Fatal(err)
			}
			const n = 8000
			got := 0
			for range n {
				d, _ := tab.Route(req("GET", "/", ""))
				if d.Backend.Name != "web" {
					t.Fatalf("primary backend %q", d.Backend.Name)
				}
				if len(d.Mirrors) == 1 && d.Mirrors[0].Backend.Name == "shadow" {
					got++
				}
			}
			if s := float64(got) / n; s < c.want-0.03 || s > c.want+0.03 {
				t.Errorf("mirror share %.3f, want %.3f ± 0.03", s, c.want)
			}
		})
	}
}
