package authz

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzAuthorize checks the matcher's invariants on arbitrary paths, hosts
// and methods: no panic; normalisation is idempotent and yields a clean
// path; a request the admin-only route refuses is never allowed by
// re-spelling its path.
func FuzzAuthorize(f *testing.F) {
	for _, s := range []string{"/admin", "//admin", "/books/../admin", "/books%2F..%2Fadmin", "/%61dmin", "/a\\..\\admin", "/admin#x", "/admin?y", "/x%", "/%00"} {
		f.Add(s, "GET", "books.demo:80")
	}
	routes := []Route{
		{Name: "public", Matches: []RouteMatch{{Path: &PathMatch{Kind: PathPrefix, Value: "/public"}}},
			Authorizations: []Authorization{{Kind: "authorizationpolicy", Name: "anyone", Authentication: Authentication{Unauthenticated: true}}}},
		{Name: "admin", Matches: []RouteMatch{{Path: &PathMatch{Kind: PathPrefix, Value: "/admin"}}}},
		{Name: "rest"},
	}
	a := New(Config{Source: staticSource{80: &PortPolicy{Port: 80, ServerKind: "server", ServerName: "s", Fallback: AllUnauthenticated, Routes: routes}}})
	f.Fuzz(func(t *testing.T, path, method, host string) {
		n, err := NormalizePath(path)
		if err == nil {
			again, err2 := NormalizePath(n)
			if err2 != nil && !strings.Contains(n, "%") {
				t.Fatalf("normalised %q -> %q not normalisable: %v", path, n, err2)
			}
			if !strings.Contains(n, "%") && again != n {
				t.Fatalf("not idempotent: %q -> %q -> %q", path, n, again)
			}
			if !strings.HasPrefix(n, "/") || strings.Contains(n, "//") || strings.Contains(n, "\\") || strings.Contains(n, "/../") || strings.Contains(n, "/./") {
				t.Fatalf("unclean %q -> %q", path, n)
			}
		}
		_ = NormalizeHost(host)
		d := a.AuthorizeRequest(&Request{Port: 80, Method: method, Host: host, Path: path, ClientAddr: netip.MustParseAddr("198.18.0.9")})
		if err == nil && (n == "/admin" || strings.HasPrefix(n, "/admin/")) && d.Labels.RouteName != "admin" {
			t.Fatalf("%q normalised to %q but matched route %q", path, n, d.Labels.RouteName)
		}
	})
}
