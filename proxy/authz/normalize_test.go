package authz

import (
	"errors"
	"testing"
)

// The bypass strings published against other meshes' path and host
// policies (Istio ISTIO-SECURITY-2021-005 / CVE-2021-31920 multiple and
// escaped slashes, CVE-2021-39156 fragments, CVE-2021-39155 host case, the
// documented BASE normalisation: %HH, backslash, dot segments, query).
func TestNormalizePathBypasses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/admin", "/admin"},
		{"//admin", "/admin"},
		{"///admin//x", "/admin/x"},
		{"/admin%2F", "/admin/"},
		{"/public%2F..%2Fadmin", "/admin"},
		{"/public%2f..%2fadmin", "/admin"},
		{"/public%5C..%5Cadmin", "/admin"},
		{"/public\\..\\admin", "/admin"},
		{"/public/../admin", "/admin"},
		{"/public/%2e%2e/admin", "/admin"},
		{"/public/%2E%2E/admin", "/admin"},
		{"/./admin", "/admin"},
		{"/admin/.", "/admin/"},
		{"/../../admin", "/admin"},
		{"/%61dmin", "/admin"},
		{"/some%2fdata/%61%62%63", "/some/data/abc"},
		{"/admin#fragment", "/admin"},
		{"/admin?x=/public", "/admin"},
		{"/public/./data/abc/../xyz", "/public/data/xyz"},
		{"", "/"},
		{"admin", "/admin"},
		{"/", "/"},
		{"/%252e%252e/admin", "/%2e%2e/admin"}, // decoded once, as Istio: no double decoding
	} {
		got, err := NormalizePath(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizePathRejects(t *testing.T) {
	for _, in := range []string{"/admin%00", "/admin%0a", "/a%", "/a%2", "/a%zz", "/a\x00b", "/a\x7f"} {
		if _, err := NormalizePath(in); !errors.Is(err, ErrMalformedPath) {
			t.Errorf("NormalizePath(%q) error = %v, want ErrMalformedPath", in, err)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Books.Demo.SVC.cluster.local.", "books.demo.svc.cluster.local"},
		{"HttpBin.Foo", "httpbin.foo"},
		{"books:8080", "books"},
		{"books.:8080", "books"},
		{"[fd00::1]:80", "fd00::1"},
		{"fd00::1", "fd00::1"},
	} {
		if got := NormalizeHost(tc.in); got != tc.want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMatchHostname(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"books.demo", "books.demo", true},
		{"Books.Demo.", "books.demo", true},
		{"*.demo", "books.demo", true},
		{"*.demo", "a.b.demo", true},
		{"*.demo", "demo", false},
		{"*.demo", "xdemo", false},
		{"books.demo", "authors.demo", false},
	} {
		if got := MatchHostname(tc.pattern, tc.host); got != tc.want {
			t.Errorf("MatchHostname(%q, %q) = %v", tc.pattern, tc.host, got)
		}
	}
}
