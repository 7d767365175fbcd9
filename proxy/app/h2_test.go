package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// TestHTTP2DetectedAndForwarded: an h2c client through the chain reaches an
// h2c upstream via the h2 package (seam 1), recorded in the core's metrics.
func TestHTTP2DetectedAndForwarded(t *testing.T) {
	up := newUpstream(t, h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Proto, r.URL.Path)
	}), &http2.Server{}))
	h := newHarness(t, nil)
	h.to(up.addr)
	c := &http.Client{Transport: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", h.outbound())
		},
	}}
	for i := range 5 {
		resp, err := c.Get(fmt.Sprintf("http://%s/h2/%d", up.addr, i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("HTTP/2.0 /h2/%d", i) {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	}
	out := scrape(t, h)
	for _, want := range []string{
		`weft_detect_total{direction="outbound",protocol="http2",result="detected"} 1`,
		`request_total{direction="outbound",authority="` + up.addr + `"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s\n%s", want, out)
		}
	}
}
