package httproute

import (
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func seeded(seed uint64) func(uint32) uint32 {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return r.Uint32N
}

func req(method, path, query string, h ...string) *Request {
	hs := MapHeaders{}
	for i := 0; i+1 < len(h); i += 2 {
		hs.Add(h[i], h[i+1])
	}
	return &Request{Method: method, Path: path, RawQuery: query, Header: hs, Host: "web.demo.svc.cluster.local", Scheme: "http", Port: 80}
}

func backend(name string, w int) BackendSpec {
	return BackendSpec{Name: name, Namespace: "demo", Port: 80, Weight: w, Authority: name + ".demo.svc.cluster.local:80"}
}

func route(name string, created time.Time, rules ...RuleSpec) RouteSpec {
	return RouteSpec{Kind: KindHTTP, Namespace: "demo", Name: name, Created: created, Rules: rules}
}

func ruleTo(b string, ms ...MatchSpec) RuleSpec {
	return RuleSpec{Matches: ms, Backends: []BackendSpec{backend(b, 1)}}
}

// TestPrecedence is the specification's tie-breaking table: exact path >
// longer prefix > method > more headers > more query params > oldest route >
// route name > rule order.
func TestPrecedence(t *testing.T) {
	h := func(n, v string) ValueSpec { return ValueSpec{Name: n, Value: v} }
	routes := []RouteSpec{
		route("a-prefix-root", t0, ruleTo("root", MatchSpec{PathKind: PathPrefix, Path: "/"})),
		route("b-prefix", t0, ruleTo("prefix-foo", MatchSpec{PathKind: PathPrefix, Path: "/foo"}),
			ruleTo("prefix-foo-bar", MatchSpec{PathKind: PathPrefix, Path: "/foo/bar/"})),
		route("c-exact", t0.Add(time.Hour), ruleTo("exact", MatchSpec{PathKind: PathExact, Path: "/foo/bar"})),
		route("d-method", t0, ruleTo("method", MatchSpec{PathKind: PathPrefix, Path: "/m", Method: "POST"}),
			ruleTo("m-plain", MatchSpec{PathKind: PathPrefix, Path: "/m"})),
		route("e-headers", t0, ruleTo("one-header", MatchSpec{PathKind: PathPrefix, Path: "/h", Headers: []ValueSpec{h("a", "1")}}),
			ruleTo("two-headers", MatchSpec{PathKind: PathPrefix, Path: "/h", Headers: []ValueSpec{h("a", "1"), h("b", "2")}})),
		route("f-query", t0, ruleTo("one-query", MatchSpec{PathKind: PathPrefix, Path: "/q", Query: []ValueSpec{h("x", "1")}}),
			ruleTo("two-query", MatchSpec{PathKind: PathPrefix, Path: "/q", Query: []ValueSpec{h("x", "1"), h("y", "2")}})),
		route("z-young", t0.Add(time.Minute), ruleTo("young", MatchSpec{PathKind: PathPrefix, Path: "/age"})),
		route("y-old", t0, ruleTo("old", MatchSpec{PathKind: PathPrefix, Path: "/age"})),
		route("n-bbb", t0, ruleTo("bbb", MatchSpec{PathKind: PathPrefix, Path: "/name"})),
		route("n-aaa", t0, ruleTo("aaa", MatchSpec{PathKind: PathPrefix, Path: "/name"})),
		route("r-order", t0, ruleTo("first", MatchSpec{PathKind: PathPrefix, Path: "/order"}), ruleTo("second", MatchSpec{PathKind: PathPrefix, Path: "/order"})),
		route("s-regex", t0, ruleTo("regex", MatchSpec{PathKind: PathRegex, Path: "/foo/[0-9]+"})),
	}
	tab, err := Compile(routes, Options{Rand: seeded(1)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		r    *Request
		want string
	}{
		{"exact beats longer prefix and older route", req("GET", "/foo/bar", ""), "exact"},
		{"longer prefix beats shorter", req("GET", "/foo/bar/baz", ""), "prefix-foo-bar"},
		{"prefix is element-wise", req("GET", "/foobar", ""), "root"},
		{"prefix matches its own path", req("GET", "/foo", ""), "prefix-foo"},
		{"prefix ignores trailing slash", req("GET", "/foo/", ""), "prefix-foo"},
		{"regex beats prefix", req("GET", "/foo/12", ""), "regex"},
		{"method beats no method", req("POST", "/m", ""), "method"},
		{"method mismatch falls through", req("GET", "/m", ""), "m-plain"},
		{"more headers win", req("GET", "/h", "", "A", "1", "b", "2"), "two-headers"},
		{"one header", req("GET", "/h", "", "a", "1"), "one-header"},
		{"header value mismatch", req("GET", "/h", "", "a", "2"), "root"},
		{"more query params win", req("GET", "/q", "x=1&y=2"), "two-query"},
		{"one query param", req("GET", "/q", "x=1&y=3"), "one-query"},
		{"oldest route wins a tie", req("GET", "/age", ""), "old"},
		{"name order breaks a tie", req("GET", "/name", ""), "aaa"},
		{"rule order breaks a tie", req("GET", "/order/x", ""), "first"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, ok := tab.Route(c.r)
			if !ok {
				t.Fatalf("no match")
			}
			if d.Backend.Name != c.want {
				t.Fatalf("got backend %q (route %s rule %d), want %q", d.Backend.Name, d.Route.Name, d.Route.Rule, c.want)
			}
		})
	}
}

func TestNoMatch(t *testing.T) {
	tab, err := Compile([]RouteSpec{route("r", t0, ruleTo("x", MatchSpec{PathKind: PathExact, Path: "/x"}))}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := tab.Route(req("GET", "/y", "")); ok {
		t.Fatalf("matched %+v", d)
	}
}

func TestGRPCPrecedence(t *testing.T) {
	g := func(name, svc, m string) RouteSpec {
		return RouteSpec{Kind: KindGRPC, Namespace: "demo", Name: name, Created: t0, Rules: []RuleSpec{ruleTo(name, MatchSpec{Service: svc, GRPCName: m})}}
	}
	tab, err := Compile([]RouteSpec{g("any", "", ""), g("svc", "demo.Books", ""), g("method", "", "Get"), g("both", "demo.Books", "Get"),
		route("http", t0, ruleTo("http", MatchSpec{}))}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		grpc bool
		want string
	}{
		{"/demo.Books/Get", true, "both"},
		{"/demo.Books/List", true, "svc"},
		{"/demo.Authors/Get", true, "method"},
		{"/demo.Authors/List", true, "any"},
		{"/demo.Books/Get", false, "http"},
	} {
		r := req("POST", c.path, "")
		r.GRPC = c.grpc
		d, ok := tab.Route(r)
		if !ok || d.Backend.Name != c.want {
			t.Errorf("%s grpc=%v: got %q ok=%v, want %q", c.path, c.grpc, d.Backend.Name, ok, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	bad := []RuleSpec{
		{Matches: []MatchSpec{{PathKind: PathRegex, Path: "("}}},
		{Matches: []MatchSpec{{PathKind: "Glob", Path: "/"}}},
		{Matches: []MatchSpec{{PathKind: PathPrefix, Path: "foo"}}},
		{Matches: []MatchSpec{{Headers: []ValueSpec{{Name: "", Value: "x"}}}}},
		{Backends: []BackendSpec{backend("x", -1)}},
		{Filters: []FilterSpec{{Type: "CORS"}}},
		{Filters: []FilterSpec{{Type: FilterFault, Fault: &FaultSpec{AbortPercent: 120, HTTPStatus: 500}}}},
		{Filters: []FilterSpec{{Type: FilterFault, Fault: &FaultSpec{AbortPercent: 10}}}},
		{Filters: []FilterSpec{{Type: FilterRedirect, Redirect: &RedirectSpec{}}, {Type: FilterRewrite, Rewrite: &RewriteSpec{}}}},
		{Timeouts: Timeouts{Request: time.Second, BackendRequest: 2 * time.Second}},
	}
	for i, r := range bad {
		if _, err := Compile([]RouteSpec{route("bad", t0, r)}, Options{}); err == nil {
			t.Errorf("case %d: compiled %+v without an error", i, r)
		} else {
			t.Logf("case %d: %v", i, err)
		}
	}
}
