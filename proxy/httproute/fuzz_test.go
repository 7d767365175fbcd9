package httproute

import (
	"testing"
)

// FuzzMatch compiles a route from fuzzed match values and routes a fuzzed
// request: compile either fails cleanly or routing never panics, and an
// Exact match on the request's own path always matches it.
func FuzzMatch(f *testing.F) {
	f.Add("PathPrefix", "/foo", "x-canary", "true", "GET", "/foo/bar", "a=1")
	f.Add("Exact", "/foo", "", "", "", "/foo", "")
	f.Add("RegularExpression", "/v[0-9]+/.*", "h", "[a-z]+", "POST", "/v2/x", "q=%zz")
	f.Add("PathPrefix", "/", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, kind, path, hname, hval, method, rpath, query string) {
		var hs []ValueSpec
		if hname != "" {
			hs = []ValueSpec{{Name: hname, Value: hval, Regex: kind == string(PathRegex)}}
		}
		tab, err := Compile([]RouteSpec{route("fz", t0, RuleSpec{Matches: []MatchSpec{{PathKind: PathKind(kind), Path: path, Method: method, Headers: hs}}, Backends: []BackendSpec{backend("b", 1)}})}, Options{})
		if err == nil {
			tab.Route(req(method, rpath, query, hname, hval))
		}
		exact, err := Compile([]RouteSpec{route("ex", t0, RuleSpec{Matches: []MatchSpec{{PathKind: PathExact, Path: rpath}}, Backends: []BackendSpec{backend("b", 1)}})}, Options{})
		if err != nil {
			t.Fatalf("exact compile: %v", err)
		}
		r := req(method, rpath, query)
		if rpath == "" {
			r.Path = "/"
		}
		if _, ok := exact.Route(r); !ok && rpath != "" {
			t.Fatalf("exact %q did not match itself", rpath)
		}
	})
}
