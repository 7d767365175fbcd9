package kubeletapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAttributes(t *testing.T) {
	for _, tt := range []struct{ method, path, verb, sub string }{
		{"GET", "/containerLogs/ns/p/c", "get", "proxy"},
		{"POST", "/exec/ns/p/c", "create", "proxy"},
		{"GET", "/exec/ns/p/c", "get", "proxy"},
		{"POST", "/portForward/ns/p", "create", "proxy"},
		{"GET", "/stats/summary", "get", "stats"},
		{"GET", "/logs/", "get", "log"},
		{"GET", "/healthz", "get", "healthz"},
		{"GET", "/pods", "get", "proxy"},
	} {
		if v, s := attributes(tt.method, tt.path); v != tt.verb || s != tt.sub {
			t.Errorf("%s %s = %s nodes/%s, want %s nodes/%s", tt.method, tt.path, v, s, tt.verb, tt.sub)
		}
	}
}

// fakeReviewer knows one token and allows one user one subresource.
type fakeReviewer struct{ asked []string }

func (f *fakeReviewer) reviewToken(_ context.Context, token string) (user, bool, error) {
	switch token {
	case "alice-token":
		return user{name: "alice"}, true, nil
	case "bob-token":
		return user{name: "bob"}, true, nil
	}
	return user{}, false, nil
}

func (f *fakeReviewer) allowed(_ context.Context, u user, verb, sub, node string) (bool, string, error) {
	f.asked = append(f.asked, u.name+" "+verb+" nodes/"+sub+" "+node)
	return u.name == "alice" && sub == "proxy", "", nil
}

func TestAuthorize(t *testing.T) {
	cert := func(cn string, orgs ...string) *tls.ConnectionState {
		c := &x509.Certificate{Subject: pkix.Name{CommonName: cn, Organization: orgs}}
		return &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c}}}
	}
	for _, tt := range []struct {
		name   string
		tls    *tls.ConnectionState
		bearer string
		path   string
		code   int
		reason string
	}{
		{"anonymous", nil, "", "/pods", http.StatusUnauthorized, "no client certificate"},
		{"bad token", nil, "nope", "/pods", http.StatusUnauthorized, "not valid"},
		{"apiserver certificate", cert("kube-apiserver-kubelet-client", "system:masters"), "", "/exec/a/b/c", 0, ""},
		{"token allowed", nil, "alice-token", "/containerLogs/a/b/c", 0, ""},
		{"token denied", nil, "bob-token", "/containerLogs/a/b/c", http.StatusForbidden, `user "bob" cannot get nodes/proxy of node "n1"`},
		{"certificate denied", cert("carol"), "", "/stats/summary", http.StatusForbidden, `user "carol" cannot get nodes/stats`},
	} {
		r := httptest.NewRequest(http.MethodGet, tt.path, nil)
		r.TLS = tt.tls
		if tt.bearer != "" {
			r.Header.Set("Authorization", "Bearer "+tt.bearer)
		}
		d := authorize(r, &fakeReviewer{}, "n1")
		if d.code != tt.code || !strings.Contains(d.reason, tt.reason) {
			t.Errorf("%s: decision %d %q, want %d containing %q", tt.name, d.code, d.reason, tt.code, tt.reason)
		}
	}
}
