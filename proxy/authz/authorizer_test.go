package authz

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

const (
	webID   = "spiffe://cluster.local/ns/demo/sa/web"
	otherID = "spiffe://cluster.local/ns/demo/sa/other"
)

var (
	podAddr  = netip.MustParseAddr("198.18.0.7")
	farAddr  = netip.MustParseAddr("203.0.113.9")
	onlyWeb  = Authorization{Kind: "authorizationpolicy", Name: "web-only", Authentication: Authentication{Identities: []string{webID}}}
	anyAuthn = Authorization{Kind: "authorizationpolicy", Name: "any-authn"}
)

type staticSource map[uint16]*PortPolicy

func (s staticSource) PortPolicy(port uint16) (*PortPolicy, bool) { p, ok := s[port]; return p, ok }

type headers map[string]string

func (h headers) Range(f func(name, value string) bool) {
	for k, v := range h {
		if !f(k, v) {
			return
		}
	}
}

func server(routes []Route, azs ...Authorization) *PortPolicy {
	return &PortPolicy{Port: 7002, ServerKind: "server", ServerName: "books", Protocol: ProtocolHTTP1, Fallback: Deny, Routes: routes, Authorizations: azs}
}

func TestAuthorizeRequest(t *testing.T) {
	routes := []Route{
		{Name: "books-get", Matches: []RouteMatch{{Method: "GET", Path: &PathMatch{Kind: PathPrefix, Value: "/books"}}},
			Authorizations: []Authorization{{Kind: "authorizationpolicy", Name: "get-anyone", Authentication: Authentication{Unauthenticated: true}}}},
		{Name: "admin", Matches: []RouteMatch{{Path: &PathMatch{Kind: PathPrefix, Value: "/admin"}}}},
		{Name: "header", Matches: []RouteMatch{{Path: &PathMatch{Kind: PathExact, Value: "/h"}, Headers: []HeaderMatch{{Name: "X-Role", Value: "ops"}}}},
			Authorizations: []Authorization{{Kind: "authorizationpolicy", Name: "ops", Authentication: Authentication{Unauthenticated: true}}}},
	}
	for _, tc := range []struct {
		name    string
		policy  *PortPolicy
		def     DefaultPolicy
		req     Request
		allow   bool
		route   string
		authz   string
		audited bool
		noRoute bool
	}{
		{name: "no policy, default all-unauthenticated", def: AllUnauthenticated, req: Request{Method: "GET", Path: "/x"}, allow: true, route: "default", authz: "all-unauthenticated"},
		{name: "no policy, default deny fails closed", def: Deny, req: Request{ClientID: webID, Method: "GET", Path: "/x"}, allow: false, route: "default"},
		{name: "no policy, all-authenticated refuses plaintext", def: AllAuthenticated, req: Request{Method: "GET", Path: "/x"}, allow: false, route: "default"},
		{name: "no policy, all-authenticated allows mTLS", def: AllAuthenticated, req: Request{ClientID: otherID, Method: "GET", Path: "/x"}, allow: true, route: "default", authz: "all-authenticated"},
		{name: "no policy, cluster-unauthenticated refuses far", def: ClusterUnauthenticated, req: Request{Method: "GET", Path: "/x", ClientAddr: farAddr}, allow: false, route: "default"},
		{name: "no policy, cluster-unauthenticated allows pod net", def: ClusterUnauthenticated, req: Request{Method: "GET", Path: "/x", ClientAddr: podAddr}, allow: true, route: "default", authz: "cluster-unauthenticated"},
		{name: "no policy, audit allows and marks", def: Audit, req: Request{Method: "GET", Path: "/x"}, allow: true, route: "default", authz: "audit", audited: true},
		{name: "server authz allows web", policy: server(nil, onlyWeb), req: Request{ClientID: webID, Method: "DELETE", Path: "/x"}, allow: true, route: "default", authz: "web-only"},
		{name: "server authz refuses other", policy: server(nil, onlyWeb), req: Request{ClientID: otherID, Method: "GET", Path: "/x"}, allow: false, route: "default"},
		{name: "route GET allowed to anyone", policy: server(routes, onlyWeb), req: Request{Method: "GET", Path: "/books/1"}, allow: true, route: "books-get", authz: "get-anyone"},
		{name: "route DELETE not matched", policy: server(routes, onlyWeb), req: Request{Method: "DELETE", Path: "/books/1"}, allow: false, noRoute: true},
		{name: "route prefix on segment boundary", policy: server(routes), req: Request{Method: "GET", Path: "/booksX"}, allow: false, noRoute: true},
		{name: "admin route falls to server authz", policy: server(routes, onlyWeb), req: Request{ClientID: webID, Method: "POST", Path: "/admin"}, allow: true, route: "admin", authz: "web-only"},
		{name: "admin route refuses other", policy: server(routes, onlyWeb), req: Request{ClientID: otherID, Method: "POST", Path: "/admin"}, allow: false, route: "admin"},
		{name: "bypass //admin is admin", policy: server(routes, onlyWeb), req: Request{ClientID: otherID, Method: "GET", Path: "//admin"}, allow: false, route: "admin"},
		{name: "bypass /books/../admin is admin", policy: server(routes, onlyWeb), req: Request{Method: "GET", Path: "/books/../admin"}, allow: false, route: "admin"},
		{name: "bypass /books%2F..%2Fadmin is admin", policy: server(routes, onlyWeb), req: Request{Method: "GET", Path: "/books%2F..%2Fadmin"}, allow: false, route: "admin"},
		{name: "malformed path refused", policy: server(routes, anyAuthn), req: Request{ClientID: webID, Method: "GET", Path: "/books%zz"}, allow: false, route: "invalid"},
		{name: "header match", policy: server(routes), req: Request{Method: "GET", Path: "/h", Headers: headers{"x-role": "ops"}}, allow: true, route: "header", authz: "ops"},
		{name: "header mismatch", policy: server(routes), req: Request{Method: "GET", Path: "/h", Headers: headers{"x-role": "dev"}}, allow: false, noRoute: true},
		{name: "server accessPolicy audit", policy: &PortPolicy{Port: 7002, ServerKind: "server", ServerName: "books", Fallback: Audit, Authorizations: []Authorization{onlyWeb}},
			req: Request{ClientID: otherID, Method: "GET", Path: "/"}, allow: true, route: "default", authz: "audit", audited: true},
		{name: "probe allowed under deny", def: Deny, req: Request{Method: "GET", Path: "/ready?verbose"}, allow: true, route: "probe", authz: "probe"},
		{name: "probe path only", def: Deny, req: Request{Method: "GET", Path: "/ready/../secret"}, allow: false, route: "default"},
		{name: "probe method only GET", def: Deny, req: Request{Method: "POST", Path: "/ready"}, allow: false, route: "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := staticSource{}
			if tc.policy != nil {
				src[7002] = tc.policy
			}
			a := New(Config{Source: src, Default: tc.def, Probes: []Probe{{Port: 7002, Path: "/ready"}, {Port: 9999, Path: "/secret"}}})
			tc.req.Port = 7002
			if !tc.req.ClientAddr.IsValid() {
				tc.req.ClientAddr = podAddr
			}
			d := a.AuthorizeRequest(&tc.req)
			if d.Allow != tc.allow || d.Audited != tc.audited || d.NoRoute != tc.noRoute {
				t.Fatalf("decision %+v, want allow=%v audited=%v noRoute=%v", d, tc.allow, tc.audited, tc.noRoute)
			}
			if !tc.noRoute && d.Labels.RouteName != tc.route {
				t.Errorf("route %q, want %q", d.Labels.RouteName, tc.route)
			}
			if tc.allow && d.Labels.AuthzName != tc.authz {
				t.Errorf("authz %q, want %q", d.Labels.AuthzName, tc.authz)
			}
		})
	}
}

func TestAuthorizeConn(t *testing.T) {
	opaque := &PortPolicy{Port: 5432, ServerKind: "server", ServerName: "db", Protocol: ProtocolOpaque, Fallback: Deny, Authorizations: []Authorization{onlyWeb}}
	routeOnly := server([]Route{{Name: "r", Authorizations: []Authorization{onlyWeb}}})
	for _, tc := range []struct {
		name   string
		policy *PortPolicy
		port   uint16
		id     string
		allow  bool
	}{
		{"opaque allows web", opaque, 5432, webID, true},
		{"opaque closes other", opaque, 5432, otherID, false},
		{"opaque closes plaintext", opaque, 5432, "", false},
		{"http route authz admits connection", routeOnly, 7003, webID, true},
		{"http route authz refuses other connection", routeOnly, 7003, otherID, false},
		{"probe port admits plaintext connection", server(nil), 7002, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics()
			a := New(Config{Source: staticSource{tc.port: tc.policy}, Default: Deny, Metrics: m, Probes: []Probe{{Port: 7002, Path: "/ready"}}})
			d := a.AuthorizeConn(tc.port, tc.id, podAddr)
			if d.Allow != tc.allow {
				t.Fatalf("decision %+v, want allow=%v", d, tc.allow)
			}
			outcome := map[bool]string{true: "allow", false: "deny"}[tc.allow]
			if got := m.Count(true, outcome, d.Labels, tc.id); got != 1 {
				t.Errorf("tcp %s count %d, want 1", outcome, got)
			}
		})
	}
}

func TestIdentityPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern, id string
		want        bool
	}{
		{"*", webID, true},
		{"*", "", false},
		{webID, webID, true},
		{webID, otherID, false},
		{"spiffe://cluster.local/ns/demo/*", webID, true},
		{"spiffe://cluster.local/ns/demo/*", "spiffe://cluster.local/ns/demo2/sa/web", false},
		{"spiffe://cluster.local/ns/demo/*", "spiffe://cluster.local/ns/demo/", false},
		{"*.demo.serviceaccount.identity.weft.cluster.local", "web.demo.serviceaccount.identity.weft.cluster.local", true},
		{"*.demo.serviceaccount.identity.weft.cluster.local", "demo.serviceaccount.identity.weft.cluster.local", false},
		{ServiceAccountID("cluster.local", "demo", "web"), webID, true},
	} {
		if got := MatchIdentity(tc.pattern, tc.id); got != tc.want {
			t.Errorf("MatchIdentity(%q, %q) = %v", tc.pattern, tc.id, got)
		}
	}
}

func TestNetworks(t *testing.T) {
	n, err := ParseNetwork("198.18.0.0/16", "198.18.5.0/24", "198.18.6.6")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"198.18.0.1", true}, {"198.18.5.9", false}, {"198.18.6.6", false}, {"198.18.6.7", true},
		{"::ffff:198.18.0.1", true}, {"198.19.0.1", false}, {"fd00::1", false},
	} {
		if got := n.Contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("%s in %v = %v", tc.addr, n, got)
		}
	}
	if _, err := ParseNetwork("10.0.0.0/33"); err == nil || !strings.Contains(err.Error(), "CIDR") {
		t.Errorf("bad CIDR error = %v", err)
	}
	az := Authorization{Networks: []Network{n}, Authentication: Authentication{Unauthenticated: true}}
	if !az.Allows("", netip.MustParseAddr("198.18.1.1")) || az.Allows("", farAddr) {
		t.Error("network authorization wrong")
	}
}

func TestSortRoutesPrecedence(t *testing.T) {
	rs := []Route{
		{Name: "catch-all"},
		{Name: "prefix-short", Matches: []RouteMatch{{Path: &PathMatch{Kind: PathPrefix, Value: "/a"}}}},
		{Name: "prefix-long", Matches: []RouteMatch{{Path: &PathMatch{Kind: PathPrefix, Value: "/a/b"}}}},
		{Name: "prefix-long-method", Matches: []RouteMatch{{Method: "GET", Path: &PathMatch{Kind: PathPrefix, Value: "/a/b"}}}},
		{Name: "exact", Matches: []RouteMatch{{Path: &PathMatch{Kind: PathExact, Value: "/a"}}}},
		{Name: "catch-all-2"},
	}
	SortRoutes(rs)
	var got []string
	for _, r := range rs {
		got = append(got, r.Name)
	}
	want := "exact,prefix-long-method,prefix-long,prefix-short,catch-all,catch-all-2"
	if strings.Join(got, ",") != want {
		t.Fatalf("order %v, want %s", got, want)
	}
}

func TestParseDefaults(t *testing.T) {
	for _, n := range []string{"all-unauthenticated", "all-authenticated", "cluster-unauthenticated", "cluster-authenticated", "deny", "audit"} {
		d, err := ParseDefaultPolicy(n)
		if err != nil || d.String() != n {
			t.Errorf("ParseDefaultPolicy(%q) = %v, %v", n, d, err)
		}
	}
	if _, err := ParseDefaultPolicy("allow"); err == nil || !strings.Contains(err.Error(), "audit") {
		t.Errorf("bad default error = %v", err)
	}
	if _, err := ParseProtocol("HTTP/3"); err == nil {
		t.Error("HTTP/3 accepted")
	}
}

func TestMetricsFamilies(t *testing.T) {
	m := NewMetrics()
	a := New(Config{Default: Audit, Metrics: m})
	for range 3 {
		a.AuthorizeRequest(&Request{Port: 80, ClientID: webID, Method: "GET", Path: "/"})
	}
	b := New(Config{Default: Deny, Metrics: m})
	b.AuthorizeRequest(&Request{Port: 80, Method: "GET", Path: "/"})
	var out strings.Builder
	for _, f := range m.Families() {
		for _, s := range f.Samples {
			out.WriteString(f.Name + "{" + s.Labels + "} ")
			out.WriteString(strconv.FormatFloat(s.Value, 'g', -1, 64) + "\n")
		}
	}
	want := `inbound_http_authz_allow_total{srv_kind="default",srv_name="audit",authz_kind="default",authz_name="audit",route_name="default",client_id="` + webID + `"} 3
inbound_http_authz_deny_total{srv_kind="default",srv_name="deny",authz_kind="",authz_name="",route_name="default",client_id=""} 1
inbound_http_authz_audit_total{srv_kind="default",srv_name="audit",authz_kind="default",authz_name="audit",route_name="default",client_id="` + webID + `"} 3
`
	if out.String() != want {
		t.Fatalf("families:\n%s\nwant:\n%s", out.String(), want)
	}
}
