package destclient

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzNormalize: normalize never panics, its output is a lowercase
// host:port under a suffix, and normalizing it again is the identity.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{booksName, "BOOKS.demo.svc.cluster.local.:80", "books.demo.svc.cluster.local", "[::1]:80", "svc.cluster.local:0", ":80", "a..svc.cluster.local:65536", ""} {
		f.Add(s)
	}
	c := &Client{cfg: Config{Suffixes: DefaultSuffixes}}
	orig := netip.MustParseAddrPort("198.19.0.40:8080")
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := c.normalize(in, orig)
		if !ok {
			return
		}
		if out != strings.ToLower(out) || !strings.Contains(out, ":") {
			t.Fatalf("normalize(%q) = %q", in, out)
		}
		again, ok := c.normalize(out, orig)
		if !ok || again != out {
			t.Fatalf("normalize not idempotent: %q → %q → %q (%v)", in, out, again, ok)
		}
	})
}
